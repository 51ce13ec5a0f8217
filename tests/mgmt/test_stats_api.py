"""GET /stats and GET /metrics (per node and aggregated), moved by real MQTT traffic."""
from __future__ import annotations

from emqpy.broker.metrics import NAMES
from support.mqttclient import uid
from support.waiting import wait_until

STAT_KEYS = {f"{n}.{k}" for n in (
    "channels", "connections", "delayed", "live_connections", "cluster_sessions", "retained",
    "sessions", "suboptions", "subscribers", "subscriptions", "subscriptions.shared", "topics")
    for k in ("count", "max")}


def _stats(node):
    return node.get("/stats", params={"aggregate": "true"})


def test_stats_shapes(node):
    per_node = node.get("/stats")
    assert isinstance(per_node, list) and len(per_node) == 1
    assert per_node[0]["node"] == node.name
    assert STAT_KEYS <= set(per_node[0])
    agg = _stats(node)
    assert isinstance(agg, dict) and "node" not in agg and STAT_KEYS <= set(agg)
    assert node.get("/stats", params={"aggregate": "false"})[0]["node"] == node.name


def test_stats_follow_clients_and_keep_peaks(node):
    s0 = _stats(node)
    a, b = node.mqtt(uid("sa"), version=4), node.mqtt(uid("sb"), version=4)
    wait_until(lambda: _stats(node)["live_connections.count"] == s0["live_connections.count"] + 2)
    t1, t2 = uid("stats/a"), uid("stats/b")
    a.subscribe(t1, 0)
    b.subscribe(t1, 1)
    b.subscribe("$share/g/" + t2, 1)
    s1 = wait_until(lambda: (lambda s: s if s["subscriptions.count"] ==
                             s0["subscriptions.count"] + 3 else None)(_stats(node)))
    assert s1["subscriptions.shared.count"] == s0["subscriptions.shared.count"] + 1
    assert s1["topics.count"] == s0["topics.count"] + 2
    assert s1["connections.count"] == s0["connections.count"] + 2
    assert s1["sessions.count"] == s0["sessions.count"] + 2
    b.publish(t1, b"keep", qos=1, retain=True)
    wait_until(lambda: _stats(node)["retained.count"] == s0["retained.count"] + 1)
    a.close()
    b.close()
    s2 = wait_until(lambda: (lambda s: s if s["live_connections.count"] ==
                             s0["live_connections.count"] else None)(_stats(node)))
    assert s2["subscriptions.count"] == s0["subscriptions.count"]
    # peaks stay at what was reached
    assert s2["live_connections.max"] >= s0["live_connections.count"] + 2
    assert s2["subscriptions.max"] >= s0["subscriptions.count"] + 3
    assert s2["topics.max"] >= s0["topics.count"] + 2


def test_metrics_shapes(node):
    per_node = node.get("/metrics")
    assert isinstance(per_node, list) and per_node[0]["node"] == node.name
    assert set(NAMES) <= set(per_node[0])
    agg = node.get("/metrics", params={"aggregate": "true"})
    assert "node" not in agg and set(NAMES) <= set(agg)
    assert all(isinstance(agg[k], int) and agg[k] >= 0 for k in NAMES)


def test_metrics_follow_traffic(node):
    m0 = node.get("/metrics", params={"aggregate": "true"})
    sub = node.mqtt(uid("msub"), version=4)
    topic = uid("metrics/t")
    sub.subscribe(topic, 2)
    wait_until(lambda: node.get("/metrics", params={"aggregate": "true"})[
        "packets.subscribe.received"] > m0["packets.subscribe.received"])
    pub = node.mqtt(uid("mpub"), version=4)
    for qos in (0, 1, 2):
        pub.publish(topic, b"p" * 200, qos=qos)
    sub.get_many(3)
    m1 = wait_until(lambda: (lambda m: m if m["messages.sent"] >= m0["messages.sent"] + 3
                             else None)(node.get("/metrics", params={"aggregate": "true"})))
    assert m1["messages.received"] == m0["messages.received"] + 3
    for qos in (0, 1, 2):
        assert m1[f"messages.qos{qos}.received"] == m0[f"messages.qos{qos}.received"] + 1
    assert m1["bytes.received"] >= m0["bytes.received"] + 600
    assert m1["bytes.sent"] >= m0["bytes.sent"] + 600
    assert m1["client.connected"] == m0["client.connected"] + 2
    assert m1["packets.publish.received"] >= m0["packets.publish.received"] + 3


def test_bad_aggregate_is_400(node):
    for path in ("/stats", "/metrics"):
        r = node.api.get(path, params={"aggregate": "sometimes"})
        assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
