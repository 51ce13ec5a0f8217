"""A rule naming an HTTP action end to end: an MQTT client publishes, the rule selects, the
action's target (a real aiohttp server in its own process) receives the rule's output, and the
rule counts the action's outcome when it is final. Deleting an action that rules use."""
from __future__ import annotations

import json

import pytest

from support.mqttclient import MqttClient, uid
from support.servers import HttpSink
from support.waiting import wait_until

from .test_http_action import make, metrics


@pytest.fixture
def sink():
    s = HttpSink()
    yield s
    s.stop()


def rule_metrics(api, rule_id: str) -> dict:
    return api.get(f"/rules/{rule_id}/metrics")["metrics"]


def test_published_messages_reach_the_target_through_a_rule(api, sink):
    aid = make(api, sink.url("/ingest"))
    topic = uid("sensor")
    rule = api.ok("POST", "/rules", 201, json={
        "sql": f'SELECT payload.temp as t, clientid FROM "{topic}/#" WHERE payload.temp > 30',
        "actions": [aid]})
    c = MqttClient(api.host, api.port, uid("dev")).connect()
    for temp in (20, 31, 45):
        c.publish(f"{topic}/1", json.dumps({"temp": temp}).encode(), qos=1)
    c.disconnect()
    wait_until(lambda: len(sink.requests()) == 2, what="two requests at the target")
    got = [json.loads(r["body"]) for r in sink.requests()]
    assert got == [{"t": 31, "clientid": c.client_id}, {"t": 45, "clientid": c.client_id}]
    m = wait_until(lambda: (lambda m: m if m["actions.success"] == 2 else None)(
        rule_metrics(api, rule["id"])), what="the rule's action outcomes")
    assert (m["matched"], m["passed"], m["failed.no_result"], m["actions.total"],
            m["actions.failed"]) == (3, 2, 1, 2, 0)
    assert metrics(api, aid)["success"] == 2


def test_a_final_failure_counts_as_a_failed_action_of_the_rule(api, sink):
    sink.answer(400)  # not one EMQX retries: final at once
    aid = make(api, sink.url())
    topic = uid("bad")
    rule = api.ok("POST", "/rules", 201, json={"sql": f'SELECT * FROM "{topic}"',
                                               "actions": [aid]})
    c = MqttClient(api.host, api.port).connect()
    c.publish(topic, b"x", qos=1)
    c.disconnect()
    m = wait_until(lambda: (lambda m: m if m["actions.failed"] == 1 else None)(
        rule_metrics(api, rule["id"])), what="the failed outcome")
    assert (m["actions.total"], m["actions.success"], m["actions.failed.unknown"]) == (1, 0, 1)


def test_deleting_an_action_that_rules_use(api, sink):
    aid = make(api, sink.url())
    rule = api.ok("POST", "/rules", 201, json={"sql": 'SELECT * FROM "t/#"',
                                               "actions": [aid, {"function": "console"}]})
    assert api.get(f"/actions/{aid}")["rules"] == [rule["id"]]
    r = api.api.delete(f"/actions/{aid}")
    assert r.status_code == 400 and rule["id"] in r.text
    r = api.api.delete(f"/actions/{aid}", params={"also_delete_dep_actions": "true"})
    assert r.status_code == 204, r.text
    actions = api.get(f"/rules/{rule['id']}")["actions"]
    assert [a["function"] for a in actions] == ["console"]
    # the running config (persisted with it) has lost the action too
    conf = api.broker.config.rule_engine.rules[rule["id"]]
    assert [a.function for a in conf.actions] == ["console"]
