"""POST /publish and /publish/bulk: messages reach real subscribers with their properties."""
from __future__ import annotations

import base64

from support.mqttclient import uid


def test_publish_delivers_with_properties(env):
    sub = env.mqtt(uid("s"))
    sub.subscribe("pub/#", 2)
    r = env.ok("POST", "/publish", json={
        "topic": "pub/a", "payload": "hello", "qos": 1,
        "properties": {"payload_format_indicator": 1, "message_expiry_interval": 60,
                       "response_topic": "reply/here", "correlation_data": "corr-1",
                       "user_properties": {"k1": "v1", "k2": "v2"},
                       "content_type": "text/plain"}})
    assert len(r["id"]) == 32 and int(r["id"], 16) >= 0
    m = sub.get()
    assert (m.topic, m.payload, m.qos, m.retain) == ("pub/a", b"hello", 1, False)
    p = m.properties
    assert p.PayloadFormatIndicator == 1 and 0 < p.MessageExpiryInterval <= 60
    assert p.ResponseTopic == "reply/here" and p.CorrelationData == b"corr-1"
    assert sorted(p.UserProperty) == [("k1", "v1"), ("k2", "v2")]
    assert p.ContentType == "text/plain"

    raw = bytes(range(256))
    env.ok("POST", "/publish", json={"topic": "pub/bin", "payload_encoding": "base64",
                                     "payload": base64.b64encode(raw).decode(), "qos": 2})
    m = sub.get()
    assert m.payload == raw and m.qos == 2


def test_publish_no_subscribers_and_retain(env):
    r = env.api.post("/publish", json={"topic": "nobody/here", "payload": "x"})
    assert r.status_code == 202
    assert r.json() == {"reason_code": 16, "message": "no_matching_subscribers"}
    r = env.api.post("/publish", json={"topic": "keep/1", "payload": "kept", "retain": True})
    assert r.status_code == 202  # stored as retained, but nobody got it now
    late = env.mqtt(uid("late"))
    late.subscribe("keep/#", 1)
    m = late.get()
    assert m.payload == b"kept" and m.retain


def test_publish_bad_requests(env):
    sub = env.mqtt(uid("s"))
    sub.subscribe("#", 0)
    cases = [
        ({"topic": "a/+", "payload": "x"}, 144, "topic_name_invalid"),
        ({"topic": "", "payload": "x"}, 144, "topic_name_invalid"),
        ({"topic": "a", "payload": "!!notbase64", "payload_encoding": "base64"}, 131,
         "decode_base64_payload_failed"),
    ]
    for body, code, message in cases:
        r = env.api.post("/publish", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["reason_code"] == code and r.json()["message"] == message
    for body in ({"topic": "a", "payload": "x", "qos": 3}, {"topic": "a"}, {"payload": "x"},
                 {"topic": "a", "payload": "x", "payload_encoding": "hex"},
                 {"topic": "a", "payload": "x", "properties": {"payload_format_indicator": 2}},
                 {"topic": "a", "payload": "x", "properties": {"bogus": 1}}):
        r = env.api.post("/publish", json=body)
        assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST", (body, r.text)
    r = env.api.post("/publish", content=b"{not json", headers={"content-type":
                                                                   "application/json"})
    assert r.status_code == 400
    sub.expect_none()  # nothing invalid was published


def test_publish_too_large(make_broker):
    e = make_broker({"mqtt": {"max_packet_size": "1KB"}})
    sub = e.mqtt(uid("s"))
    sub.subscribe("big", 0)
    r = e.api.post("/publish", json={"topic": "big", "payload": "x" * 2000})
    assert r.status_code == 400
    assert r.json()["reason_code"] == 151 and r.json()["message"] == "packet_too_large"
    e.ok("POST", "/publish", json={"topic": "big", "payload": "x" * 500})
    assert sub.get().payload == b"x" * 500


def test_publish_bulk(env):
    sub = env.mqtt(uid("s"))
    sub.subscribe("bulk/#", 1)
    msgs = [{"topic": f"bulk/{i}", "payload": f"p{i}", "qos": 1} for i in range(3)]
    r = env.ok("POST", "/publish/bulk", json=msgs)
    assert len(r) == 3 and all(len(x["id"]) == 32 for x in r)
    assert [m.payload for m in sub.get_many(3)] == [b"p0", b"p1", b"p2"]

    r = env.api.post("/publish/bulk", json=[{"topic": "bulk/x", "payload": "1"},
                                             {"topic": "elsewhere", "payload": "2"}])
    assert r.status_code == 202
    assert "id" in r.json()[0] and r.json()[1]["reason_code"] == 16
    assert sub.get().payload == b"1"

    # one invalid message: nothing is published
    r = env.api.post("/publish/bulk", json=[{"topic": "bulk/y", "payload": "1"},
                                             {"topic": "bad/#", "payload": "2"}])
    assert r.status_code == 400 and r.json()["reason_code"] == 144
    assert env.api.post("/publish/bulk", json=[]).status_code == 400
    assert env.api.post("/publish/bulk", json={"topic": "a", "payload": "b"}).status_code == 400
    sub.expect_none()
