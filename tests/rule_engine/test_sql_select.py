"""SELECT ... FROM ... WHERE evaluation: the SQL cases of EMQX 5.8.1's emqx_rule_engine_SUITE
(t_sqlselect_*, t_sqlparse_*) that need no built-in function, same inputs and results.

`run` is EMQX's emqx_rule_sqltester:test/1 without the event defaults: the selected map, or None
for EMQX's ``{error, nomatch}``."""
from __future__ import annotations

import orjson
import pytest

from emqpy.rule_engine.compiler import RuleEvalError
from emqpy.rule_engine.sql import compile_sql


def run(sql: str, **context):
    return compile_sql(sql).test(context)


def generated(result: dict, prefix: str):
    """The value of the one EMQX-generated field name (`_v_<prefix>...`)."""
    values = [v for k, v in result.items() if k.startswith("_v_" + prefix)]
    assert len(values) == 1, result
    return values[0]


# ---------------------------------------------------------------- t_sqlselect_0 (AS)

def test_select_star_where_nested_payload():
    payload = '{"cmd": {"info":"tt"}}'
    out = run("select * from \"t/#\" where payload.cmd.info = 'tt'", payload=payload,
              topic="t/a")
    # the payload stays the string it was: reading into it does not change the columns
    assert out == {"payload": payload, "topic": "t/a"}


def test_select_as_then_where_on_alias():
    payload = '{"cmd": {"info":"tt"}}'
    assert run("select payload.cmd as cmd from \"t/#\" where cmd.info = 'tt'",
               payload=payload, topic="t/a") == {"cmd": {"info": "tt"}}
    assert run("select payload.cmd as cmd, cmd.info as info from \"t/#\" "
               "where cmd.info = 'tt' and info = 'tt'", payload=payload, topic="t/a") == {
        "cmd": {"info": "tt"}, "info": "tt"}


def test_select_cascaded_as():
    out = run("select payload.cmd as cmd, cmd.info as meta.info from \"t/#\" "
              "where cmd.info = 'tt' and meta.info = 'tt'",
              payload='{"cmd": {"info":"tt"}}', topic="t/a")
    assert out == {"cmd": {"info": "tt"}, "meta": {"info": "tt"}}


def test_where_false_is_no_result():
    rule = compile_sql("select * from \"t/#\" where payload.cmd.info = 'tt'")
    assert rule.evaluate({"payload": '{"cmd": {"info": "x"}}', "topic": "t/a"}) is None
    assert rule.test({"payload": '{"cmd": {"info": "x"}}', "topic": "t/a"}) is None


def test_evaluate_returns_one_output_for_select():
    rule = compile_sql('SELECT payload.temp as t, clientid FROM "sensor/#" '
                       "WHERE payload.temp > 30")
    assert rule.froms == ("sensor/#",)
    assert rule.is_foreach is False
    assert rule.sql.startswith("SELECT payload.temp")
    columns = {"payload": '{"temp": 31.5}', "clientid": "c1", "topic": "sensor/1"}
    assert rule.evaluate(columns) == [{"t": 31.5, "clientid": "c1"}]
    assert rule.evaluate({**columns, "payload": '{"temp": 30}'}) is None
    # no temp at all: undefined > 30 is false
    assert rule.evaluate({**columns, "payload": '{"hum": 40}'}) is None


# ---------------------------------------------------------------- t_sqlparse_event_*

def test_select_event_columns():
    assert run('select topic as tp from "$events/session_subscribed"', topic="t/tt",
               event="session.subscribed") == {"tp": "t/tt"}
    assert run('select clientid from "$events/client_connected"', clientid="abc",
               event="client.connected") == {"clientid": "abc"}
    rule = compile_sql('select clientid, topic as tp from "t/tt", "$events/client_connected"')
    assert rule.froms == ("t/tt", "$events/client_connected")
    assert rule.test({"clientid": "abc", "topic": "t/tt"}) == {"clientid": "abc", "tp": "t/tt"}


def test_from_takes_both_quote_styles():
    rule = compile_sql("select clientid, topic as tp from 't/tt', \"$events/client_connected\" ")
    assert rule.froms == ("t/tt", "$events/client_connected")
    assert rule.test({"clientid": "abc", "topic": "t/tt"}) == {"clientid": "abc", "tp": "t/tt"}


# ---------------------------------------------------------------- t_sqlselect_as_put

def test_as_puts_into_the_payload():
    payload = {"f1": "f1", "f2": "f2", "data": [{"name": "n1", "idx": 1},
                                                 {"name": "n2", "idx": 2}]}
    out = run("select payload, 'STEVE' as payload.data[1].name from \"t/#\" ",
              payload=orjson.dumps(payload).decode(), topic="t/a")
    assert out == {"payload": {"f1": "f1", "f2": "f2", "data": [
        {"name": "STEVE", "idx": 1}, {"name": "n2", "idx": 2}]}}


def test_payload_as_keeps_other_keys():
    # t_sqlparse_payload_as (emqx/emqx#3866), with map_get replaced by the value it returns
    sql = ("SELECT payload, payload.params.hydOilTem as payload.params.engineWorkTime "
           "FROM \"t/#\"")
    out = run(sql, payload='{ "msgId": 1002, "params": { "convertTemp": 20, '
                           '"engineSpeed": 42, "hydOilTem": 30 } }', topic="t/a")
    assert out == {"payload": {"msgId": 1002, "params": {
        "convertTemp": 20, "engineSpeed": 42, "hydOilTem": 30, "engineWorkTime": 30}}}


def test_nested_get_through_an_alias_of_the_payload():
    assert run('select payload as p, p.a.b as c from "t/#" ',
               topic="t/1", payload='{"a": {"b": 0}}') == {"p": '{"a": {"b": 0}}', "c": 0}


# ---------------------------------------------------------------- t_json_payload_decoding

@pytest.mark.parametrize("fields, payload, expected", [
    ("payload.measurement, payload.data_type, payload.value, payload.device_id",
     {"measurement": "temp", "data_type": "FLOAT", "value": "32.12", "device_id": "devid"},
     {"payload": {"measurement": "temp", "data_type": "FLOAT", "value": "32.12",
                  "device_id": "devid"}}),
    # "last write wins": putting into a JSON string starts a new map
    ("payload as p, payload.f as p.answer", {"f": 42, "keep": "that?"}, {"p": {"answer": 42}}),
    ("payload as p, payload.f as p.jsonlike.f",
     {"jsonlike": orjson.dumps({"a": 0}).decode(), "f": "huh"},
     {"p": {"jsonlike": {"f": "huh"}}}),
    ("payload as p, 42 as p, payload.measurement as p.measurement, 51 as p",
     {"measurement": "temp", "data_type": "FLOAT"}, {"p": 51}),
])
def test_json_payload_decoding(fields, payload, expected):
    assert run(f'select {fields} from "some/topic"', payload=orjson.dumps(payload).decode(),
               topic="some/topic") == expected


# ---------------------------------------------------------------- arrays: index and range

def test_array_index_get():
    sql = 'select payload.x[2] from "t/#"'
    assert run(sql, payload={"x": [1, 3, 4]}, topic="t/a") == {"payload": {"x": [3]}}
    assert run('select payload.x[2].y from "t/#"', payload={"x": [1, {"y": 3}, 4]},
               topic="t/a") == {"payload": {"x": [{"y": 3}]}}
    assert run('select payload.x[2].y as b from "t/#"', payload={"x": [1, {"y": 3}, 4]},
               topic="t/a") == {"b": 3}


def test_array_negative_index():
    assert run('select payload.x[-2].y as b from "t/#"', payload={"x": [1, {"y": 3}, 4]},
               topic="t/a") == {"b": 3}


def test_array_append_to_head_and_tail():
    sql = 'select payload.x as b, 1 as c[-0], 2 as c[-0], b as c[0] from "t/#"'
    assert run(sql, payload={"x": 0}, topic="t/a") == {"b": 0, "c": [0, 1, 2]}
    sql = 'select [] as c, 1 as c[-0], 2 as c[-0], 0 as c[0] from "t/#"'
    assert run(sql, payload="", topic="t/a") == {"c": [0, 1, 2]}


def test_list_literal_reads_names():
    sql = 'select [payload.a, "topic", \'c\'] as c, 1 as c[-0], 2 as c[-0], 0 as c[0] from "t/#"'
    assert run(sql, payload='{"a":11}', topic="t/a") == {"c": [0, 11, "t/a", "c", 1, 2]}


def test_array_index_in_json_string_payload():
    payload = '{"x": [1,{"y": [1,2]},3]}'
    assert run('select payload, payload.x[2].y from "t/#"', payload=payload, topic="t/a") == {
        "payload": {"x": [1, {"y": [1, 2]}, 3]}}
    assert run('select payload.x[2].y as b from "t/#"', payload=payload, topic="t/a") == {
        "b": [1, 2]}
    assert run('select payload.x[2].y as b.c from "t/#"', payload=payload, topic="t/a") == {
        "b": {"c": [1, 2]}}


def test_array_index_put():
    payload = '{"x": [1,{"y": [1,2]},3]}'
    assert run('select 0 as payload.x[2].y from "t/#"', payload=payload, topic="t/a") == {
        "payload": {"x": [{"y": 0}]}}
    assert run('select payload.x, 0 as payload.x[2].y from "t/#"', payload=payload,
               topic="t/a") == {"payload": {"x": [1, {"y": 0}, 3]}}


def test_unaliased_list_gets_a_generated_name():
    out = run('select [1,2,3,4] from "t/#"', payload="", topic="t/a")
    assert generated(out, "list_4_") == [1, 2, 3, 4]


def test_array_range():
    assert run('select payload.a[1..4] as c from "t/#"', payload='{"a":[0,1,2,3,4,5]}',
               topic="t/a") == {"c": [0, 1, 2, 3]}
    with pytest.raises(ValueError, match="non_list_data"):
        run('select payload.a[1..4] as c from "t/#"', payload='{"x":[0,1,2,3,4,5]}',
            topic="t/a")
    sql = 'select [1..4] as c, 5 as c[-0], 6 as c[-0], 0 as c[0] from "t/#"'
    assert run(sql, payload="", topic="t/a") == {"c": [0, 1, 2, 3, 4, 5, 6]}


def test_array_range_without_as():
    assert generated(run('select [1..4] from "t/#"', payload="", topic="t/a"),
                     "range_{1,4}_") == [1, 2, 3, 4]
    assert run('select a[2..4] from "t/#"', a=[1, 2, 3, 4, 5], topic="t/a") == {"a": [2, 3, 4]}
    assert run('select payload.a[1..4] from "t/#"', payload='{"a":[0,1,2,3,4,5]}',
               topic="t/a") == {"payload": {"a": [0, 1, 2, 3]}}
    assert run('select payload.a[-2..-1] as b from "t/#"', payload='{"a":[0,1,2,3,4,5]}',
               topic="t/a") == {"b": [4, 5]}


def test_true_false():
    sql = 'select true as a, false as b, false as x.y, true as c[-0] from "t/#"'
    assert run(sql, payload="", topic="t/a") == {"a": True, "b": False, "x": {"y": False},
                                                 "c": [True]}


def test_select_metadata_only_when_asked():
    context = {"payload": "abc", "topic": "t/a", "metadata": {"rule_id": "r1"}}
    assert compile_sql('select payload from "t/#"').test(context) == {"payload": "abc"}
    assert compile_sql('select payload, metadata from "t/#"').test(context) == {
        "payload": "abc", "metadata": {"rule_id": "r1"}}


# ---------------------------------------------------------------- undefined

def test_undefined_variables():
    assert run('select a, b from "t/#" where a = b', payload="", topic="t/a") == {
        "a": None, "b": None}
    assert run('select a, b from "t/#" where a > b', payload='{"b":1}', topic="t/a") is None
    assert run('select a < b as c from "t/#"', payload='{"b":1}', topic="t/a") == {"c": False}


# ---------------------------------------------------------------- t_sqlparse_case_when_*

CASE_1 = ('select case when payload.x < 0 then 0 when payload.x > 7 then 7 else payload.x '
          'end as y from "t/#"')
CASE_2 = 'select case payload.x when 1 then 2 when 2 then 3 else 4 end as y from "t/#"'
CASE_3 = 'select case when payload.x < 0 then 0 when payload.x > 7 then 7 end as y from "t/#"'


@pytest.mark.parametrize("sql, x, y", [
    (CASE_1, 1, 1), (CASE_1, 0, 0), (CASE_1, -1, 0), (CASE_1, 7, 7), (CASE_1, 8, 7),
    (CASE_2, 1, 2), (CASE_2, 2, 3), (CASE_2, 4, 4), (CASE_2, 7, 4), (CASE_2, 8, 4),
    (CASE_3, -1, 0), (CASE_3, 8, 7),
])
def test_case_when(sql, x, y):
    assert run(sql, payload=f'{{"x": {x}}}', topic="t/a") == {"y": y}


@pytest.mark.parametrize("x", [1, 5, 0, 7])
def test_case_when_without_else_gives_undefined(x):
    assert run(CASE_3, payload=f'{{"x": {x}}}', topic="t/a") == {"y": None}


def test_case_switch_matches_exactly():
    # a CASE switch is an Erlang pattern match: 1 does not match 1.0
    sql = 'select case payload.x when 1 then \'int\' else \'other\' end as y from "t/#"'
    assert run(sql, payload='{"x": 1.0}', topic="t/a") == {"y": "other"}
    assert run(sql, payload='{"x": 1}', topic="t/a") == {"y": "int"}


# ---------------------------------------------------------------- invalid JSON

def test_invalid_json_payload_raises_when_read():
    with pytest.raises(RuleEvalError, match="decode_json_failed"):
        run('select payload.a[1..4] as c from "t/#"', payload='{"x":[0,1,2,3,}', topic="t/a")
    # not read: no error
    assert run('select topic from "t/#"', payload="{not json", topic="t/a") == {"topic": "t/a"}


def test_payload_map_context_is_used_as_is():
    # the sqltester's context may carry an already decoded payload
    assert run('select payload.what as w from "t/#"', payload={"what": 4}, topic="t/a") == {
        "w": 4}


# ---------------------------------------------------------------- t_ctx_pub (rule_test API)

def test_ctx_pub():
    context = {"clientid": "c_emqx", "event_type": "message_publish",
               "payload": '{"msg": "hello"}', "qos": 1, "topic": "t/a", "username": "u_emqx"}
    out = compile_sql('SELECT payload.msg as msg, clientid, username, payload, topic, qos '
                      'FROM "t/#"').test(context)
    assert out == {"msg": "hello", "clientid": "c_emqx", "username": "u_emqx",
                   "payload": '{"msg": "hello"}', "topic": "t/a", "qos": 1}


def test_quoted_key_with_space_and_numeric_key():
    payload = '{"key with space": 1, "2": "two", "arr": [10, 20, 30]}'
    out = run("select payload.'key with space' as a, payload.2 as b, payload.arr[-1] as c "
              'from "t"', payload=payload, topic="t")
    assert out == {"a": 1, "b": "two", "c": 30}


def test_index_from_a_name():
    # an index that is a name reads it from the map the path starts at: the decoded payload
    # for a path into the payload
    payload = '{"a": [5, 6, 7], "i": 2}'
    assert run('select payload.a[i] as v from "t"', payload=payload, topic="t") == {"v": 6}
    assert run('select payload.a[payload.i] as v from "t"', payload=payload,
               topic="t") == {"v": None}
    assert run('select a[i] as v from "t"', a=[5, 6, 7], i=3, topic="t") == {"v": 7}
    assert run('select a[i] as v from "t"', a=[5, 6, 7], i="x", topic="t") == {"v": None}


def test_nested_json_string_is_read_as_json():
    # emqx_rule_maps reads a JSON string met on a path
    assert run('select payload.inner.k as k from "t"', payload='{"inner": "{\\"k\\": 5}"}',
               topic="t") == {"k": 5}
