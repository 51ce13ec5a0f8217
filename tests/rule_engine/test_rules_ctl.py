"""`emqpy ctl rules list|show` (emqx_rule_engine_cli's output), through the broker's ctl
endpoint as the ctl process calls it."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("emqpy.rule_engine.sql")


def ctl(node, *args):
    return node.ok("POST", "/emqpy/ctl", json={"args": list(args)})


def test_rules_list_and_show(make_broker):
    n = make_broker()
    assert ctl(n, "rules", "list") == {"status": 0, "output": ""}
    n.ok("POST", "/rules", 201, json={
        "id": "r1", "name": "first", "description": "two\nlines", "sql": 'SELECT * FROM "t/#"',
        "actions": [{"function": "console"}, "http:hook1",
                    {"function": "republish", "args": {"topic": "a/b"}}]})
    n.ok("POST", "/rules", 201, json={"id": "r2", "sql": 'SELECT 1 FROM "x"', "enable": False})
    out = ctl(n, "rules", "list")["output"]
    assert out == ("Rule{id=r1, name=first, enabled=true, descr=two\nlines}\n"
                   "Rule{id=r2, name=, enabled=false, descr=}\n")
    show = ctl(n, "rules", "show", "r1")["output"]
    ts = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"
    assert re.fullmatch(
        "Id:\n  r1\nName:\n  first\nDescription:\n  two\n  lines\nEnabled:\n  true\n"
        'SQL:\n  SELECT \\* FROM "t/#"\n'
        f"Created at:\n  {ts}\nUpdated at:\n  {ts}\n"
        "Actions:\n  - Name:  console\n    Type:  function\n    Args:  #\\{\\}\n  "
        "- Name:         hook1\n    Action Type:  http\n    Type:         data-bridge\n  "
        "- Name:  republish\n    Type:  function\n    Args:  #\\{direct_dispatch => false,"
        'mqtt_properties => #\\{\\},payload => <<"\\$\\{payload\\}">>,qos => <<"\\$\\{qos\\}">>,'
        'retain => <<"\\$\\{retain\\}">>,topic => <<"a/b">>,'
        'user_properties => <<"\\$\\{user_properties\\}">>\\}\n  \n', show), show
    assert ctl(n, "rules", "show", "nope") == {"status": 0, "output": ""}
    bad = ctl(n, "rules", "frobnicate")
    assert bad["status"] == 1 and "rules show <RuleID>" in bad["output"]
