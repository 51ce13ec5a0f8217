"""Delayed publish: `$delayed/{seconds}/{topic}` seen by real MQTT clients, the /mqtt/delayed
API, and held messages surviving a restart."""
from __future__ import annotations

import base64
import time
from urllib.parse import quote

import pytest

from support.mqttclient import uid
from support.node import assert_error
from support.waiting import wait_until


@pytest.fixture
def node(make_broker):
    return make_broker({"sys_topics": {"sys_msg_interval": "disabled"}})


def _stats(node) -> dict:
    return node.get("/stats", params={"aggregate": "true"})


def _listing(node, **params) -> dict:
    return node.get("/mqtt/delayed/messages", params=params)


def test_held_back_then_published_to_the_real_topic(node):
    t = uid("dl")
    sub = node.mqtt()
    sub.subscribe(t, 1)
    sub.subscribe("$delayed/#", 1)
    pub = node.mqtt(username="alice")
    start = time.time()
    pub.publish(f"$delayed/2/{t}", b"later", qos=1)
    pub.publish(t, b"now", qos=1)
    assert sub.get().payload == b"now"  # nothing reaches `t` or `$delayed/#` at once
    assert _stats(node)["delayed.count"] == 1
    m = node.get("/metrics")[0]
    assert m["messages.delayed"] == 1
    msg = sub.get(timeout=5)
    assert (msg.topic, msg.payload, msg.qos) == (t, b"later", 1)
    assert 1.9 <= time.time() - start < 4
    sub.expect_none()
    assert _stats(node)["delayed.count"] == 0
    assert _listing(node)["data"] == []


def test_one_timer_publishes_in_due_order(node):
    t = uid("order")
    sub = node.mqtt()
    sub.subscribe(f"{t}/#", 0)
    pub = node.mqtt()
    pub.publish(f"$delayed/3/{t}/c", b"c", qos=1)
    pub.publish(f"$delayed/1/{t}/a", b"a", qos=1)
    pub.publish(f"$delayed/2/{t}/b", b"b", qos=1)
    delayed = node.broker.delayed
    # one loop timer, on the earliest message
    assert delayed._timer is not None and abs(delayed._timer_at - (time.time() + 1)) < 0.5
    got = [m.payload for m in sub.get_many(3, timeout=6)]
    assert got == [b"a", b"b", b"c"]


def test_absolute_time_and_malformed_topics(node):
    t = uid("abs")
    sub = node.mqtt()
    sub.subscribe(t, 0)
    sub.subscribe("$delayed/#", 0)
    pub = node.mqtt()
    pub.publish(f"$delayed/{int(time.time()) + 1}/{t}", b"at", qos=1)
    assert sub.get(timeout=5).payload == b"at"
    # not a number / no topic: EMQX's callback fails and the message goes on as published
    for bad in ("$delayed/soon/x", "$delayed/5"):
        pub.publish(bad, b"bad", qos=1)
        assert sub.get().topic == bad
    assert _stats(node)["delayed.count"] == 0


def test_api_list_get_delete(node):
    t = uid("api")
    pub = node.mqtt("pubber", username="bob")
    pub.publish(f"$delayed/100/{t}/1", b"\x00one", qos=1)
    pub.publish(f"$delayed/50/{t}/2", b"two" * 1000, qos=2)
    pub.publish(f"$delayed/200/{t}/1", b"three", qos=0)
    wait_until(lambda: _stats(node)["delayed.count"] == 3)
    body = _listing(node)
    assert body["meta"] == {"page": 1, "limit": 100, "count": 3, "hasnext": False}
    rows = body["data"]
    assert [r["topic"] for r in rows] == [f"{t}/2", f"{t}/1", f"{t}/1"]  # by due time
    first = rows[0]
    assert set(first) == {"msgid", "node", "publish_at", "delayed_interval",
                          "delayed_remaining", "expected_at", "topic", "qos",
                          "from_clientid", "from_username"}
    assert first["node"] == node.name and first["delayed_interval"] == 50
    assert 48 <= first["delayed_remaining"] <= 50 and first["qos"] == 2
    assert first["from_clientid"] == "pubber" and first["from_username"] == "bob"
    page2 = _listing(node, page=2, limit=2)
    assert page2["meta"]["hasnext"] is False and len(page2["data"]) == 1

    one = node.get(f"/mqtt/delayed/messages/{node.name}/{rows[1]['msgid']}")
    assert base64.b64decode(one["payload"]) == b"\x00one"
    big = node.get(f"/mqtt/delayed/messages/{node.name}/{first['msgid']}")
    assert big["payload"] == "PAYLOAD_TOO_LARGE"

    c = node.api
    assert_error(c.get(f"/mqtt/delayed/messages/other@host/{first['msgid']}"), 400,
                 "INVALID_NODE")
    assert_error(c.get(f"/mqtt/delayed/messages/{node.name}/not-hex"), 400,
                 "MESSAGE_ID_SCHEMA_ERROR")
    assert_error(c.get(f"/mqtt/delayed/messages/{node.name}/{'0' * 32}"), 404,
                 "MESSAGE_ID_NOT_FOUND")
    assert c.delete(f"/mqtt/delayed/messages/{node.name}/{first['msgid']}").status_code == 204
    assert_error(c.delete(f"/mqtt/delayed/messages/{node.name}/{first['msgid']}"), 404,
                 "MESSAGE_ID_NOT_FOUND")

    assert_error(c.delete("/mqtt/delayed/messages/" + quote(f"{t}/+", safe="")), 400,
                 "INVALID_TOPIC_NAME")
    assert c.delete("/mqtt/delayed/messages/" + quote(f"{t}/1", safe="")).status_code == 204
    assert _stats(node)["delayed.count"] == 0
    assert_error(c.delete("/mqtt/delayed/messages/" + quote(f"{t}/1", safe="")), 404,
                 "MESSAGE_NOT_FOUND")


def test_config_limit_and_disable(node):
    assert node.get("/mqtt/delayed") == {"enable": True, "max_delayed_messages": 0}
    assert_error(node.api.put("/mqtt/delayed", json={"max_delayed_messages": -1}), 400,
                 "BAD_REQUEST")
    assert node.ok("PUT", "/mqtt/delayed", json={"max_delayed_messages": 1}) == \
        {"enable": True, "max_delayed_messages": 1}
    t = uid("lim")
    pub = node.mqtt()
    pub.publish(f"$delayed/100/{t}", b"1", qos=1)
    pub.publish(f"$delayed/100/{t}", b"2", qos=1)  # over the limit: dropped
    wait_until(lambda: _stats(node)["delayed.count"] == 1)
    time.sleep(0.2)
    assert _stats(node)["delayed.count"] == 1

    # switched off: the callback goes (a `$delayed/` topic is an ordinary one), and, as in
    # EMQX, the held messages are discarded
    assert node.ok("PUT", "/mqtt/delayed", json={"enable": False})["enable"] is False
    assert node.broker.delay_publish is None
    assert _stats(node)["delayed.count"] == 0
    sub = node.mqtt()
    sub.subscribe("$delayed/#", 0)
    pub.publish(f"$delayed/1/{t}", b"plain", qos=1)
    assert sub.get().topic == f"$delayed/1/{t}"
    assert node.get("/configs", params={"key": "delayed"}).strip().startswith("delayed")
    node.ok("PUT", "/mqtt/delayed", json={"enable": True})
    assert node.broker.delay_publish is not None


def test_held_messages_survive_restart(node):
    t = uid("keep")
    pub = node.mqtt()
    pub.publish(f"$delayed/3/{t}", b"kept", qos=1)
    pub.publish(f"$delayed/1000/{t}/later", b"much later", qos=1)
    before = _listing(node)["data"]
    node.restart()
    after = _listing(node)["data"]
    assert [(r["msgid"], r["topic"], r["expected_at"]) for r in after] == \
        [(r["msgid"], r["topic"], r["expected_at"]) for r in before]
    sub = node.mqtt()
    sub.subscribe(t, 1)
    msg = sub.get(timeout=6)
    assert (msg.topic, msg.payload) == (t, b"kept")
    assert _stats(node)["delayed.count"] == 1
