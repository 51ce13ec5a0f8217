"""Rule SQL cases of EMQX 5.8.1's emqx_rule_engine_SUITE that call built-in functions or
arithmetic (emqpy.rule_engine.funcs): how the compiler calls them, same inputs and results."""
from __future__ import annotations

import pytest

from emqpy.rule_engine.compiler import RuleEvalError
from emqpy.rule_engine.funcs import SQLFunctionError
from emqpy.rule_engine.sql import compile_sql


def run(sql: str, **context):
    return compile_sql(sql).test(context)


def generated(result: dict, prefix: str):
    values = [v for k, v in result.items() if k.startswith("_v_" + prefix)]
    assert len(values) == 1, result
    return values[0]


# ---------------------------------------------------------------- t_sqlselect_00

@pytest.mark.parametrize("expr, value", [("1-1", 0), ("-1 + 1", 0), ("1 + 1", 2), ("+1", 1)])
def test_plus_minus_and_unary(expr, value):
    assert run(f'select {expr} as a from "t/#"', payload="", topic="t/a") == {"a": value}


# ---------------------------------------------------------------- t_sqlselect_002

def test_div_and_mod_as_operators_and_functions():
    sql = ("select 2 mod 2   as mod1,\n"
           "       mod(3, 2) as mod2,\n"
           "       4 div 2   as div1,\n"
           "       div(7, 2) as div2\n"
           'from "t/#" ')
    assert run(sql, payload={"what": 4}, topic="t/a") == {
        "mod1": 0, "mod2": 1, "div1": 2, "div2": 3}


def test_arithmetic_precedence():
    assert run('select 1 + 2 * 3 as a, (1 + 2) * 3 as b, 7 - 2 - 1 as c, -2 * 3 as d '
               'from "t"', topic="t") == {"a": 7, "b": 9, "c": 4, "d": -6}
    assert run('select payload.x * 2 + 1 as y from "t"', payload='{"x": 20}', topic="t") == {
        "y": 41}


# ---------------------------------------------------------------- t_sqlparse_array_with_expressions

def test_list_of_expressions():
    out = run('select [21 + 21, abs(-abs(-2)), [1 + 1], 4] from "t/#"', payload="",
              topic="t/a")
    assert generated(out, "list_4_") == [42, 2, [2], 4]


# ---------------------------------------------------------------- json_decode

def test_json_decode_then_where_on_alias():
    sql = 'SELECT json_decode(payload) as p, payload FROM "t3/#", "t1" WHERE p.x = 1'
    rule = compile_sql(sql)
    assert rule.evaluate({"payload": '{"x":1}', "topic": "t1"}) == [
        {"p": {"x": 1}, "payload": '{"x":1}'}]
    assert rule.evaluate({"payload": '{"x":2}', "topic": "t1"}) is None
    rule = compile_sql('SELECT json_decode(payload) as p, payload FROM "t1" '
                       "WHERE p.x = 1 and p.y = 2")
    assert rule.evaluate({"payload": '{"x":1,"y":2}'}) is not None
    assert rule.evaluate({"payload": '{"x":1,"y":1}'}) is None


def test_inserting_into_a_decoded_map():
    # t_json_payload_decoding: a selected map takes new keys
    out = run('select json_decode(payload) as p, payload.a as p.z from "some/topic"',
              payload='{"a":1,"b":"2"}', topic="some/topic")
    assert out == {"p": {"a": 1, "b": "2", "z": 1}}


def test_array_index_on_decoded_payload():
    sql = 'select json_decode(payload) as p, p[1] as a from "t/#"'
    assert run(sql, payload='[{"x": 1}]', topic="t/a") == {"p": [{"x": 1}], "a": {"x": 1}}
    # not a list: the index reads nothing and `a` is undefined
    assert run(sql, payload='{"x": 1}', topic="t/a") == {"p": {"x": 1}, "a": None}


# ---------------------------------------------------------------- maps

def test_new_map():
    sql = ('select map_new() as a, map_new() as b, map_new() as x.y, map_new() as c[-0] '
           'from "t/#"')
    assert run(sql, payload="", topic="t/a") == {"a": {}, "b": {}, "x": {"y": {}}, "c": [{}]}


def test_payload_as_with_map_get():
    # t_sqlparse_payload_as (emqx/emqx#3866)
    sql = ("SELECT payload, "
           "map_get('engineWorkTime', payload.params, -1) as payload.params.engineWorkTime, "
           "map_get('hydOilTem', payload.params, -1) as payload.params.hydOilTem "
           'FROM "t/#"')
    payload1 = ('{ "msgId": 1002, "params": { "convertTemp": 20, "engineSpeed": 42, '
                '"hydOilTem": 30 } }')
    assert run(sql, payload=payload1, topic="t/a")["payload"]["params"] == {
        "convertTemp": 20, "engineSpeed": 42, "engineWorkTime": -1, "hydOilTem": 30}
    payload2 = '{ "msgId": 1002, "params": { "convertTemp": 20, "engineSpeed": 42 } }'
    assert run(sql, payload=payload2, topic="t/a")["payload"]["params"] == {
        "convertTemp": 20, "engineSpeed": 42, "engineWorkTime": -1, "hydOilTem": -1}


def test_map_put_into_user_properties():
    # t_sqlselect_inject_props, without the broker
    sql = ("SELECT json_decode(payload) as p, payload, "
           "map_put('inject_key', 'inject_val', user_properties) as user_properties "
           'FROM "t3/#", "t1" WHERE p.x = 1')
    out = compile_sql(sql).evaluate({"payload": '{"x":1}', "topic": "t1"})
    assert out == [{"p": {"x": 1}, "payload": '{"x":1}',
                    "user_properties": {"inject_key": "inject_val"}}]


# ---------------------------------------------------------------- FOREACH with functions

def test_foreach_do_incase_with_is_not_null():
    sql = ("foreach payload.sensors as s do s.cmd as msg_type, s.name as name "
           'incase is_not_null(s.cmd) from "t/#"')
    assert run(sql, payload='{"sensors": [{"cmd":"1"}, {"cmd":"2"}]}', topic="t/a") == [
        {"msg_type": "1", "name": None}, {"msg_type": "2", "name": None}]
    payload = '{"sensors": [{"cmd":"1", "name":"n1"}, {"cmd":"2"}, {"name":"n3"}]}'
    assert run(sql, payload=payload, topic="t/a") == [
        {"msg_type": "1", "name": "n1"}, {"msg_type": "2", "name": None}]
    assert run(sql, payload='{"sensors": [1, 2]}', topic="t/a") == []


def test_foreach_json_decode_do_reads_columns():
    out = run('foreach json_decode(payload) do item.id as zid, timestamp as t from "t/#"',
              payload='[{"id": 5},{"id": 15}]', topic="t/a", timestamp=1700000000000)
    assert out == [{"zid": 5, "t": 1700000000000}, {"zid": 15, "t": 1700000000000}]


PAYLOAD_7 = ('{"sensors": {"page": 2, "collection": '
             '{"info":[{"name":"cmd1", "cmd":"1"}, {"cmd":"2"}]} } }')


def test_foreach_cascaded_as_with_functions():
    sql = ("foreach json_decode(payload) as p, p.sensors as s, s.collection as c, "
           "c.info as info do info.cmd as msg_type, info.name as name "
           "incase is_not_null(info.cmd) from \"t/#\" where s.page = '2' ")
    assert run(sql, payload=PAYLOAD_7, topic="t/a") == [
        {"name": "cmd1", "msg_type": "1"}, {"msg_type": "2", "name": None}]
    assert run(sql.replace("'2'", "'3'"), payload=PAYLOAD_7, topic="t/a") is None


def test_foreach_is_map_and_sublist():
    payload = ('{"sensors": {"page": 2, "collection": '
               '{"info":["haha", {"name":"cmd1", "cmd":"1"}]} } }')
    coll = {"info": ["haha", {"name": "cmd1", "cmd": "1"}]}
    sql = ("foreach json_decode(payload) as p, p.sensors as s, s.collection as c, "
           "c.info as info do info.cmd as msg_type, info.name as name, s, c "
           "incase is_map(info) from \"t/#\" where s.page = '2' ")
    assert run(sql, payload=payload, topic="t/a") == [{
        "name": "cmd1", "msg_type": "1", "s": {"page": 2, "collection": coll}, "c": coll}]
    sql3 = ("foreach json_decode(payload) as p, p.sensors as s, s.collection as c, "
            "sublist(2,1,c.info) as info do info.cmd as msg_type, info.name as name "
            "from \"t/#\" where s.page = '2' ")
    assert run(sql3, payload=payload, topic="t/a") == [{"name": "cmd1", "msg_type": "1"}]


def test_foreach_over_decoded_payload():
    payload = '[{"ts": 1451649600512, "values": {"heartrate": 130}}]'
    assert run('foreach json_decode(payload) as p do p.ts as ts from "t/#"',
               payload=payload, topic="t/a") == [{"ts": 1451649600512}]


# ---------------------------------------------------------------- errors

def test_function_errors_fail_the_rule():
    # t_function_clause_errors: upper(undefined) raises in SELECT, DO and FOREACH
    for sql, context in [
        ('select upper(xxxx) from "t/a"', {}),
        ('foreach xs as x do upper(xxxx) from "t/a"', {"xs": [1, 2, 3]}),
        ('foreach upper(xxxx) as x from "t/a"', {}),
    ]:
        with pytest.raises(SQLFunctionError) as err:
            run(sql, payload="{}", topic="t/a", **context)
        assert err.value.details()["function_name"] == "upper"
        assert err.value.details()["arguments"] == [None]


def test_column_functions_see_columns_only_in_conditions():
    # EMQX hands them the columns in WHERE but a [Selected, Columns] list in SELECT, where
    # topic() and the like give undefined
    rule = compile_sql("select topic() as t, topic(1) as t1 from \"t/#\" "
                       "where topic() = 't/a' and topic(2) = 'a'")
    assert rule.evaluate({"topic": "t/a"}) == [{"t": None, "t1": None}]
    assert rule.evaluate({"topic": "t/b"}) is None


def test_unknown_function_fails_at_run_time():
    rule = compile_sql('select no_such_function(payload) from "t/#"')
    with pytest.raises(RuleEvalError, match="sql_function_not_supported"):
        rule.evaluate({"payload": "a", "topic": "t/a"})


def test_third_party_module_references():
    # t_sqlselect_with_3rd_party_funcs_unknown
    rule = compile_sql('select emqx_rule_funcs_demo_no_such_module.foo(payload) from "t/#"')
    with pytest.raises(RuleEvalError, match="sql_function_provider_module_not_loaded"):
        rule.evaluate({"payload": "a", "topic": "t/a"})
    rule = compile_sql('select lists.reverse(payload) from "t/#"')
    with pytest.raises(RuleEvalError, match="module_not_allowed"):
        rule.evaluate({"payload": "a", "topic": "t/a"})
    assert compile_sql('select emqx_rule_funcs.abs(-2) as a from "t"').evaluate({}) == [
        {"a": 2}]


def test_unaliased_function_field_gets_a_generated_name():
    out = compile_sql('select abs(-2) from "t"').evaluate({})[0]
    assert generated(out, "fun_{var,<<\"abs\">>}_") == 2


def test_function_in_where():
    rule = compile_sql("select clientid from \"t/#\" where is_not_null(payload.x) "
                       "and abs(payload.x) > 1")
    assert rule.evaluate({"clientid": "c", "payload": '{"x": -2}'}) == [{"clientid": "c"}]
    assert rule.evaluate({"clientid": "c", "payload": '{"y": -2}'}) is None


# ---------------------------------------------------------------- jq (t_sqlselect_001)

def test_jq():
    out = run("select jq('.what + .what', payload) as ans from \"t/#\" ",
              payload={"what": 4}, topic="t/a")
    assert out == {"ans": [8]}
    sql2 = ("SELECT jq('.a|.[]', '{\"a\": [{\"b\": 1}, {\"b\": 2}, {\"b\": 3}]}') as jq_action, "
            'jq_action[1].b as first_b from "t/#" ')
    assert run(sql2, payload={"what": 4}, topic="t/a")["first_b"] == 1
