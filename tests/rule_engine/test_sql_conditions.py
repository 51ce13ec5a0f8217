"""WHERE conditions and comparisons as emqx_rule_runtime evaluates them: compare/3's coercions,
Erlang's term order, `undefined`, `=~`, IN (exact match), AND/OR/NOT, and the run-time errors
EMQX raises for what it parses but cannot evaluate."""
from __future__ import annotations

import pytest

from emqpy.rule_engine.compiler import RuleEvalError, compare, error_clause
from emqpy.rule_engine.sql import compile_sql


def where(cond: str, **columns):
    return compile_sql(f'SELECT * FROM "t/#" WHERE {cond}').evaluate(columns) is not None


@pytest.mark.parametrize("op, left, right, expected", [
    # numbers against strings: the string is read as a number
    (">", 31, "30", True),
    ("=", "30", 30, True),
    ("=", 30.0, "30", True),
    ("<", "1.5", 2, True),
    ("=", 1, 1.0, True),
    # booleans against strings compare as their names
    ("=", True, "true", True),
    ("=", "false", False, True),
    # undefined equals only undefined
    ("=", None, None, True),
    (">=", None, None, True),
    ("<>", None, None, False),
    ("=", None, 1, False),
    ("!=", None, 1, False),
    ("<>", 1, None, False),
    # Erlang's term order: number < atom < map < list < binary
    (">", True, 1000, True),
    ("<", 1, [], True),
    ("<", {}, [], True),
    ("<", [1, 2], [1, 3], True),
    ("<", [1], [1, 0], True),
    (">", "b", "a", True),
    ("<", False, True, True),
    ("=", [1, 2], [1, 2], True),
    ("=", {"a": 1}, {"a": 1}, True),
    ("=", True, 1, False),
    ("<>", "a", "b", True),
    ("=~", "t/a/b", "t/#", True),
    ("=~", "t/a/b", "t/+", False),
    ("=~", "$SYS/x", "#", False),
])
def test_compare(op, left, right, expected):
    assert compare(op, left, right) is expected


@pytest.mark.parametrize("left, right", [(1, "abc"), ("1e3", 1), (1, "1."), (1, " 1")])
def test_compare_number_with_non_numeric_string_raises(left, right):
    # binary_to_float/1 refuses them in EMQX: the rule fails (failed.exception)
    with pytest.raises(RuleEvalError):
        compare("=", left, right)


def test_where_with_json_payload():
    payload = '{"temp": 31, "name": "dev1", "on": true, "tags": ["a", "b"]}'
    assert where("payload.temp > 30", payload=payload)
    assert not where("payload.temp > 31", payload=payload)
    assert where("payload.temp >= '31'", payload=payload)
    assert where("payload.name = 'dev1' and payload.on = true", payload=payload)
    assert where("payload.on = 'true'", payload=payload)
    assert where("payload.tags[2] = 'b'", payload=payload)
    assert where("payload.missing = undefined_name", payload=payload)
    assert not where("payload.missing > 1", payload=payload)
    assert not where("payload.missing <> 1", payload=payload)


def test_topic_match():
    assert where("topic =~ 't/+/x'", topic="t/a/x")
    assert not where("topic =~ 't/+/x'", topic="t/a/y")
    with pytest.raises(RuleEvalError):
        where("qos =~ 't/#'", qos=1)


def test_in_is_an_exact_match():
    assert where("qos in (0, 1)", qos=1)
    assert not where("qos in (0, 2)", qos=1)
    assert not where("qos in (1.0)", qos=1)
    assert where("clientid in ('a', 'b', clientid)", clientid="c")


def test_and_or_not():
    assert where("qos = 1 and topic = 't/a'", qos=1, topic="t/a")
    assert not where("qos = 1 and topic = 't/b'", qos=1, topic="t/a")
    assert where("qos = 2 or topic = 't/a'", qos=1, topic="t/a")
    assert where("not qos = 2", qos=1)
    assert not where("not qos = 1", qos=1)
    assert where("not qos = 2 and (qos = 1 or qos = 3)", qos=1)
    # NOT of something that is not a boolean is false
    assert not where("not payload.x", payload='{"x": 1}')
    assert where("not payload.b", payload='{"b": false}')


def test_or_short_circuits():
    # the right side would raise (decode_json_failed) if it ran
    assert where("qos = 1 or payload.x = 1", qos=1, payload="not json")
    assert not where("qos = 2 and payload.x = 1", qos=1, payload="not json")


@pytest.mark.parametrize("cond", [
    "clientid",                 # a name is not a condition
    "1",
    "payload.x",
    "not (qos = 1 and qos = 1)",  # NOT evaluates its operand as a value
    "qos not in (1, 2)",
    "qos ~= 1",
])
def test_conditions_emqx_fails_at_run_time(cond):
    # EMQX accepts these rules and counts every message as failed.exception
    rule = compile_sql(f'SELECT * FROM "t/#" WHERE {cond}')
    with pytest.raises(RuleEvalError):
        rule.evaluate({"clientid": "c", "qos": 1, "payload": '{"x": 1}'})


def test_where_sees_selected_over_columns():
    rule = compile_sql('SELECT payload.x as clientid FROM "t/#" WHERE clientid = 5')
    assert rule.evaluate({"clientid": "c", "payload": '{"x": 5}'}) == [{"clientid": 5}]
    # a selected undefined hides the column in WHERE ...
    rule = compile_sql('SELECT payload.y as clientid FROM "t/#" WHERE clientid = \'c\'')
    assert rule.evaluate({"clientid": "c", "payload": '{"x": 5}'}) is None
    # ... but not in later fields, which fall back to the columns
    rule = compile_sql('SELECT payload.y as clientid, clientid as c2 FROM "t/#"')
    assert rule.evaluate({"clientid": "c", "payload": "{}"}) == [
        {"clientid": None, "c2": "c"}]


def test_unaliased_payload_path_shadows_the_payload_in_where():
    # SELECT payload.x puts {payload: {x: ...}}; WHERE reads that map, not the message's payload
    rule = compile_sql('SELECT payload.x FROM "t/#" WHERE payload.y = 2')
    assert rule.evaluate({"payload": '{"x": 1, "y": 2}'}) is None
    rule = compile_sql('SELECT payload.x FROM "t/#" WHERE payload.x = 1')
    assert rule.evaluate({"payload": '{"x": 1, "y": 2}'}) == [{"payload": {"x": 1}}]


def test_case_in_where_clause_of_select():
    rule = compile_sql("SELECT case when qos > 0 then 'reliable' else 'fast' end as kind "
                       'FROM "t/#" WHERE kind = \'fast\'')
    assert rule.evaluate({"qos": 0}) == [{"kind": "fast"}]
    assert rule.evaluate({"qos": 1}) is None


def test_unaliased_unary_minus_field_fails_as_in_emqx():
    # EMQX has no name to store `-1` under and fails the rule
    with pytest.raises(RuleEvalError):
        compile_sql('SELECT -1 FROM "t"').evaluate({})
    assert compile_sql('SELECT -1 as a FROM "t"').evaluate({}) == [{"a": -1}]


def test_unaliased_const_and_comparison_names():
    out = compile_sql("SELECT 'abc', 1, 1 = 1 FROM \"t\"").evaluate({})[0]
    assert out["abc"] == "abc"
    names = sorted(k for k in out if k != "abc")
    assert names[0].startswith("_v_const_1_") and out[names[0]] == 1
    assert names[1].startswith("_v_op_'='_") and out[names[1]] is True


@pytest.mark.parametrize("sql, columns, clause", [
    ('SELECT payload.x FROM "t"', {"payload": "not json"}, "select_and_transform_error"),
    ('SELECT topic FROM "t" WHERE payload.x = 1', {"payload": "no"}, "match_conditions_error"),
    ('FOREACH payload.x FROM "t"', {"payload": "no"}, "select_and_collect_error"),
    ('FOREACH xs FROM "t" WHERE payload.x = 1', {"xs": [1], "payload": "no"},
     "match_conditions_error"),
    ('FOREACH xs INCASE item FROM "t"', {"xs": [1]}, "match_incase_error"),
    ('FOREACH xs DO -item FROM "t"', {"xs": ["a"]}, "doeach_error"),
])
def test_error_clause_names_the_failing_part(sql, columns, clause):
    with pytest.raises(Exception) as err:
        compile_sql(sql).evaluate(columns)
    assert error_clause(err.value) == clause
