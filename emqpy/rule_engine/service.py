"""Changing rules, the one way the REST API (and embedding programs) do it: as EMQX, a rule is
config (`rule_engine.rules.<id>`), so a change is validated, compiled, committed to the running
config and persisted to cluster.hocon (fsynced) before it is answered; a restart, or a kill -9
after the answer, keeps it.

Errors are RuleChangeError with EMQX's texts ("rule id already exists", "Bad Arguments: ...").
"""
from __future__ import annotations

import json
import re
import secrets
from typing import Any

from emqpy.config import ConfigError, commit, config_lock, persist, replace_root, update_root
from emqpy.rule_engine import engine_of
from emqpy.rule_engine.engine import RuleError, compile_rule
from emqpy.rule_engine.events import now_ms

# keys a client may send back from a GET that are not config (EMQX's filter_out_request_body)
_NOT_CONFIG = ("id", "status", "node_status", "node_metrics", "metrics", "node", "from",
               "created_at")


class RuleChangeError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class RuleEngineOff(RuleChangeError):
    def __init__(self):
        super().__init__(503, "SERVICE_UNAVAILABLE", "The rule engine is not running")


def engine(broker):
    eng = engine_of(broker)
    if eng is None:
        raise RuleEngineOff()
    return eng


def bad_arguments(reason: Any) -> RuleChangeError:
    text = reason if isinstance(reason, str) else json.dumps(reason, ensure_ascii=False,
                                                              separators=(",", ":"))
    return RuleChangeError(400, "BAD_REQUEST", f"Bad Arguments: {text}")


def _config_error(e: ConfigError) -> RuleChangeError:
    return bad_arguments({"kind": "validation_error", "path": e.path, "reason": e.problem})


def _rule_error(rule_id: str, e: RuleError) -> RuleChangeError:
    return bad_arguments({"kind": "validation_error",
                          "path": f"rule_engine.rules.{rule_id}.{e.field}", "reason": e.message})


def new_id() -> str:
    return secrets.token_hex(4)


# The ids cluster.hocon keeps intact (its writer and reader lose keys with '.', ':', '@', '$'
# or non-ASCII letters): a rule is refused rather than lost at the next start.
_ID = re.compile(r"^[0-9A-Za-z_-]{1,255}$")


def check_id(rule_id: str) -> None:
    if not _ID.match(rule_id):
        raise RuleChangeError(400, "BAD_REQUEST", "rule id may only contain letters, digits, "
                                                  f"'_' and '-' (1 to 255): {rule_id!r}")


def _conf_body(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in _NOT_CONFIG}


async def _put(broker, rule_id: str, conf: dict, *, replace: bool) -> dict:
    """Validate, compile, commit and persist one rule's config; returns its API view."""
    eng = engine(broker)
    cfg = broker.config
    current = cfg.dump("rule_engine", hidden=True)
    rules = dict(current.get("rules") or {})
    if replace or rule_id not in rules:
        rules[rule_id] = conf
    else:
        rules[rule_id] = {**rules[rule_id], **conf}
    try:
        new = replace_root(cfg, "rule_engine", {**current, "rules": rules})
    except ConfigError as e:
        raise _config_error(e) from None
    rconf = new.rule_engine.rules[rule_id]
    old = eng.get(rule_id)
    try:
        rule = compile_rule(rule_id, rconf, old.created_at if old is not None else None)
    except RuleError as e:
        raise _rule_error(rule_id, e) from None
    commit(broker, new)
    eng.sync({rule_id: rule})
    await persist(broker, "rule_engine")
    return eng.get(rule_id).info()


async def create(broker, body: dict) -> dict:
    """POST /rules."""
    rule_id = body.get("id", new_id()) if isinstance(body, dict) else None
    if rule_id == "":
        raise RuleChangeError(400, "BAD_REQUEST", "empty rule id is not allowed")
    if not isinstance(rule_id, str):
        raise RuleChangeError(400, "BAD_REQUEST", "rule id must be a string")
    check_id(rule_id)
    async with config_lock(broker):
        if engine(broker).get(rule_id) is not None or \
                rule_id in broker.config.rule_engine.rules:
            raise RuleChangeError(400, "BAD_REQUEST", "rule id already exists")
        conf = _conf_body(body)
        conf["metadata"] = {**(conf.get("metadata") or {}), "created_at": now_ms()}
        return await _put(broker, rule_id, conf, replace=True)


async def update(broker, rule_id: str, body: dict) -> dict:
    """PUT /rules/{id}: merged onto the rule's config (created if missing, as EMQX does)."""
    if rule_id not in broker.config.rule_engine.rules:
        check_id(rule_id)
    async with config_lock(broker):
        return await _put(broker, rule_id, _conf_body(body), replace=False)


async def replace(broker, rule_id: str, conf: dict) -> dict:
    """Set a rule's whole config (a data backup's import: created, or replacing the rule)."""
    check_id(rule_id)
    async with config_lock(broker):
        return await _put(broker, rule_id, _conf_body(conf), replace=True)


async def delete(broker, rule_id: str) -> bool:
    async with config_lock(broker):
        eng = engine(broker)
        cfg = broker.config
        if eng.get(rule_id) is None and rule_id not in cfg.rule_engine.rules:
            return False
        current = cfg.dump("rule_engine", hidden=True)
        rules = {k: v for k, v in (current.get("rules") or {}).items() if k != rule_id}
        commit(broker, replace_root(cfg, "rule_engine", {**current, "rules": rules}))
        eng.sync()
        await persist(broker, "rule_engine")
        return True


async def update_settings(broker, body: dict) -> None:
    """PUT /rule_engine: the settings, never the rules (EMQX refuses them here)."""
    if not isinstance(body, dict):
        raise bad_arguments("a JSON object is expected")
    unknown = [k for k in body if k not in ("ignore_sys_message", "jq_function_default_timeout",
                                            "jq_implementation_module")]
    if unknown:
        raise bad_arguments({"kind": "validation_error", "path": "rule_engine",
                             "reason": "unknown_fields", "unknown": unknown})
    async with config_lock(broker):
        try:
            new = update_root(broker.config, "rule_engine", body)
        except ConfigError as e:
            raise _config_error(e) from None
        commit(broker, new)
        eng = engine_of(broker)
        if eng is not None:
            eng.sync()
        await persist(broker, "rule_engine")


def settings_view(config) -> dict:
    """GET /rule_engine: the settings as EMQX answers them (its checked config, without the
    rules: the timeout in milliseconds)."""
    re = config.rule_engine
    return {"ignore_sys_message": re.ignore_sys_message,
            "jq_function_default_timeout": round(re.jq_function_default_timeout * 1000),
            "jq_implementation_module": re.jq_implementation_module}


def reset_metrics(broker, rule_id: str) -> bool:
    rule = engine(broker).get(rule_id)
    if rule is None:
        return False
    rule.metrics.reset()
    return True


# -- what the data-integration feature asks (emqpy.bridge: set_rule_links) -------------------

def _refers_to(action_conf, action_id: str) -> bool:
    from emqpy.rule_engine.actions import ActionError, parse
    if not isinstance(action_conf, str):
        return False
    try:
        return parse(action_conf).describe() == action_id
    except ActionError:
        return False


def rules_using(broker, action_id: str) -> list[str]:
    """Ids of the configured rules whose actions name ``action_id`` ("http:name")."""
    return [rule_id for rule_id, conf in broker.config.rule_engine.rules.items()
            if any(_refers_to(a, action_id) for a in conf.actions)]


def remove_action_from_rule(broker, rule_id: str, action_id: str) -> None:
    """Take ``action_id`` out of the rule's actions and commit (as EMQX's
    ``also_delete_dep_actions``). The caller holds the config lock and persists the
    ``rule_engine`` root."""
    cfg = broker.config
    current = cfg.dump("rule_engine", hidden=True)
    rules = dict(current.get("rules") or {})
    conf = rules.get(rule_id)
    if conf is None:
        return
    kept = [a for a in conf.get("actions") or []
            if not (isinstance(a, str) and _refers_to(a, action_id))]
    rules[rule_id] = {**conf, "actions": kept}
    commit(broker, replace_root(cfg, "rule_engine", {**current, "rules": rules}))
    eng = broker.rule_engine
    if eng is not None:
        eng.sync()
