"""`emqpy ctl rules list|show <RuleID>`, printed as `emqx ctl rules` prints (emqx_rule_engine_cli).
Run inside the broker (emqpy.mgmt.ctl_api)."""
from __future__ import annotations

from emqpy.rule_engine import engine_of
from emqpy.rule_engine.actions import DataIntegrationAction
from emqpy.timefmt import rfc3339

USAGE = [("rules list", "List rules"), ("rules show <RuleID>", "Show a rule")]


def erl(v) -> str:
    """A value as Erlang's ~p prints the term EMQX holds (strings are binaries)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "undefined"
    if isinstance(v, str):
        return '<<"' + v.replace("\\", "\\\\").replace('"', '\\"') + '">>'
    if isinstance(v, dict):
        return "#{" + ",".join(f"{k} => {erl(x)}" for k, x in sorted(v.items())) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(erl(x) for x in v) + "]"
    return str(v)


def _left_pad(text: str) -> str:
    return text.replace("\n", "\n  ")


def _action(act) -> str:
    if isinstance(act, DataIntegrationAction):
        return (f"- Name:         {act.name}\n  Action Type:  {act.type}\n"
                "  Type:         data-bridge\n")
    d = act.describe()
    if "args" not in d:  # (console: EMQX's parsed action has no args either)
        return f"- Name:  {d['function']}\n  Type:  function\n  Args:  #{{}}\n"
    return f"- Name:  {d['function']}\n  Type:  function\n  Args:  {erl(d['args'])}\n"


def cmd_rules(broker, args: list[str]):
    """The output, or None for a usage error."""
    eng = engine_of(broker)
    if args == ["list"]:
        if eng is None:
            return ""
        return "".join(f"Rule{{id={r.id}, name={r.conf.name}, enabled={erl(r.enable)}, "
                       f"descr={r.conf.description}}}\n" for r in eng.ordered())
    if len(args) == 2 and args[0] == "show":
        rule = eng.get(args[1]) if eng is not None else None
        if rule is None:
            return ""  # (EMQX prints nothing for an unknown rule)
        c = rule.conf
        actions = "".join(_left_pad(_action(a)) for a in rule.actions)
        return (f"Id:\n  {rule.id}\nName:\n  {c.name}\nDescription:\n  "
                f"{_left_pad(c.description)}\nEnabled:\n  {erl(c.enable)}\nSQL:\n  "
                f"{_left_pad(c.sql)}\nCreated at:\n  {rfc3339(rule.created_at / 1000, ms=True)}\n"
                f"Updated at:\n  {rfc3339(rule.updated_at / 1000, ms=True)}\n"
                f"Actions:\n  {actions}\n")
    return None
