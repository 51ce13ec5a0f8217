"""FOREACH [AS] [DO] [INCASE] evaluation: EMQX 5.8.1's t_sqlparse_foreach_* cases (those that
need no built-in function; the others are in test_sql_functions.py)."""
from __future__ import annotations

import pytest

from emqpy.rule_engine.compiler import RuleEvalError
from emqpy.rule_engine.sql import compile_sql


def run(sql: str, **context):
    return compile_sql(sql).test(context)


def test_foreach_with_and_without_as():
    payload = '{"sensors": [1, 2]}'
    out = run('foreach payload.sensors as s from "t/#"', payload=payload, topic="t/a")
    assert [o["s"] for o in out] == [1, 2]
    out = run('foreach payload.sensors from "t/#"', payload=payload, topic="t/a")
    assert [o["item"] for o in out] == [1, 2]


def test_foreach_without_do_outputs_the_columns_and_the_item():
    payload = '{"sensors": [{"cmd":"1"}, {"cmd":"2","name":"ct"}]}'
    out = run('foreach payload.sensors from "t/#"', payload=payload, clientid="c_a",
              topic="t/a", metadata={"rule_id": "r1"})
    assert [(o["item"], o["clientid"], o["metadata"]) for o in out] == [
        ({"cmd": "1"}, "c_a", {"rule_id": "r1"}),
        ({"cmd": "2", "name": "ct"}, "c_a", {"rule_id": "r1"})]
    # the unaliased payload.sensors field is put back as payload: {sensors: ...}
    assert all(o["payload"] == {"sensors": [{"cmd": "1"}, {"cmd": "2", "name": "ct"}]}
               for o in out)


def test_foreach_do():
    payload = '{"sensors": [{"cmd":"1"}, {"cmd":"2"}]}'
    assert run('foreach payload.sensors as s do s.cmd as msg_type from "t/#"',
               payload=payload, topic="t/a") == [{"msg_type": "1"}, {"msg_type": "2"}]
    assert run('foreach payload.sensors do item.cmd as msg_type from "t/#"',
               payload=payload, topic="t/a") == [{"msg_type": "1"}, {"msg_type": "2"}]
    assert run('foreach payload.sensors do item as item from "t/#"',
               payload='{"sensors": [1, 2]}', topic="t/a") == [{"item": 1}, {"item": 2}]


def test_foreach_incase():
    payload = '{"sensors": [{"cmd":1}, {"cmd":2}, {"cmd":3}]}'
    out = run('foreach payload.sensors as s incase s.cmd != 1 from "t/#"', payload=payload,
              topic="t/a")
    assert [o["s"] for o in out] == [{"cmd": 2}, {"cmd": 3}]
    out = run('foreach payload.sensors incase item.cmd != 1 from "t/#"', payload=payload,
              topic="t/a")
    assert [o["item"] for o in out] == [{"cmd": 2}, {"cmd": 3}]


@pytest.mark.parametrize("payload", ['{"sensors": 1}', '{"sensors": []}'])
def test_foreach_over_empty_or_non_list(payload):
    rule = compile_sql('foreach payload.sensors as s do s.cmd as msg_type, s.name as name '
                       'from "t/#"')
    assert rule.test({"payload": payload, "topic": "t/a"}) == []
    # nothing to hand to the actions: no result
    assert rule.evaluate({"payload": payload, "topic": "t/a"}) is None
    assert run('foreach payload.sensors from "t/#"', payload=payload, topic="t/a") == []


def test_foreach_do_reads_columns():
    out = run('foreach payload.list do item.id as zid, timestamp as t from "t/#"',
              payload='{"list": [{"id": 5},{"id": 15}]}', topic="t/a", timestamp=1700000000000)
    assert out == [{"zid": 5, "t": 1700000000000}, {"zid": 15, "t": 1700000000000}]


def test_foreach_cascaded_as_and_where():
    payload = ('{"sensors": {"page": 2, "collection": '
               '{"info":[{"name":"cmd1", "cmd":"1"}, {"cmd":"2"}]} } }')
    sql = ("foreach payload as p, p.sensors as s, s.collection as c, c.info as info "
           "do info.cmd as msg_type, info.name as name "
           "incase info.cmd != '1' "
           "from \"t/#\" where s.page = '2'")
    rule = compile_sql(sql)
    assert rule.test({"payload": payload, "topic": "t/a"}) == [{"msg_type": "2", "name": None}]
    sql3 = sql.replace("s.page = '2'", "s.page = '3'")
    assert compile_sql(sql3).test({"payload": payload, "topic": "t/a"}) is None
    assert compile_sql(sql3).evaluate({"payload": payload, "topic": "t/a"}) is None


def test_foreach_payload_string_is_not_a_list():
    # t_sqlparse_foreach_9: a payload that is a JSON array is still a string until decoded
    payload = '[{"ts": 1451649600512}]'
    assert run('foreach payload as p do p.ts as ts from "t/#"', payload=payload,
               topic="t/a") == []


def test_foreach_invalid_json():
    with pytest.raises(RuleEvalError, match="decode_json_failed"):
        run('foreach payload.sensors do item.cmd as msg_type from "t/#"',
            payload='{"sensors": [{"cmd":"1"} {"cmd":}]}', topic="t/a")


def test_foreach_with_both_quote_styles_in_from():
    rule = compile_sql("foreach payload.sensors from 't/#', \"$events/client_connected\" ")
    assert rule.is_foreach
    assert rule.froms == ("t/#", "$events/client_connected")
    assert rule.test({"payload": '{"sensors": 1}', "topic": "t/a"}) == []


def test_foreach_incase_must_be_a_condition():
    rule = compile_sql('foreach payload.sensors incase item from "t/#"')
    with pytest.raises(RuleEvalError):
        rule.evaluate({"payload": '{"sensors": [1]}', "topic": "t/a"})
