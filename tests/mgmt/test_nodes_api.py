"""GET /nodes, /nodes/{node}, /nodes/{node}/metrics, /nodes/{node}/stats and /cluster against a
running broker, with real MQTT clients moving the figures."""
from __future__ import annotations

import re
import resource

import httpx

from support.mqttclient import uid
from support.waiting import wait_until

MEM = re.compile(r"^\d+(\.\d\d[KMG])?$")


def test_list_nodes_reports_this_node(node):
    nodes = node.get("/nodes")
    assert isinstance(nodes, list) and len(nodes) == 1
    info = nodes[0]
    assert info["node"] == node.name == "emqx@127.0.0.1"
    assert info["node_status"] == "running"
    assert info["version"] == "5.8.1" and info["edition"] == "Opensource"
    assert info["role"] == "core"
    assert MEM.match(info["memory_total"]) and MEM.match(info["memory_used"])
    assert info["max_fds"] == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    for k in ("load1", "load5", "load15"):
        assert isinstance(info[k], (int, float)) and info[k] >= 0
    assert info["process_used"] > 0 and info["process_available"] >= info["process_used"]
    assert isinstance(info["uptime"], int) and info["uptime"] >= 0
    assert info["sys_path"] and info["log_path"] and info["otp_release"]


def test_node_info_follows_connections(node):
    before = node.get(f"/nodes/{node.name}")
    c = node.mqtt(uid("n"), version=4)
    during = wait_until(lambda: (lambda i: i if i["live_connections"] ==
                                 before["live_connections"] + 1 else None)(
        node.get(f"/nodes/{node.name}")))
    assert during["connections"] == before["connections"] + 1
    assert during["uptime"] >= before["uptime"]
    c.close()
    wait_until(lambda: node.get(f"/nodes/{node.name}")["live_connections"] ==
               before["live_connections"])


def test_persistent_session_counts_as_connection_not_live(node):
    # EMQX: connections counts sessions (connected or not), live_connections connected ones.
    before = node.get(f"/nodes/{node.name}")
    c = node.mqtt(uid("p"), clean=False, version=4)
    wait_until(lambda: node.get(f"/nodes/{node.name}")["live_connections"] ==
               before["live_connections"] + 1)
    c.close()
    info = wait_until(lambda: (lambda i: i if i["live_connections"] ==
                               before["live_connections"] else None)(
        node.get(f"/nodes/{node.name}")))
    assert info["connections"] == before["connections"] + 1
    assert info["cluster_sessions"] == before["cluster_sessions"] + 1
    stats = node.get(f"/nodes/{node.name}/stats")
    assert stats["connections.count"] == info["connections"]
    assert stats["live_connections.count"] == info["live_connections"]
    assert stats["live_connections.max"] >= before["live_connections"] + 1


def test_node_metrics_and_stats(node):
    m0 = node.get(f"/nodes/{node.name}/metrics")
    assert "node" not in m0 and m0["messages.received"] >= 0
    s0 = node.get(f"/nodes/{node.name}/stats")
    assert "node" not in s0 and "durable_subscriptions.count" not in s0
    c = node.mqtt(uid("m"), version=4)
    topic = uid("nodes/metric")
    c.subscribe(topic, 1)
    wait_until(lambda: node.get(f"/nodes/{node.name}/stats")["subscriptions.count"] ==
               s0["subscriptions.count"] + 1)
    c.publish(topic, b"x" * 100, qos=1)
    m1 = wait_until(lambda: (lambda m: m if m["messages.received"] > m0["messages.received"]
                             else None)(node.get(f"/nodes/{node.name}/metrics")))
    assert m1["messages.qos1.received"] == m0["messages.qos1.received"] + 1
    assert m1["bytes.received"] >= m0["bytes.received"] + 100
    assert m1["packets.connect.received"] == m0["packets.connect.received"] + 1
    s1 = node.get(f"/nodes/{node.name}/stats")
    assert s1["topics.count"] == s0["topics.count"] + 1
    assert s1["topics.max"] >= s1["topics.count"]


def test_unknown_node_is_404(node):
    for path in ("/nodes/nobody@nowhere", "/nodes/nobody@nowhere/metrics",
                 "/nodes/nobody@nowhere/stats"):
        body = node.get(path, status=404)
        assert body["code"] == "NOT_FOUND"
        assert body["message"] == "Node not found: nobody@nowhere"


def test_cluster_reports_this_node(node):
    body = node.get("/cluster")
    assert body == {"name": "emqxcl", "nodes": [node.name], "self": node.name}


def test_authentication_required(node):
    for path in ("/nodes", f"/nodes/{node.name}", "/cluster", "/stats", "/metrics"):
        r = httpx.get(node.api_url + path)
        assert r.status_code == 401, path
