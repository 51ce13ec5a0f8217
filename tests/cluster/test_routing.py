"""Two and three emqpy nodes clustered over their embedded NATS servers: messages published on
one node reach the matching subscribers on the others (QoS 0/1/2, wildcards, MQTT 5
properties), once each, and only nodes with matching subscribers get them."""
from __future__ import annotations

from support.mqttclient import client, props, uid
from support.node import Node
from support.waiting import wait_until

from cluster.conftest import offline_with_three_queued


def _sees_filter(node: Node, other: Node, flt: str) -> bool:
    peer = node.broker.cluster.peers.get(other.broker.node_name)
    return peer is not None and flt in peer.filters


def test_publish_on_one_node_reaches_subscribers_on_another(cluster):
    a, b = cluster(2)
    topic = f"cl/{uid()}"
    sub = client(b, v5=True)
    sub.subscribe(f"{topic}/+", qos=2)
    wait_until(lambda: _sees_filter(a, b, f"{topic}/+"))
    pub = client(a, v5=True)
    for qos in (0, 1, 2):
        pub.publish(f"{topic}/{qos}", f"q{qos}", qos=qos,
                    properties=props(UserProperty=[("k", "v")], ContentType="text/plain"))
    got = sorted(sub.get_many(3), key=lambda m: m.topic)
    assert [m.payload for m in got] == [b"q0", b"q1", b"q2"]
    assert [m.qos for m in got] == [0, 1, 2]
    assert got[1].properties.UserProperty == [("k", "v")]
    assert got[1].properties.ContentType == "text/plain"
    sub.expect_none()  # once each
    pub.close()
    sub.close()


def test_only_nodes_with_subscribers_get_messages_and_unsubscribe_stops_them(cluster):
    a, b, c = cluster(3)
    topic = f"cl/{uid()}"
    sub = client(b)
    sub.subscribe(topic, qos=1)
    wait_until(lambda: _sees_filter(a, b, topic))
    pub = client(a)
    pub.publish(topic, "one", qos=1)
    assert sub.get().payload == b"one"
    assert c.broker.cluster.stats["received"] == 0
    sub.unsubscribe(topic)
    wait_until(lambda: not _sees_filter(a, b, topic))
    before = a.broker.cluster.stats["forwarded"]
    pub.publish(topic, "two", qos=1)
    assert a.broker.cluster.stats["forwarded"] == before
    pub.close()
    sub.close()


def test_local_and_remote_subscribers_both_get_it(cluster):
    a, b = cluster(2)
    topic = f"cl/{uid()}"
    local, remote = client(a), client(b)
    local.subscribe(topic, qos=1)
    remote.subscribe("cl/#", qos=1)
    wait_until(lambda: _sees_filter(a, b, "cl/#"))
    pub = client(a)
    pub.publish(topic, "both", qos=1)
    assert local.get().payload == b"both"
    assert remote.get().payload == b"both"
    for c_ in (pub, local, remote):
        c_.close()


def test_single_node_starts_no_nats(make_mqtt_broker):
    node = Node(make_mqtt_broker())
    assert node.broker.cluster is None
    node.stop()


def test_nodes_api_answers_for_the_cluster_and_shows_a_dead_node_stopped(cluster):
    a, b = cluster(2)
    names = sorted([a.broker.node_name, b.broker.node_name])
    assert a.api.get("/cluster").json()["nodes"] == names
    listed = a.api.get("/nodes").json()
    assert [n["node"] for n in listed] == names
    assert {n["node_status"] for n in listed} == {"running"}
    c = client(b)
    stats = a.api.get(f"/nodes/{b.broker.node_name}/stats").json()
    assert stats["live_connections.count"] >= 1
    info = a.api.get(f"/nodes/{b.broker.node_name}").json()
    assert info["node"] == b.broker.node_name and info["node_status"] == "running"
    assert a.api.get("/nodes/nobody@nowhere").status_code == 404
    c.close()
    b.stop()
    wait_until(lambda: {n["node"]: n["node_status"] for n in a.api.get("/nodes").json()}
               == {a.broker.node_name: "running", b.broker.node_name: "stopped"}, timeout=30)
    r = a.api.get(f"/nodes/{b.broker.node_name}/stats")
    assert r.status_code == 503 and r.json()["code"] == "SERVICE_UNAVAILABLE"


def test_shared_group_across_nodes_gets_each_message_once(cluster):
    a, b, c = cluster(3)
    topic = f"cl/{uid()}"
    members = [client(n) for n in (a, b, c)]
    for m in members:
        m.subscribe(f"$share/g/{topic}", qos=1)
    wait_until(lambda: _sees_filter(a, b, f"$share/g/{topic}")
               and _sees_filter(a, c, f"$share/g/{topic}"))
    pub = client(a)
    for i in range(30):
        pub.publish(topic, str(i), qos=1)
    got = []
    wait_until(lambda: got.extend(sum((m.drain() for m in members), [])) or len(got) >= 30)
    for m in members:
        m.expect_none(timeout=0.5)
    assert sorted(int(x.payload) for x in got) == list(range(30))
    # spread over the nodes (random by default): every node's member got some
    counts = [n.broker.cluster.stats["received"] for n in (b, c)]
    assert all(counts), counts
    for m in members + [pub]:
        m.close()


def test_shared_group_only_on_other_nodes(cluster):
    a, b = cluster(2)
    topic = f"cl/{uid()}"
    member = client(b)
    member.subscribe(f"$share/only/{topic}", qos=1)
    wait_until(lambda: _sees_filter(a, b, f"$share/only/{topic}"))
    assert not _sees_filter(a, b, topic)  # no plain subscriber there
    pub = client(a)
    for i in range(5):
        pub.publish(topic, str(i), qos=1)
    assert sorted(int(m.payload) for m in member.get_many(5)) == list(range(5))
    member.expect_none()
    pub.close()
    member.close()


def _registered(node, clientid):
    return clientid in node.broker.sessions


def test_connecting_on_another_node_takes_the_session_over(cluster):
    a, b = cluster(2)
    cid = uid("roamer")
    old = client(a, cid, v5=True, clean=False, expiry=300)
    old.subscribe("cl/roam/#", qos=1)
    wait_until(lambda: _sees_filter(b, a, "cl/roam/#"))
    new = client(b, cid, v5=True, clean=False, expiry=300)
    assert old.wait_disconnected() == 0x8E  # session taken over
    # the subscription moved: b has it, a has no session left
    wait_until(lambda: "cl/roam/#" in b.broker.sessions[cid].subscriptions)
    wait_until(lambda: not _registered(a, cid))
    wait_until(lambda: _sees_filter(a, b, "cl/roam/#"))
    pub = client(a)
    pub.publish("cl/roam/1", "after the move", qos=1)
    assert new.get().payload == b"after the move"
    for c_ in (old, new, pub):
        c_.close()


def test_queued_messages_follow_the_session(cluster):
    a, b = cluster(2)
    cid = offline_with_three_queued(a, "cl/sleep")
    back = client(b, cid, v5=True, clean=False, expiry=300)
    assert sorted(int(m.payload) for m in back.get_many(3)) == [0, 1, 2]
    wait_until(lambda: not _registered(a, cid))
    back.close()


def test_clean_start_elsewhere_discards_the_old_session(cluster):
    a, b = cluster(2)
    cid = uid("fresh")
    old = client(a, cid, v5=True, clean=False, expiry=300)
    old.subscribe("cl/fresh/#", qos=1)
    new = client(b, cid, v5=True, clean=True)
    assert old.wait_disconnected() == 0x8E
    wait_until(lambda: not _registered(a, cid))
    assert not b.broker.sessions[cid].subscriptions
    for c_ in (old, new):
        c_.close()
