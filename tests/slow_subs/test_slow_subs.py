"""Slow subscriptions: subscribers that acknowledge late are ranked by latency (real MQTT
clients acknowledging by hand), /slow_subscriptions and its settings."""
from __future__ import annotations

import time

import pytest

from support.mqttclient import props, uid
from support.node import assert_error
from support.waiting import wait_until

SETTINGS = {"enable": True, "threshold": "150ms", "expire_interval": "300s", "top_k_num": 2,
            "stats_type": "whole"}


@pytest.fixture
def node(make_broker):
    return make_broker({"slow_subs": SETTINGS, "sys_topics": {"sys_msg_interval": "disabled"}})


def _late_ack(node, topic: str, qos: int, delay: float, clientid=None):
    """A subscriber of `topic` that acknowledges one message `delay` seconds late."""
    sub = node.mqtt(clientid, manual_ack=True)
    sub.subscribe(topic, qos)
    node.mqtt().publish(topic, b"x", qos=qos)
    msg = sub.get()
    time.sleep(delay)
    sub.ack(msg)
    return sub


def _ranking(node) -> list:
    return node.get("/slow_subscriptions")["data"]


def test_slow_acks_are_ranked(node):
    t = uid("slow")
    a = _late_ack(node, f"{t}/a", 1, 0.4)
    wait_until(lambda: len(_ranking(node)) == 1)
    rec = _ranking(node)[0]
    assert set(rec) == {"clientid", "node", "topic", "timespan", "last_update_time"}
    assert (rec["clientid"], rec["topic"], rec["node"]) == (a.client_id, f"{t}/a", node.name)
    assert 400 <= rec["timespan"] < 2000
    assert abs(rec["last_update_time"] - time.time() * 1000) < 5000
    # QoS 2: the delivery ends at PUBCOMP
    b = _late_ack(node, f"{t}/b", 2, 0.7)
    wait_until(lambda: len(_ranking(node)) == 2)
    ranking = _ranking(node)
    assert [r["clientid"] for r in ranking] == [b.client_id, a.client_id]  # slowest first
    assert ranking[0]["timespan"] >= 700
    # quick acknowledgements (under the threshold) are not recorded
    _late_ack(node, f"{t}/fast", 1, 0)
    time.sleep(0.2)
    # top_k_num 2: a third, slower pair replaces the fastest recorded one
    c = _late_ack(node, f"{t}/c", 1, 0.9)
    wait_until(lambda: _ranking(node)[0]["clientid"] == c.client_id)
    assert [r["clientid"] for r in _ranking(node)] == [c.client_id, b.client_id]
    assert node.api.delete("/slow_subscriptions").status_code == 204
    assert _ranking(node) == []


def test_stats_types(node):
    t = uid("type")
    # internal: arrival to the write to the subscriber, so a late acknowledgement does not count
    node.ok("PUT", "/slow_subscriptions/settings", json={"stats_type": "internal"})
    _late_ack(node, t, 1, 0.4)
    time.sleep(0.2)
    assert _ranking(node) == []
    node.ok("PUT", "/slow_subscriptions/settings", json={"stats_type": "response"})
    s = _late_ack(node, t, 1, 0.4)
    wait_until(lambda: len(_ranking(node)) == 1)
    assert _ranking(node)[0]["clientid"] == s.client_id


def test_queued_messages_count_their_wait(node):
    # a message that waited in the session's queue: `whole` counts from its arrival
    t = uid("queued")
    cid = node.offline_session("q", t)
    node.mqtt().publish(t, b"waiting", qos=1)
    time.sleep(0.4)
    back = node.mqtt(cid, clean=False, properties=props("CONNECT", SessionExpiryInterval=300))
    back.get()
    wait_until(lambda: len(_ranking(node)) == 1)
    assert _ranking(node)[0]["timespan"] >= 400


def test_settings_and_hook_only_when_enabled(make_broker):
    node = make_broker()
    assert node.get("/slow_subscriptions/settings") == {
        "enable": False, "threshold": "500ms", "expire_interval": "300s", "top_k_num": 10,
        "stats_type": "whole"}
    assert "delivery.completed" not in node.broker.hooks._points
    assert not node.broker.completed_hooked
    new = node.ok("PUT", "/slow_subscriptions/settings",
                  json={"enable": True, "threshold": "100ms"})
    assert new["enable"] is True and new["threshold"] == "100ms"
    assert "delivery.completed" in node.broker.hooks._points
    s = _late_ack(node, uid("on"), 1, 0.3)
    wait_until(lambda: [r["clientid"] for r in _ranking(node)] == [s.client_id])
    assert_error(node.api.put("/slow_subscriptions/settings", json={"top_k_num": 0}), 400,
                 "BAD_REQUEST")
    assert_error(node.api.put("/slow_subscriptions/settings", json={"stats_type": "x"}), 400,
                 "BAD_REQUEST")
    node.ok("PUT", "/slow_subscriptions/settings", json={"enable": False})
    assert "delivery.completed" not in node.broker.hooks._points
    node.restart()
    assert node.get("/slow_subscriptions/settings")["threshold"] == "100ms"


def test_records_expire(make_broker):
    node = make_broker({"slow_subs": {**SETTINGS, "expire_interval": "1s"}})
    _late_ack(node, uid("exp"), 1, 0.3)
    wait_until(lambda: len(_ranking(node)) == 1)
    time.sleep(1.1)
    node.call(node.broker.slow_subs.expire)  # (the 10 s check, run now)
    assert _ranking(node) == []
