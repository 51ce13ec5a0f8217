"""The management API of a cluster answers for every node, from any node: clients (listed
with their node and paged across nodes, looked up, kicked, subscribed on another node),
subscriptions, topics, stats and metrics (per node or summed), the monitor, and publish."""
from __future__ import annotations

import time

from emqpy.monitor import storage
from support.mqttclient import client, uid
from support.waiting import wait_until

from cluster.test_routing import _sees_filter


def test_clients_of_every_node_with_paging_and_node_filter(two):
    a, b = two
    tag = uid("pg")
    on_a = [client(a, f"{tag}-a{i}") for i in range(3)]
    on_b = [client(b, f"{tag}-b{i}") for i in range(2)]
    for node in (a, b):  # the same answer from either node
        got = node.api.get("/clients", params={"like_clientid": tag, "limit": 100}).json()
        rows = {r["clientid"]: r["node"] for r in got["data"]}
        assert rows == {**{c.client_id: a.name for c in on_a},
                        **{c.client_id: b.name for c in on_b}}
        assert got["meta"]["hasnext"] is False and "count" not in got["meta"]  # fuzzy
    # pages of 2 over the five clients (nodes in name order), without a filter
    seen = []
    for p in (1, 2, 3):
        got = a.api.get("/clients", params={"page": p, "limit": 2}).json()
        assert got["meta"]["count"] == 5
        assert got["meta"]["hasnext"] is (p < 3)
        seen += [r["clientid"] for r in got["data"]]
    assert sorted(seen) == sorted(c.client_id for c in on_a + on_b)
    assert a.api.get("/clients", params={"page": 4, "limit": 2}).json()["data"] == []
    got = a.api.get("/clients", params={"node": b.name}).json()
    assert {r["clientid"] for r in got["data"]} == {c.client_id for c in on_b}
    assert got["meta"]["count"] == 2
    r = a.api.get("/clients", params={"node": "nobody@nowhere"})
    assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETER"
    r = a.api.get("/clients", params={"ip_address": "not-an-ip"})
    assert r.status_code == 400
    for c in on_a + on_b:
        c.close()


def test_one_client_on_another_node(two):
    a, b = two
    cid = uid("far")
    c = client(b, cid, v5=True)
    info = a.api.get(f"/clients/{cid}").json()
    assert info["clientid"] == cid and info["node"] == b.name and info["connected"] is True
    assert a.api.get(f"/clients/{uid('none')}").status_code == 404
    r = a.api.post(f"/clients/{cid}/subscribe", json={"topic": "far/+", "qos": 1})
    assert r.status_code == 200, r.text
    assert r.json()["node"] == b.name and r.json()["topic"] == "far/+"
    bad = a.api.post(f"/clients/{cid}/subscribe", json={"topic": "far/#/x"})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_PARAMETER"
    subs = a.api.get(f"/clients/{cid}/subscriptions").json()
    assert [(s["topic"], s["qos"], s["node"]) for s in subs] == [("far/+", 1, b.name)]
    wait_until(lambda: _sees_filter(a, b, "far/+"))
    # the subscription made through node a delivers on node b
    r = a.api.post("/publish", json={"topic": "far/1", "payload": "hi", "qos": 1})
    assert r.status_code == 200, r.text
    assert c.get().payload == b"hi"
    assert a.api.post(f"/clients/{cid}/unsubscribe",
                      json={"topic": "far/+"}).status_code == 204
    assert a.api.get(f"/clients/{cid}/subscriptions").json() == []
    assert a.api.delete(f"/clients/{cid}").status_code == 204
    assert c.wait_disconnected() == 0x98  # administrative action
    wait_until(lambda: cid not in b.broker.sessions)
    assert a.api.delete(f"/clients/{cid}").status_code == 404


def test_subscriptions_and_topics_of_every_node(two):
    a, b = two
    tag = uid("st")
    ca, cb = client(a, f"{tag}-a"), client(b, f"{tag}-b")
    ca.subscribe(f"{tag}/a", qos=1)
    cb.subscribe(f"{tag}/b", qos=2)
    cb.subscribe(f"$share/g/{tag}/b", qos=0)
    subs = b.api.get("/subscriptions", params={"match_topic": f"{tag}/#"}).json()["data"]
    assert sorted((s["topic"], s["node"]) for s in subs) == sorted([
        (f"{tag}/a", a.name), (f"{tag}/b", b.name), (f"$share/g/{tag}/b", b.name)])
    got = a.api.get("/subscriptions", params={"clientid": f"{tag}-b"}).json()
    assert got["meta"]["count"] == 2
    topics = a.api.get("/topics", params={"limit": 1000}).json()
    rows = {(t["topic"], t["node"]) for t in topics["data"]}
    assert {(f"{tag}/a", a.name), (f"{tag}/b", b.name), (f"$share/g/{tag}/b", b.name)} <= rows
    assert topics["meta"]["count"] == len(topics["data"])
    only_b = a.api.get("/topics", params={"node": b.name, "limit": 1000}).json()["data"]
    assert {t["node"] for t in only_b} == {b.name}
    assert a.api.get(f"/topics/{tag}%2Fb").json() == [
        {"topic": f"{tag}/b", "node": b.name}, {"topic": f"$share/g/{tag}/b", "node": b.name}]
    assert a.api.get(f"/topics/{tag}%2Fnothing").status_code == 404
    ca.close()
    cb.close()


def test_stats_metrics_and_monitor_per_node_and_summed(two):
    a, b = two
    clients = [client(a), client(b), client(b)]
    per_node = a.api.get("/stats", params={"aggregate": "false"}).json()
    assert [s["node"] for s in per_node] == sorted([a.name, b.name])
    live = {s["node"]: s["live_connections.count"] for s in per_node}
    assert live == {a.name: 1, b.name: 2}
    summed = a.api.get("/stats", params={"aggregate": "true"}).json()
    assert summed["live_connections.count"] == 3 and "node" not in summed
    metrics = a.api.get("/metrics").json()
    assert sorted(m["node"] for m in metrics) == sorted([a.name, b.name])
    total = a.api.get("/metrics", params={"aggregate": "true"}).json()
    assert total["client.connected"] == sum(m["client.connected"] for m in metrics)
    current = a.api.get("/monitor_current").json()
    assert current["live_connections"] == 3 and "node_uptime" not in current
    there = a.api.get(f"/monitor_current/nodes/{b.name}").json()
    assert there["live_connections"] == 2 and there["node_uptime"] > 0
    assert a.api.get("/monitor_current/nodes/nobody@nowhere").status_code == 404
    # one sample taken on each node at the same time: the cluster's is their sum
    ts = (int(time.time()) // 10 - 1) * 10000
    for n in (a, b):
        mon = n.broker.monitor
        n.call(lambda n=n, mon=mon: storage.store_sample(n.store, ts, mon.tick(ts)[1]))
    merged = {s["time_stamp"]: s for s in a.api.get("/monitor", params={"latest": 60}).json()}
    assert merged[ts]["live_connections"] == 3
    assert merged[ts]["subscriptions_ram"] == merged[ts]["subscriptions"]
    assert isinstance(a.api.get(f"/monitor/nodes/{b.name}",
                                params={"latest": 60}).json(), list)
    for c in clients:
        c.close()


def test_queue_of_an_offline_client_on_another_node_and_sessions_count(two):
    a, b = two
    cid = uid("away")
    c = client(b, cid, v5=True, clean=False, expiry=300)
    c.subscribe("away/#", qos=1)
    c.disconnect()
    wait_until(lambda: _sees_filter(a, b, "away/#"))
    pub = client(a)
    for i in range(3):
        pub.publish(f"away/{i}", f"m{i}", qos=1)
    wait_until(lambda: len(b.broker.sessions[cid].mqueue) == 3)
    got = a.api.get(f"/clients/{cid}/mqueue_messages",
                    params={"payload": "plain", "limit": 2}).json()
    assert [m["payload"] for m in got["data"]] == ["m0", "m1"]
    rest = a.api.get(f"/clients/{cid}/mqueue_messages",
                     params={"payload": "plain", "position": got["meta"]["position"]}).json()
    assert [m["payload"] for m in rest["data"]] == ["m2"]
    assert a.api.get(f"/clients/{cid}/inflight_messages").json()["data"] == []
    bad = a.api.get(f"/clients/{cid}/mqueue_messages", params={"max_payload_bytes": "x"})
    assert bad.status_code == 400
    info = a.api.get(f"/clients/{cid}").json()
    assert info["connected"] is False and info["mqueue_len"] == 3 and info["node"] == b.name
    # pub on a + the offline session on b
    assert a.api.get("/sessions_count").json() == len(a.broker.sessions) + len(b.broker.sessions)
    assert len(b.broker.sessions) >= 1
    pub.close()


def test_a_node_that_went_away(cluster):
    # a node silent for 4 s (not 10) is stopped: what the test waits for comes sooner, and
    # its first checks still run while b counts as running
    a, b = cluster(2, {"cluster": {"down_after": "4s"}})
    mine = client(a)
    client(b)
    b.stop()
    # NATS has nobody on b's subject any more: the first call to it finds b gone, and lists
    # and summed figures are of the running nodes (EMQX's running_nodes), at once
    got = a.api.get("/clients").json()
    assert [c["clientid"] for c in got["data"]] == [mine.client_id]
    assert b.name not in a.broker.cluster.running_nodes()
    assert [s["node"] for s in a.api.get("/stats").json()] == [a.name]
    assert a.api.get("/monitor_current").json()["live_connections"] == 1
    r = a.api.get(f"/monitor_current/nodes/{b.name}")
    assert r.status_code == 404  # not a running node
    assert a.api.get(f"/clients/{uid('gone')}").status_code == 404
    mine.close()
