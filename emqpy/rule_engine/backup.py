"""Rules in a data backup: the ``rule_engine`` root. Importing merges as EMQX does: the
backup's settings are applied, each of its rules replaces the one with its id or is created;
the other rules stay."""
from __future__ import annotations

_SETTINGS = ("ignore_sys_message", "jq_function_default_timeout", "jq_implementation_module")


def export_config(broker) -> dict:
    return {"rule_engine": broker.config.dump("rule_engine", hidden=True)}


async def restore_config(broker, roots: dict) -> dict:
    from emqpy.rule_engine import service  # (the engine's modules load at setup, not import)
    raw = roots.get("rule_engine")
    if not isinstance(raw, dict):
        return {"rule_engine": "an object is expected"}
    errors = {}
    settings = {k: v for k, v in raw.items() if k in _SETTINGS}
    if settings:
        try:
            await service.update_settings(broker, settings)
        except service.RuleChangeError as e:
            errors["rule_engine"] = e.message
    rules = raw.get("rules") or {}
    if not isinstance(rules, dict):
        return {**errors, "rule_engine.rules": "an object of rules is expected"}
    for rule_id, conf in rules.items():
        try:
            if not isinstance(conf, dict):
                raise service.bad_arguments("a rule must be an object")
            await service.replace(broker, rule_id, conf)
        except service.RuleChangeError as e:
            errors[f"rule_engine.rules.{rule_id}"] = e.message
    return errors
