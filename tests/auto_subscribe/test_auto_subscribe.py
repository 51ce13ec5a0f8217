"""Auto subscribe: clients subscribed at connect with placeholders filled, seen by real MQTT
clients; GET/PUT /mqtt/auto_subscribe."""
from __future__ import annotations

from support.mqttclient import uid
from support.node import assert_error
from support.waiting import wait_until

TOPICS = [
    {"topic": "c/${clientid}", "qos": 1, "rh": 0, "rap": 0, "nl": 0},
    {"topic": "u/${username}/x", "qos": 2, "rh": 0, "rap": 1, "nl": 1},
    {"topic": "h/${host}/${port}", "qos": 0, "rh": 0, "rap": 0, "nl": 0},
]


def _subs(node, cid) -> dict:
    return {s["topic"]: s for s in node.get(f"/clients/{cid}/subscriptions")}


def test_clients_are_subscribed_at_connect(make_broker):
    node = make_broker({"auto_subscribe": {"topics": TOPICS}})
    assert "client.connected" in node.broker.hooks._points
    pub = node.mqtt()
    pub.publish("c/ret", b"retained", qos=1, retain=True)
    cid = uid("auto")
    c = node.mqtt(cid, username="alice")
    wait_until(lambda: len(_subs(node, cid)) == 3)
    subs = _subs(node, cid)
    port = node.get(f"/clients/{cid}")["port"]
    assert set(subs) == {f"c/{cid}", "u/alice/x", f"h/127.0.0.1/{port}"}
    assert subs[f"c/{cid}"]["qos"] == 1
    assert subs["u/alice/x"]["qos"] == 2 and subs["u/alice/x"]["nl"] == 1 \
        and subs["u/alice/x"]["rap"] == 1
    pub.publish(f"c/{cid}", b"hello", qos=1)
    m = c.get()
    assert (m.topic, m.payload, m.qos) == (f"c/{cid}", b"hello", 1)
    # No Local: its own message does not come back
    c.publish("u/alice/x", b"mine", qos=1)
    pub.publish("u/alice/x", b"theirs", qos=2)
    assert c.get().payload == b"theirs"
    c.expect_none()

    # without a username the ${username} topic is left out, the others are made
    cid2 = uid("anon")
    node.mqtt(cid2)
    wait_until(lambda: len(_subs(node, cid2)) == 2)
    assert "u/${username}/x" not in _subs(node, cid2)


def test_retained_messages_follow(make_broker):
    node = make_broker({"auto_subscribe": {"topics": [{"topic": "ret/#", "qos": 1}]}})
    node.mqtt().publish("ret/a", b"kept", qos=1, retain=True)
    c = node.mqtt()
    m = c.get()
    assert (m.topic, m.payload, m.retain) == ("ret/a", b"kept", True)


def test_not_checked_by_authorization(make_broker):
    acl = '{deny, all}.\n'
    node = make_broker({"authorization": {"no_match": "deny", "sources": [
        {"type": "file", "enable": True, "rules": acl}]},
        "auto_subscribe": {"topics": [{"topic": "acl/${clientid}", "qos": 0}]}})
    cid = uid("acl")
    c = node.mqtt(cid)
    wait_until(lambda: f"acl/{cid}" in _subs(node, cid))
    assert c.subscribe("other", 0) == [0x87]  # a client's own SUBSCRIBE is checked


def test_api(make_broker):
    node = make_broker()
    assert node.get("/mqtt/auto_subscribe") == []
    assert "client.connected" not in node.broker.hooks._points  # nothing configured
    new = node.ok("PUT", "/mqtt/auto_subscribe", json=[{"topic": "a/${clientid}"}])
    assert new == [{"topic": "a/${clientid}", "qos": 0, "rh": 0, "rap": 0, "nl": 0}]
    assert node.get("/mqtt/auto_subscribe") == new
    cid = uid("api")
    node.mqtt(cid)
    wait_until(lambda: f"a/{cid}" in _subs(node, cid))
    api = node.api
    assert_error(api.put("/mqtt/auto_subscribe", json=[{"topic": f"t{i}"} for i in range(21)]),
                 409, "EXCEED_LIMIT")
    assert len(node.ok("PUT", "/mqtt/auto_subscribe",
                       json=[{"topic": f"t{i}"} for i in range(20)])) == 20
    assert_error(api.put("/mqtt/auto_subscribe", json=[{"topic": "x", "qos": 3}]), 400,
                 "BAD_REQUEST")
    assert_error(api.put("/mqtt/auto_subscribe", json=[{"topic": ""}]), 400, "BAD_REQUEST")
    assert_error(api.put("/mqtt/auto_subscribe", json=[{"qos": 1}]), 400, "BAD_REQUEST")
    node.restart()
    assert len(node.get("/mqtt/auto_subscribe")) == 20
    assert node.ok("PUT", "/mqtt/auto_subscribe", json=[]) == []
    assert "client.connected" not in node.broker.hooks._points
