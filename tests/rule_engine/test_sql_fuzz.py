"""Any text given as rule SQL either compiles or raises SqlError; a compiled rule evaluates to
None, a list of maps, or an Exception (what the runtime counts as failed.exception)."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emqpy.rule_engine.sql import SqlError, compile_sql

TOKENS = ["SELECT", "FOREACH", "DO", "INCASE", "FROM", "WHERE", "AS", "CASE", "WHEN", "THEN",
          "ELSE", "END", "AND", "OR", "NOT", "IN", "(", ")", "[", "]", ",", ".", "*", "+", "-",
          "/", "div", "mod", "=", "!=", "<>", "<", ">", "<=", ">=", "=~", "~=", "payload",
          "payload.a", "a", "b.c", "x[1]", "x[-0]", "[1..3]", "y[2..3]", "1", "2.5", "0",
          "'s'", "'t/#'", '"t/#"', "true", "false", "abs", "upper", "item", "--c\n", "\n"]

COLUMNS = {"payload": '{"a": 1, "b": [1, 2, {"c": "x"}]}', "topic": "t/a", "clientid": "c1",
           "qos": 1, "a": 2, "x": [1, "two", {"k": 3}], "y": [1, 2, 3], "item": 5}


def check(sql: str) -> None:
    try:
        rule = compile_sql(sql)
    except SqlError as e:
        assert str(e)
        return
    assert isinstance(rule.froms, tuple) and rule.froms
    try:
        out = rule.evaluate(COLUMNS)
    except Exception:
        return
    assert out is None or (isinstance(out, list) and all(isinstance(o, dict) for o in out))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=16))
def test_token_soup(tokens):
    check(" ".join(tokens))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS[16:]), max_size=10),
       st.lists(st.sampled_from(TOKENS[16:]), max_size=6))
def test_statement_shaped(fields, where):
    check(f"SELECT {' '.join(fields)} FROM \"t/#\" WHERE {' '.join(where)}")
    check(f"FOREACH {' '.join(fields)} FROM \"t/#\"")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text(text):
    check(text)
    check(f'SELECT {text} FROM "t"')
