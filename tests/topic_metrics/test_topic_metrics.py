"""Topic metrics: counters and rates of registered topics seen by real MQTT clients, and the
/mqtt/topic_metrics API with EMQX's codes."""
from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from support.mqttclient import uid
from support.node import assert_error
from support.waiting import wait_until


@pytest.fixture
def node(make_broker):
    return make_broker({"sys_topics": {"sys_msg_interval": "disabled"}})


def _one(node, topic) -> dict:
    return node.get("/mqtt/topic_metrics/" + quote(topic, safe=""))


def test_counts_in_out_dropped(node):
    t = uid("tm")
    assert node.get("/mqtt/topic_metrics") == []
    points = node.broker.hooks._points
    assert "message.delivered" not in points and "message.dropped" not in points
    added = node.ok("POST", "/mqtt/topic_metrics", json={"topic": t})
    assert added["topic"] == t and "T" in added["create_time"]
    assert set(added["metrics"]) == {f"messages.{m}.{k}" for m in (
        "in", "out", "dropped", "qos0.in", "qos0.out", "qos1.in", "qos1.out", "qos2.in",
        "qos2.out") for k in ("count", "rate")}
    assert all(v == 0 for v in added["metrics"].values())

    pub = node.mqtt()
    pub.publish(t, b"nobody", qos=0)  # no subscriber: in and dropped
    wait_until(lambda: _one(node, t)["metrics"]["messages.dropped.count"] == 1)
    subs = [node.mqtt() for _ in range(3)]
    for s in subs:
        s.subscribe(t, 2)
    pub.publish(t, b"q0", qos=0)  # the QoS 0 fan-out to 3
    pub.publish(t, b"q1", qos=1)
    pub.publish(t, b"q2", qos=2)
    pub.publish(t + "/other", b"not counted", qos=1)
    for s in subs:
        assert len(s.get_many(3)) == 3
    m = _one(node, t)["metrics"]
    assert m["messages.in.count"] == 4
    assert (m["messages.qos0.in.count"], m["messages.qos1.in.count"],
            m["messages.qos2.in.count"]) == (2, 1, 1)
    assert m["messages.out.count"] == 9
    assert (m["messages.qos0.out.count"], m["messages.qos1.out.count"],
            m["messages.qos2.out.count"]) == (3, 3, 3)
    assert m["messages.dropped.count"] == 1
    # rates: EMQX's 5-sample moving average, sampled every second
    wait_until(lambda: _one(node, t)["metrics"]["messages.in.rate"] > 0, timeout=3)
    rate = _one(node, t)["metrics"]["messages.in.rate"]
    assert 0 < rate <= 4 / 5 + 1e-9 and round(rate, 4) == rate


def test_rates_decay_and_reset(node):
    t = uid("rate")
    node.ok("POST", "/mqtt/topic_metrics", json={"topic": t})
    pub = node.mqtt()
    for _ in range(10):
        pub.publish(t, b"x", qos=1)
    tm = node.broker.topic_metrics.topics[t]
    first = None
    deadline = time.time() + 3
    while time.time() < deadline and first is None:
        if tm.rates[0] > 0:
            first = tm.rates[0]
        time.sleep(0.05)
    assert first == pytest.approx(10 / 5)  # one sample of 10/s in a 5-sample average
    wait_until(lambda: 0 < tm.rates[0] < first, timeout=3)
    # reset one topic: counters back to 0; unknown topic: 404
    one = node.ok("PUT", "/mqtt/topic_metrics", json={"topic": t, "action": "reset"})
    assert one["topic"] == t and one["metrics"]["messages.in.count"] == 0
    assert_error(node.api.put("/mqtt/topic_metrics", json={"topic": "nope", "action": "reset"}),
                 404, "TOPIC_NOT_FOUND")
    pub.publish(t, b"x", qos=1)
    every = node.ok("PUT", "/mqtt/topic_metrics", json={"action": "reset"})
    assert [e["metrics"]["messages.in.count"] for e in every] == [0]


def test_api_errors_and_config(node):
    api = node.api
    t = uid("api") + "/a b"
    node.ok("POST", "/mqtt/topic_metrics", json={"topic": t})
    assert_error(api.post("/mqtt/topic_metrics", json={"topic": t}), 400, "BAD_TOPIC",
                 "already")
    assert_error(api.post("/mqtt/topic_metrics", json={"topic": "a/#"}), 400, "BAD_TOPIC",
                 "Wildcard")
    assert_error(api.post("/mqtt/topic_metrics", json={"topic": ""}), 400, "BAD_REQUEST")
    assert_error(api.get("/mqtt/topic_metrics/nope"), 404, "TOPIC_NOT_FOUND")
    assert_error(api.delete("/mqtt/topic_metrics/nope"), 404, "TOPIC_NOT_FOUND")
    assert node.get("/configs", params={"key": "topic_metrics"}).count(t) == 1
    assert api.delete("/mqtt/topic_metrics/" + quote(t, safe="")).status_code == 204
    assert_error(api.get("/mqtt/topic_metrics/" + quote(t, safe="")), 404, "TOPIC_NOT_FOUND")
    node.ok("POST", "/mqtt/topic_metrics", json={"topic": "kept"})
    node.restart()  # registered topics are config: kept
    assert [m["topic"] for m in node.get("/mqtt/topic_metrics")] == ["kept"]
    assert node.api.delete("/mqtt/topic_metrics/kept").status_code == 204
    assert node.get("/mqtt/topic_metrics") == []
    assert "message.delivered" not in node.broker.hooks._points
    assert node.broker.topic_metrics._timer is None


def test_at_most_512_topics(make_broker):
    node = make_broker({"topic_metrics": [{"topic": f"lim/{i}"} for i in range(511)]})
    assert len(node.get("/mqtt/topic_metrics")) == 511
    node.ok("POST", "/mqtt/topic_metrics", json={"topic": "lim/511"})
    assert_error(node.api.post("/mqtt/topic_metrics", json={"topic": "lim/x"}), 409,
                 "EXCEED_LIMIT", "512")
    assert len(node.get("/mqtt/topic_metrics")) == 512
