"""The rules REST API (EMQX's emqx_rule_engine_api and its suites), against a started broker."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from support.node import assert_error

pytest.importorskip("emqpy.rule_engine.sql")

ROOT = Path(__file__).resolve().parents[2]


def simple_rule(suffix: str = "", **kw) -> dict:
    return {"description": "A simple rule", "enable": True,
            "actions": [{"function": "console"}], "sql": 'SELECT * from "t/1"',
            "name": f"test_rule{suffix}", **kw}


@pytest.fixture(autouse=True)
def _no_rules_left(api):
    yield
    for r in api.get("/rules", params={"limit": 10000})["data"]:
        api.ok("DELETE", f"/rules/{r['id']}", 204)


def test_crud(api):
    rule = api.ok("POST", "/rules", 201, json=simple_rule(id="my_rule"))
    assert rule["id"] == "my_rule"
    assert set(rule) == {"id", "name", "from", "actions", "sql", "enable", "created_at",
                         "description"}
    assert rule["from"] == ["t/1"] and rule["actions"] == [{"function": "console"}]
    assert len(api.get("/rules")["data"]) == 1
    # the same id again: 400
    assert_error(api.api.post("/rules", json=simple_rule("x", id="my_rule")), 400,
                 "BAD_REQUEST", "rule id already exists")
    api.ok("PUT", "/rules/my_rule/metrics/reset", 204)
    assert api.get("/rules/my_rule") == rule
    m = api.get("/rules/my_rule/metrics")
    assert m["id"] == "my_rule" and m["node_metrics"][0]["node"] == api.name
    assert m["metrics"]["matched"] == 0 and "matched.rate.last5m" in m["metrics"]
    rule2 = api.ok("PUT", "/rules/my_rule", json=simple_rule(sql='select * from "t/b"'))
    assert api.get("/rules/my_rule") == rule2
    assert rule2["sql"] == 'select * from "t/b"' and rule2["from"] == ["t/b"]
    assert rule2["created_at"] == rule["created_at"]
    for path, method in (("/rules/unknown_rule", "GET"), ("/rules/unknown_rule/metrics", "GET"),
                         ("/rules/unknown_rule/metrics/reset", "PUT")):
        assert_error(api.api.request(method, path), 404, "NOT_FOUND")
    api.ok("DELETE", "/rules/my_rule", 204)
    assert_error(api.api.delete("/rules/my_rule"), 404, "NOT_FOUND")
    assert_error(api.api.get("/rules/my_rule"), 404, "NOT_FOUND")


def test_generated_ids_and_bad_ids(api):
    rule = api.ok("POST", "/rules", 201, json=simple_rule())
    assert len(rule["id"]) == 8
    assert_error(api.api.post("/rules", json=simple_rule(id="")), 400, "BAD_REQUEST",
                 "empty rule id is not allowed")
    assert_error(api.api.post("/rules", json=simple_rule(id=42)), 400, "BAD_REQUEST",
                 "rule id must be a string")
    # ids the saved config would not keep intact are refused, not lost at the next start
    for bad in ("a.b", "a:b", "é", "a b"):
        assert_error(api.api.post("/rules", json=simple_rule(id=bad)), 400, "BAD_REQUEST",
                     "rule id may only contain")
    assert_error(api.api.put("/rules/a.b", json=simple_rule()), 400, "BAD_REQUEST")
    assert api.ok("POST", "/rules", 201, json=simple_rule(id="My-rule_1"))["id"] == "My-rule_1"


def test_bad_sql_and_actions_are_400(api):
    r = api.api.post("/rules", json=simple_rule(id="bad", sql="BAD_SQL"))
    assert_error(r, 400, "BAD_REQUEST", "Bad Arguments", "rule_engine.rules.bad.sql")
    assert_error(api.api.post("/rules", json=simple_rule(actions=[{"function": "m:f"}])), 400,
                 "BAD_REQUEST", "unknown_action_function")
    assert_error(api.api.post("/rules", json=simple_rule(actions=["nocolon"])), 400,
                 "BAD_REQUEST", "should be of pattern {type}:{name}")
    assert_error(api.api.post("/rules", json=simple_rule(actions=[{"function": "republish"}])),
                 400, "BAD_REQUEST", "topic")
    assert_error(api.api.post("/rules", json={"name": "no sql"}), 400, "BAD_REQUEST", "sql")
    assert_error(api.api.post("/rules", content=b"[1]",
                              headers={"content-type": "application/json"}), 400, "BAD_REQUEST")
    assert api.get("/rules")["data"] == []  # nothing half-made


def test_data_integration_actions_that_do_not_exist(api):
    # As EMQX 5.8.1: accepted (a warning is logged); every call is discarded.
    rule = api.ok("POST", "/rules", 201, json=simple_rule(id="di", actions=["http:nohook"]))
    assert rule["actions"] == ["http:nohook"]
    pub = api.mqtt()
    pub.publish("t/1", b"x", qos=1)
    m = api.get("/rules/di/metrics")["metrics"]
    assert (m["matched"], m["passed"], m["actions.total"], m["actions.discarded"],
            m["actions.success"]) == (1, 1, 1, 1, 0)


def test_list_filters_and_paging(api):
    ids = [api.ok("POST", "/rules", 201, json=simple_rule(str(i)))["id"] for i in range(1, 21)]
    listed = api.get("/rules")
    assert len(listed["data"]) == 20 and listed["meta"]["count"] == 20
    first = ids[0]
    api.ok("PUT", f"/rules/{first}", json={
        "description": "中文的描述也能搜索", "enable": False,
        "actions": [{"function": "console"}], "sql": 'SELECT * from "t/1/+"',
        "name": "test_rule_update1"})
    r1 = api.get("/rules", params={"enable": "false"})
    assert r1["meta"]["count"] == 1 and r1["data"][0]["id"] == first
    assert api.get("/rules", params={"like_description": "也能"})["data"] == r1["data"]
    assert len(api.get("/rules", params={"from": "t/1"})["data"]) == 19
    assert api.get("/rules", params={"like_from": "t/1/+"})["data"] == r1["data"]
    assert api.get("/rules", params={"match_from": "t/+/+"})["data"] == r1["data"]
    assert api.get("/rules", params={"like_id": first})["data"] == r1["data"]
    # fuzzy filters: no total, as in EMQX
    assert "count" not in api.get("/rules", params={"like_id": first})["meta"]
    page = api.get("/rules", params={"page": 2, "limit": 15})
    assert len(page["data"]) == 5 and page["meta"] == {"page": 2, "limit": 15, "count": 20,
                                                       "hasnext": False}
    assert_error(api.api.get("/rules", params={"limit": 0}), 400, "BAD_REQUEST")
    assert_error(api.api.get("/rules", params={"enable": "perhaps"}), 400, "BAD_REQUEST")


def test_update_resets_the_metrics(api):
    api.ok("POST", "/rules", 201, json=simple_rule(id="rm"))
    pub = api.mqtt()
    for _ in range(3):
        pub.publish("t/1", b"x", qos=1)
    m = api.get("/rules/rm/metrics")["metrics"]
    assert m["matched"] == 3 and m["passed"] == 3
    api.ok("PUT", "/rules/rm", json=simple_rule(enable=False))
    m = api.get("/rules/rm/metrics")["metrics"]
    assert m["matched"] == 0 and m["passed"] == 0


def test_reset_metrics(api):
    api.ok("POST", "/rules", 201, json=simple_rule(id="rs"))
    api.mqtt().publish("t/1", b"x", qos=1)
    assert api.get("/rules/rs/metrics")["metrics"]["matched"] == 1
    api.ok("PUT", "/rules/rs/metrics/reset", 204)
    assert api.get("/rules/rs/metrics")["metrics"]["matched"] == 0


def test_put_creates_a_missing_rule(api):
    # EMQX: PUT writes the rule's config, which creates it
    rule = api.ok("PUT", "/rules/made_by_put", json=simple_rule())
    assert rule["id"] == "made_by_put"
    assert api.get("/rules/made_by_put")["sql"] == 'SELECT * from "t/1"'


def test_rule_engine_settings(api):
    api.ok("POST", "/rules", 201, json=simple_rule())
    cfg = api.get("/rule_engine")
    assert "rules" not in cfg
    assert cfg["ignore_sys_message"] is True and cfg["jq_function_default_timeout"] == 10000
    new = api.ok("PUT", "/rule_engine", json={"jq_function_default_timeout": "12s",
                                               "jq_implementation_module": "jq_port"})
    assert new["jq_function_default_timeout"] == 12000
    assert_error(api.api.put("/rule_engine", json={"rules": {"some_rule": {
        "sql": 'SELECT * FROM "t/#"'}}}), 400, "BAD_REQUEST")
    assert_error(api.api.put("/rule_engine", json={"something": "weird"}), 400, "BAD_REQUEST")
    assert_error(api.api.put("/rule_engine", json={"jq_function_default_timeout": "x"}), 400,
                 "BAD_REQUEST")
    api.ok("PUT", "/rule_engine", json={"jq_function_default_timeout": "10s"})


def test_rule_events(api):
    events = api.get("/rule_events")
    by_topic = {e["event"]: e for e in events}
    assert list(by_topic) == [
        "$events/message_publish", "$events/message_delivered", "$events/message_acked",
        "$events/message_dropped", "$events/client_connected", "$events/client_disconnected",
        "$events/client_connack", "$events/client_check_authz_complete",
        "$events/client_check_authn_complete", "$events/session_subscribed",
        "$events/session_unsubscribed", "$events/delivery_dropped", "$bridges/mqtt:*"]
    pub = by_topic["$events/message_publish"]
    assert pub["title"] == {"en": "message publish", "zh": "消息发布"}
    assert pub["columns"] == ["event", "id", "clientid", "username", "payload", "peerhost",
                              "peername", "topic", "qos", "flags", "publish_received_at",
                              "pub_props", "timestamp", "node", "client_attrs"]
    assert pub["test_columns"]["payload"] == ['{"msg": "hello"}',
                                              "the payload of the MQTT message"]
    assert "reason" in by_topic["$events/delivery_dropped"]["columns"]


def _test_ctx(**kw):
    return {"clientid": "c_emqx", "event_type": "message_publish",
            "payload": '{"msg": "hello"}', "qos": 1, "topic": "t/a", "username": "u_emqx", **kw}


def test_rule_test(api):
    out = api.ok("POST", "/rule_test", json={"sql": 'SELECT\n  *\nFROM\n  "t/#"',
                                             "context": _test_ctx()})
    assert out["clientid"] == "c_emqx" and out["topic"] == "t/a" and out["qos"] == 1
    assert out["event"] == "message.publish" and out["payload"] == '{"msg": "hello"}'
    # the columns the context left out come from the event's examples
    assert out["peerhost"] == "192.168.0.10" and out["node"] == api.name
    assert_error(api.api.post("/rule_test", json={"sql": 'SELECT * FROM "t/#"',
                                                 "context": _test_ctx(topic="a")}),
                 412, "NOT_MATCH", "SQL Not Match")
    # an event whose topic is not in FROM
    assert_error(api.api.post("/rule_test", json={"sql": 'SELECT * FROM "t/#"', "context": {
        "clientid": "c_emqx", "event_type": "client_connected", "username": "u_emqx"}}),
        412, "NOT_MATCH")
    out = api.ok("POST", "/rule_test", json={
        "sql": 'SELECT * FROM "t/#", "$events/session_unsubscribed"',
        "context": {"clientid": "c", "event_type": "session_unsubscribed", "qos": 1,
                    "topic": "t/a", "username": "u"}})
    assert out["event"] == "session.unsubscribed"
    assert_error(api.api.post("/rule_test", json={"sql": "BAD_SQL", "context": _test_ctx()}),
                 400, "BAD_REQUEST")
    assert_error(api.api.post("/rule_test", json={"context": _test_ctx()}), 400, "BAD_REQUEST")
    assert_error(api.api.post("/rule_test", json={"sql": 'SELECT * FROM "t/#"',
                                                 "context": _test_ctx(event_type="nope")}),
                 400, "BAD_REQUEST")


def test_rule_test_reports_sql_errors(api):
    r = api.api.post("/rule_test", json={"sql": 'SELECT\n  payload.msg\nFROM\n  "t/#"',
                                         "context": _test_ctx(payload='{"msg": "hel')})
    assert_error(r, 400, "BAD_REQUEST")
    assert json.loads(r.json()["message"]) == {"select_and_transform_error":
                                               "decode_json_failed"}
    r = api.api.post("/rule_test", json={"sql": 'SELECT sqrt(payload.msg) FROM "t/#"',
                                         "context": _test_ctx()})
    assert_error(r, 400, "BAD_REQUEST")
    reason = json.loads(r.json()["message"])["select_and_transform_error"]
    assert reason["reason"] == "bad_sql_function_argument"
    assert reason["function_name"] == "sqrt"


def test_apply_rule(api):
    api.ok("POST", "/rules", 201, json=simple_rule(id="ap", sql='SELECT * FROM "t/#"'))
    assert api.ok("POST", "/rules/ap/test", json={"context": _test_ctx()}) == ["ok"]
    m = api.get("/rules/ap/metrics")["metrics"]
    # stopped after rendering: counted as EMQX counts it
    assert (m["matched"], m["passed"], m["actions.failed.unknown"]) == (1, 1, 1)
    assert_error(api.api.post("/rules/nope/test", json={"context": _test_ctx()}), 404,
                 "RULE_NOT_FOUND")
    assert_error(api.api.post("/rules/ap/test", json={"context": _test_ctx(topic="x")}), 412,
                 "NOT_MATCH")


def test_rules_survive_a_restart(make_broker, tmp_path):
    n = make_broker(data_dir=str(tmp_path))
    made = n.ok("POST", "/rules", 201, json=simple_rule(id="keep"))
    n.ok("PUT", "/rule_engine", json={"ignore_sys_message": False})
    n.restart()
    assert n.get("/rules/keep") == made
    assert n.get("/rule_engine")["ignore_sys_message"] is False
    n.ok("DELETE", "/rules/keep", 204)
    n.restart()
    assert_error(n.api.get("/rules/keep"), 404, "NOT_FOUND")


def test_rules_declared_in_the_config_file(make_broker):
    n = make_broker({"rule_engine": {"rules": {
        "from_conf": {"sql": 'SELECT * FROM "conf/#"', "description": "from emqx.conf"},
        "broken": {"sql": "SELECT FROM WHERE"}}}})
    assert n.get("/rules/from_conf")["description"] == "from emqx.conf"
    # a rule the engine cannot compile is logged and left out, the others run
    assert_error(n.api.get("/rules/broken"), 404, "NOT_FOUND")


def test_kill_9_after_the_201_keeps_the_rule(tmp_path):
    code = textwrap.dedent(f"""
        import asyncio, emqpy
        async def main():
            free = {{"default": {{"bind": "127.0.0.1:0"}}}}
            b = emqpy.Node({{"listeners": {{"tcp": free, "ssl": free, "ws": free, "wss": free}},
                              "dashboard": {{"listeners": {{"http": {{"bind": "127.0.0.1:0"}}}}}}}},
                             data_dir={str(tmp_path)!r})
            await b.start()
            print(b.api.port, flush=True)
            await asyncio.Event().wait()
        asyncio.run(main())
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = int(p.stdout.readline())
        with httpx.Client(auth=("admin", "public"), timeout=30) as c:
            r = c.post(f"http://127.0.0.1:{port}/api/v5/rules", json=simple_rule(id="k9"))
            assert r.status_code == 201, r.text
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait(10)
        p.stdout.close()
    from emqpy.config import load_config
    cfg = load_config(None, env={}, data_dir=str(tmp_path))
    assert cfg.rule_engine.rules["k9"].sql == 'SELECT * from "t/1"'


def test_rules_put_through_the_configs_api(api):
    # PUT /configs (HOCON) writes the same config: the running rules follow it
    body = 'rule_engine { rules { via_configs { sql = "SELECT * FROM \\"c/#\\"" } } }'
    r = api.api.put("/configs", content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    assert api.get("/rules/via_configs")["from"] == ["c/#"]
    bad = 'rule_engine { rules { bad_sql { sql = "SELECT FROM" } } }'
    r = api.api.put("/configs", content=bad, headers={"content-type": "text/plain"})
    assert_error(r, 400, "UPDATE_FAILED", "rule_engine.rules.bad_sql.sql")


def test_prometheus_data_integration(api):
    api.ok("POST", "/rules", 201, json=simple_rule(id="prom", actions=[
        {"function": "console"}, "http:nohook"]))
    api.mqtt().publish("t/1", b"x", qos=1)
    with api.client() as c:  # no authentication unless prometheus.enable_basic_auth
        text = c.get("/api/v5/prometheus/data_integration").text
        js = c.get("/api/v5/prometheus/data_integration",
                   headers={"accept": "application/json"}).json()
    assert "# TYPE emqx_rules_count gauge\n" in text and "\nemqx_rules_count 1\n" in text
    assert "\nemqx_actions_count 2\n" in text
    assert '\nemqx_rule_matched{id="prom"} 1\n' in text
    assert '\nemqx_rule_actions_discarded{id="prom"} 1\n' in text
    assert '\nemqx_rule_enable{id="prom"} 1\n' in text
    assert js["data_integration_overview"] == {"emqx_rules_count": 1, "emqx_actions_count": 2,
                                               "emqx_connectors_count": 0}
    assert js["rules"][0]["id"] == "prom" and js["rules"][0]["emqx_rule_passed"] == 1
    with api.client() as c:
        text = c.get("/api/v5/prometheus/data_integration",
                     params={"mode": "all_nodes_unaggregated"}).text
    assert f'emqx_rule_matched{{id="prom",node="{api.name}"}} 1' in text


def test_any_update_resets_the_metrics(api):
    api.ok("POST", "/rules", 201, json=simple_rule(id="same"))
    api.mqtt().publish("t/1", b"x", qos=1)
    assert api.get("/rules/same/metrics")["metrics"]["matched"] == 1
    api.ok("PUT", "/rules/same", json=simple_rule())  # the same config again
    assert api.get("/rules/same/metrics")["metrics"]["matched"] == 0


def test_the_jq_timeout_setting_reaches_jq(api):
    from emqpy.rule_engine import funcs_jq
    api.ok("PUT", "/rule_engine", json={"jq_function_default_timeout": "3s"})
    assert funcs_jq.DEFAULT_TIMEOUT_MS == 3000
    api.ok("PUT", "/rule_engine", json={"jq_function_default_timeout": "10s"})
    assert funcs_jq.DEFAULT_TIMEOUT_MS == 10000


# emqx_rule_engine_api_rule_test_SUITE: each event's context through POST /rule_test
# (sql, context, the keys expected equal to the context's, the keys that must be present)
CTX_CASES = [
    ('SELECT payload.msg as msg, clientid, username, payload, topic, qos FROM "t/#"',
     {"clientid": "c_emqx", "event_type": "message_publish", "payload": '{"msg": "hello"}',
      "qos": 1, "topic": "t/a", "username": "u_emqx"},
     ["clientid", "username", "payload", "topic", "qos"], []),
    ('SELECT clientid, username, topic, qos FROM "$events/session_subscribed"',
     {"clientid": "c_emqx", "event_type": "session_subscribed", "qos": 1, "topic": "t/a",
      "username": "u_emqx"}, ["clientid", "username", "topic", "qos"], []),
    ('SELECT clientid, username, topic, qos FROM "$events/session_unsubscribed"',
     {"clientid": "c_emqx", "event_type": "session_unsubscribed", "qos": 1, "topic": "t/a",
      "username": "u_emqx"}, ["clientid", "username", "topic", "qos"], []),
    ('SELECT from_clientid, from_username, topic, qos, node, timestamp '
     'FROM "$events/message_delivered"',
     {"clientid": "c_emqx_2", "event_type": "message_delivered", "from_clientid": "c_emqx_1",
      "from_username": "u_emqx_1", "payload": '{"msg": "hello"}', "qos": 1, "topic": "t/a",
      "username": "u_emqx_2"}, ["from_clientid", "from_username", "topic", "qos"],
     ["node", "timestamp"]),
    ('SELECT from_clientid, from_username, topic, qos, node, timestamp '
     'FROM "$events/message_acked"',
     {"clientid": "c_emqx_2", "event_type": "message_acked", "from_clientid": "c_emqx_1",
      "from_username": "u_emqx_1", "payload": '{"msg": "hello"}', "qos": 1, "topic": "t/a",
      "username": "u_emqx_2"}, ["from_clientid", "from_username", "topic", "qos"],
     ["node", "timestamp"]),
    ('SELECT reason, topic, qos, node, timestamp FROM "$events/message_dropped"',
     {"clientid": "c_emqx", "event_type": "message_dropped", "payload": '{"msg": "hello"}',
      "qos": 1, "reason": "no_subscribers", "topic": "t/a", "username": "u_emqx"},
     ["reason", "topic", "qos"], ["node", "timestamp"]),
    ('SELECT clientid, username, keepalive, is_bridge FROM "$events/client_connected"',
     {"clean_start": True, "clientid": "c_emqx", "event_type": "client_connected",
      "is_bridge": False, "peername": "127.0.0.1:52918", "username": "u_emqx"},
     ["clientid", "username", "is_bridge"], ["keepalive"]),
    ('SELECT clientid, username, reason, disconnected_at, node '
     'FROM "$events/client_disconnected"',
     {"clientid": "c_emqx", "event_type": "client_disconnected", "reason": "normal",
      "username": "u_emqx"}, ["clientid", "username", "reason"], ["disconnected_at", "node"]),
    ('SELECT clientid, username, reason_code, node FROM "$events/client_connack"',
     {"clean_start": True, "clientid": "c_emqx", "event_type": "client_connack",
      "reason_code": "success", "username": "u_emqx"},
     ["clientid", "username", "reason_code"], ["node"]),
    ('SELECT clientid, username, topic, action, result,\nauthz_source, node '
     'FROM "$events/client_check_authz_complete"',
     {"action": "publish", "clientid": "c_emqx", "event_type": "client_check_authz_complete",
      "result": "allow", "topic": "t/1", "username": "u_emqx"},
     ["clientid", "username", "topic", "action"], ["authz_source", "node", "result"]),
    ('SELECT clientid, username, is_superuser, is_anonymous\n'
     'FROM "$events/client_check_authn_complete"',
     {"clientid": "c_emqx", "event_type": "client_check_authn_complete",
      "reason_code": "success", "is_superuser": True, "is_anonymous": False},
     ["clientid", "is_superuser", "is_anonymous"], ["username"]),
    ('SELECT from_clientid, from_username, reason, topic, qos FROM "$events/delivery_dropped"',
     {"clientid": "c_emqx_2", "event_type": "delivery_dropped", "from_clientid": "c_emqx_1",
      "from_username": "u_emqx_1", "payload": '{"msg": "hello"}', "qos": 1,
      "reason": "queue_full", "topic": "t/a", "username": "u_emqx_2"},
     ["from_clientid", "from_username", "reason", "qos", "topic"], []),
]


@pytest.mark.parametrize("sql, context, same, present", CTX_CASES,
                         ids=[c[1]["event_type"] for c in CTX_CASES])
def test_rule_test_contexts(api, sql, context, same, present):
    out = api.ok("POST", "/rule_test", json={"sql": sql, "context": context})
    for k in same:
        assert out[k] == context[k], k
    for k in present:
        assert out.get(k) is not None, k
    if "payload.msg" in sql:
        assert out["msg"] == "hello"
