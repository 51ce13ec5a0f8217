"""GET/PUT /mqtt/retainer and the retained-message endpoints, seen by real MQTT clients."""
from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from emqpy.config import load_config

from support.mqttclient import uid


@pytest.fixture
def h(make_broker):
    return make_broker({"sys_topics": {"sys_msg_interval": "disabled"}})


def _retain(node, items):
    pub = node.mqtt()
    for topic, payload in items:
        pub.publish(topic, payload, qos=1, retain=True)
    pub.close()


def test_list_filter_and_paging(h):
    t = uid("lst")
    _retain(h, [(f"{t}/a", b"1"), (f"{t}/b", b"2"), (f"{t}/c/d", b"3")])
    c = h.api
    r = c.get("/mqtt/retainer/messages", params={"topic": f"{t}/#"})
    assert r.status_code == 200
    body = r.json()
    assert {m["topic"] for m in body["data"]} == {f"{t}/a", f"{t}/b", f"{t}/c/d"}
    assert body["meta"]["hasnext"] is False and "count" not in body["meta"]
    m = next(m for m in body["data"] if m["topic"] == f"{t}/a")
    assert set(m) == {"msgid", "topic", "qos", "publish_at", "from_clientid",
                      "from_username"}
    assert m["qos"] == 1 and len(m["msgid"]) == 32 and "T" in m["publish_at"]
    r = c.get("/mqtt/retainer/messages", params={"topic": f"{t}/+", "limit": 1, "page": 1})
    assert len(r.json()["data"]) == 1 and r.json()["meta"]["hasnext"] is True
    r = c.get("/mqtt/retainer/messages", params={"topic": f"{t}/+", "limit": 1, "page": 2})
    assert len(r.json()["data"]) == 1 and r.json()["meta"]["hasnext"] is False
    r = c.get("/mqtt/retainer/messages")
    assert r.json()["meta"]["count"] == len(h.broker.retainer)
    assert c.get("/mqtt/retainer/messages", params={"topic": "a/#/b"}).status_code == 400
    assert c.get("/mqtt/retainer/messages", params={"limit": 0}).status_code == 400


def test_get_and_delete_one_message(h):
    t = uid("one") + "/x y/ü"
    _retain(h, [(t, b"\x00payload")])
    url = "/mqtt/retainer/message/" + quote(t, safe="")
    c = h.api
    r = c.get(url)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["topic"] == t and base64.b64decode(body["payload"]) == b"\x00payload"
    assert body["from_clientid"]
    assert c.delete(url).status_code == 204
    r = c.get(url)
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    assert c.delete(url).status_code == 404
    sub = h.mqtt()
    sub.subscribe(t, 1)
    sub.expect_none()  # the deletion is visible to a new subscriber
    sub.close()


def test_delete_matching_and_all(h):
    t = uid("del")
    _retain(h, [(f"{t}/a", b"1"), (f"{t}/b", b"2"), (f"{t}/keep/c", b"3")])
    c = h.api
    assert c.delete("/mqtt/retainer/message/" + quote(f"{t}/+", safe="")).status_code == 204
    left = [m["topic"] for m in c.get("/mqtt/retainer/messages",
                                      params={"topic": f"{t}/#"}).json()["data"]]
    assert left == [f"{t}/keep/c"]
    assert c.delete("/mqtt/retainer/messages").status_code == 204
    assert c.get("/mqtt/retainer/messages").json()["meta"]["count"] == 0
    sub = h.mqtt()
    sub.subscribe(f"{t}/#", 1)
    sub.expect_none()
    sub.close()
    assert h.broker.retainer.sync(10)
    assert h.broker.store.query("SELECT * FROM retained") == []


NO_SYS = {"sys_topics": {"sys_msg_interval": "disabled"}}  # no retained $SYS messages


def test_config_get_put_validate_and_persist(make_broker, tmp_path):
    bt = make_broker(NO_SYS, data_dir=tmp_path)
    try:
        c = bt.api
        cfg = c.get("/mqtt/retainer").json()
        assert cfg["enable"] is True and cfg["max_payload_size"] == "1MB"
        assert cfg["backend"]["max_retained_messages"] == 0
        r = c.put("/mqtt/retainer", json={"max_payload_size": "4B",
                                          "backend": {"max_retained_messages": 2}})
        assert r.status_code == 200, r.text
        assert r.json()["max_payload_size"] == "4B"
        assert r.json()["backend"]["max_retained_messages"] == 2
        bad = c.put("/mqtt/retainer", json={"max_payload_size": "lots"})
        assert bad.status_code == 400 and bad.json()["code"] == "UPDATE_FAILED"
        bad = c.put("/mqtt/retainer", json={"delivery_rate": "fast"})
        assert bad.status_code == 400 and bad.json()["code"] == "UPDATE_FAILED"
        bad = c.put("/mqtt/retainer", json={"no_such_key": 1})
        assert bad.status_code == 400 and bad.json()["code"] == "BAD_REQUEST"
        bad = c.put("/mqtt/retainer", json={"backend": {"max_retained_messages": -1}})
        assert bad.status_code == 400
        assert c.get("/mqtt/retainer").json()["max_payload_size"] == "4B"
        t = uid("cfg")
        # applied at once: payloads over 4 bytes and a third topic are not retained
        _retain(bt, [(f"{t}/big", b"12345"), (f"{t}/1", b"1"), (f"{t}/2", b"2"),
                          (f"{t}/3", b"3")])
        assert sorted(bt.broker.retainer.store.topics()) == [f"{t}/1", f"{t}/2"]
    finally:
        bt.stop()
    # persisted like EMQX's cluster override
    assert load_config(env={}, data_dir=str(tmp_path)).retainer.max_payload_size == 4
    bt.start()
    try:
        c = bt.api
        assert c.get("/mqtt/retainer").json()["backend"]["max_retained_messages"] == 2
    finally:
        bt.stop()


def test_disable_and_stop_publish_clear_msg(h):
    t = uid("dis")
    c = h.api
    assert c.put("/mqtt/retainer", json={"stop_publish_clear_msg": True}).status_code == 200
    _retain(h, [(t, b"v")])
    sub = h.mqtt()
    sub.subscribe(t, 1)
    assert sub.get().payload == b"v"
    pub = h.mqtt()
    pub.publish(t, b"", qos=1, retain=True)
    sub.expect_none()  # the clearing publish is not forwarded
    assert h.broker.retainer.store.get(t) is None
    assert c.put("/mqtt/retainer", json={"stop_publish_clear_msg": False,
                                         "enable": False}).status_code == 200
    pub.publish(t, b"w", qos=1, retain=True)
    assert sub.get().payload == b"w"  # still routed, just not retained
    late = h.mqtt()
    late.subscribe(t, 1)
    late.expect_none()
    assert c.put("/mqtt/retainer", json={"enable": True}).status_code == 200
    for cl in (sub, pub, late):
        cl.close()


def test_delivery_rate_paces_retained_delivery(h):
    """Retainer.dispatch (what the broker calls with a new subscription's retained messages)
    delivers within delivery_rate and sends the rest as the bucket refills."""
    t = uid("rate")
    _retain(h, [(f"{t}/{i}", str(i).encode()) for i in range(5)])
    c = h.api
    assert c.put("/mqtt/retainer", json={"delivery_rate": "2/s"}).status_code == 200
    sub = h.mqtt()
    sub.subscribe(f"{t}/none", 1)  # a subscription to hand the retained messages to
    b = h.broker

    async def go():
        sess = b.sessions[sub.client_id]
        s = sess.subscriptions[f"{t}/none"]
        msgs = b.retainer.lookup(f"{t}/+")
        return b.retainer.dispatch(sess, s, msgs)
    now = h.call(go)
    assert now == 2  # one second's worth of tokens
    got = sorted(sub.get().payload for _ in range(5))
    assert got == [b"0", b"1", b"2", b"3", b"4"]
    sub.close()
