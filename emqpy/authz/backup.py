"""Authorization in a data backup: the built-in database's rules (EMQX's table set
``builtin_authz``) and the ``authorization`` config root (kept in the store rather than in
cluster.hocon). A file source travels with its rules inline, as EMQX exports it, and is
written to the importing node's data dir."""
from __future__ import annotations

_COLUMNS = ("kind", "who", "rules", "created_at")


def export_rules(broker) -> list[dict]:
    return broker.store.dump_rows("authz_rules", _COLUMNS, order="created_at, kind, who")


def restore_rules(broker, rows: list) -> int:
    return broker.store.replace_rows("authz_rules", _COLUMNS, rows,
                                     required=("kind", "who", "rules"))


def reload_rules(broker) -> None:
    src = broker.authz.find("built_in_database")
    if src is not None:
        src.load()  # recompile from the table
        broker.authz.clean_cache()


def _exported(src) -> dict:
    if src.type == "file":
        return {"type": "file", "enable": src.cfg.get("enable", True), "rules": src.text}
    return dict(src.cfg)


def export_config(broker) -> dict:
    svc = broker.authz
    return {"authorization": dict(svc.settings, sources=[_exported(s) for s in svc.sources])}


async def restore_config(broker, roots: dict) -> dict:
    """EMQX's merge: the backup's settings replace these, each of its sources replaces the
    one of its type or is added at the end; the others stay."""
    from emqpy.authz import Invalid
    raw = roots.get("authorization")
    if not isinstance(raw, dict):
        return {"authorization": "an object is expected"}
    svc, errors = broker.authz, {}
    settings = {k: v for k, v in raw.items() if k != "sources"}
    if settings:
        try:
            svc.update_settings(settings)
        except (Invalid, ValueError) as e:
            errors["authorization"] = str(e)
    for cfg in raw.get("sources") or []:
        t = cfg.get("type") if isinstance(cfg, dict) else None
        try:
            if t is not None and svc.find(t) is not None:
                await svc.update_source(t, cfg)
            else:
                await svc.add_source(cfg)
        except (Invalid, ValueError) as e:
            errors[f"authorization.sources.{t}"] = str(e)
    return errors


_EMQX_WHO = {0: "all", 1: "username", 2: "clientid"}  # (EMQX's ?ACL_TABLE_* keys)


def _rule_from_emqx(rule) -> dict:
    from emqpy.backup.erlang import text
    permission, action, topic = rule
    qos, retain = [0, 1, 2], "all"
    if isinstance(action, tuple):  # {Action, [{qos, [..]}, {retain, R}]}
        action, opts = action
        opts = dict(opts)
        qos = list(opts.get("qos", qos))
        retain = opts.get("retain", retain)
        retain = retain if isinstance(retain, bool) else "all"
    return {"topic": text(topic), "permission": str(permission), "action": str(action),
            "qos": qos, "retain": retain}


def rules_from_emqx(records: list[dict]) -> list[dict]:
    """EMQX's emqx_acl records: ``who`` is 0 (all), {1, Username} or {2, ClientId}; each rule
    {Permission, Action or {Action, Options}, Topic}."""
    import json
    import time

    from emqpy.authz.builtin import normalise_rule
    from emqpy.backup.erlang import text
    out, now = [], time.time()
    for r in records:
        who = r["who"]
        kind, name = (_EMQX_WHO[who], "") if isinstance(who, int) else (_EMQX_WHO[who[0]],
                                                                         text(who[1]))
        rules = [normalise_rule(_rule_from_emqx(rule)) for rule in r["rules"]]
        out.append({"kind": kind, "who": name, "rules": json.dumps(rules), "created_at": now})
    return out
