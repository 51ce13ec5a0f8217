"""Cluster faults (docs/cluster.md, Faults).

A network partition between two nodes: each node's NATS route port is reached through a TCP
proxy the test controls (the nodes' only traffic between them: each node's link, JetStream and
replicated state go over its own nats-server, which routes to the other's). Cut or stalled,
each side serves its own clients and sees the other stopped; healed, with no manual step, they
route to each other again and what changed on either side meanwhile reaches the other.

A node killed with kill -9 is left out of the others' answers at once; nodes of another
forwarding protocol (another emqpy version) do not route to each other, with an alarm."""
from __future__ import annotations

import asyncio
import signal
import time

import msgpack
import pytest

from emqpy.cluster import link, natsd
from support.mqttclient import MqttClient, client, props, uid
from support.node import Node
from support.servers import free_port
from support.tcpproxy import TcpProxy
from support.waiting import wait_until

from cluster.test_membership import _names, _proc, _routes
from cluster.test_replica import _last_seq


@pytest.fixture
def partitioned(make_mqtt_broker):
    """Two nodes clustered by static seeds whose NATS routes go through proxies: ->
    (a, b, proxies). A node's real route port is a free one; the proxy listens on the port
    its name derives (6222+N), which is what the other node routes to."""
    made: list = []
    proxies: list[TcpProxy] = []
    names = _names(2)
    try:
        for name in names:
            real = free_port()
            proxies.append(TcpProxy(natsd.CLUSTER_PORT_BASE + natsd.node_offset(name), real))
            made.append(Node(make_mqtt_broker({
                "node": {"name": name},
                "cluster": {"name": "testpt", "discovery_strategy": "static",
                            "static": {"seeds": names},
                            "nats": {"cluster_port": real}}})))
        a, b = made
        wait_until(lambda: _statuses(a) == _statuses(b) == {n: "running" for n in names},
                   timeout=30, what="both nodes running on both")
        yield a, b, proxies
    finally:
        for nd in made:
            nd.stop()
        for p in proxies:
            p.close()


def _statuses(node: Node) -> dict:
    return {n["node"]: n["node_status"] for n in node.get("/nodes")}


def _local_pubsub(node: Node) -> None:
    """A node's own clients are served: a message from one reaches the other."""
    topic = f"pt/local/{uid()}"
    sub, pub = client(node), client(node)
    sub.subscribe(topic, qos=1)
    pub.publish(topic, "here", qos=1)
    assert sub.get().payload == b"here"
    sub.close()
    pub.close()


def _retained(node: Node, topic: str) -> bytes | None:
    msg = node.broker.retainer.lookup(topic)
    return msg[0].payload if msg else None


def _banned(node: Node) -> set[str]:
    return {b["who"] for b in node.get("/banned?limit=1000")["data"]}


def _waiting(node: Node) -> int:
    """Changes made on `node` that wait for the replicated log (no quorum)."""
    return node.store.query_one("SELECT count(*) AS n FROM replica_outbox")["n"]


def _settled(node: Node) -> int | None:
    """The last log entry `node` applied, once it has no retained message left to send."""
    replica = node.broker.cluster.replica
    return None if replica._retained_out else replica.applied


def _levels(node: Node) -> int:
    return node.broker.config.mqtt.max_topic_levels


@pytest.mark.parametrize("how", ["cut", "stall"])
def test_a_partition_heals_by_itself(partitioned, how):
    """`cut`: the connections close and new ones are refused; `stall`: nothing gets through
    and nobody is told (NATS finds out when its writes time out, the nodes when heartbeats
    stop)."""
    a, b, proxies = partitioned
    _routes(a, b)
    _routes(b, a)
    # the routes go through the proxies (one way or both: NATS keeps one set between two servers)
    assert sum(p.connections() for p in proxies)
    # a subscriber on b that stays connected through the partition
    topic = f"pt/cross/{uid()}"
    far = client(b)
    far.subscribe(topic, qos=1)

    for p in proxies:
        getattr(p, how)()
    # stopped for the API and for routing (a stall: by the heartbeats, cluster.down_after)
    for node, other in ((a, b), (b, a)):
        wait_until(lambda: _statuses(node)[other.name] == "stopped"
                   and node.broker.cluster.stopped_nodes() == [other.name], timeout=20,
                   what=f"{node.name} sees {other.name} stopped")
    _local_pubsub(a)
    _local_pubsub(b)
    near = client(a)
    near.publish(topic, "lost", qos=1)  # nowhere to go: b is cut off
    far.expect_none()

    # replicated state changed on each side meanwhile, one of them on both sides
    ban_a, ban_b = uid("ban-a"), uid("ban-b")
    a.ok("POST", "/banned", json={"as": "clientid", "who": ban_a})
    b.ok("POST", "/banned", json={"as": "clientid", "who": ban_b})
    kept_b, both = f"pt/kept/{uid()}", f"pt/both/{uid()}"
    pub_b = client(b)
    pub_b.publish(kept_b, "from b", qos=1, retain=True)
    pub_b.publish(both, "b's", qos=1, retain=True)
    near.publish(both, "a's", qos=1, retain=True)
    wait_until(lambda: _retained(b, both) == b"b's", what="b's own retained message")
    wait_until(lambda: _retained(a, both) == b"a's", what="a's own retained message")
    assert _retained(a, kept_b) is None
    a.ok("PUT", "/configs/global_zone", json={"mqtt": {"max_topic_levels": 71}})
    b.ok("PUT", "/configs/global_zone", json={"mqtt": {"max_topic_levels": 72}})
    # two nodes cut in two: neither side has the JetStream quorum, changes wait on each side
    # (each is queued once its request has been answered)
    wait_until(lambda: _waiting(a) == _waiting(b) == 2, what="both changes waiting on each")

    for p in proxies:
        p.heal()
    wait_until(lambda: _statuses(a) == _statuses(b) == {a.name: "running", b.name: "running"},
               timeout=30, what="both running on both after the heal")
    _routes(a, b)
    _routes(b, a)
    # EMQX's partition alarm, raised when the other came back without a restart and cleared
    # once its routes were fetched again
    for node, other in ((a, b), (b, a)):
        wait_until(lambda: link.PARTITION_ALARM not in _alarms(node), what="partition healed")
        assert {"name": link.PARTITION_ALARM, "details": {"occurred": other.name},
                "message": f"Partition occurs at node {other.name}"}.items() <= next(
            x for x in node.get("/alarms?activated=false")["data"]
            if x["name"] == link.PARTITION_ALARM).items()
    near.publish(topic, "across", qos=1)
    assert far.get().payload == b"across"
    wait_until(lambda: _waiting(a) == _waiting(b) == 0, timeout=30,
               what="the changes made meanwhile in the replicated log")
    wait_until(lambda: _settled(a) == _settled(b) == _last_seq(a), timeout=30,
               what="both nodes applied the whole log and sent their retained messages")
    assert {ban_a, ban_b} <= _banned(a) and {ban_a, ban_b} <= _banned(b)
    wait_until(lambda: _retained(a, kept_b) == b"from b", what="b's retained message on a")
    # the topic retained on both sides, the setting changed on both: one of the two on both
    wait_until(lambda: _retained(a, both) == _retained(b, both), what="one retained message")
    assert _retained(a, both) in (b"a's", b"b's")
    assert _levels(a) == _levels(b) and _levels(a) in (71, 72)
    for c in (far, near, pub_b):
        c.close()


def test_a_client_on_both_sides_of_a_partition_keeps_its_newer_session(partitioned):
    """A client id connected on a, then (the partition hiding a from b's takeover) on b:
    two sessions, one per side. Healed, a's older one yields to b's newer one: a closes its
    connection with 0x8E (session taken over) and hands its subscriptions to b, and the
    cluster lists the client once."""
    a, b, proxies = partitioned
    cid = uid("both")
    expiry = props("CONNECT", SessionExpiryInterval=300)
    old = MqttClient(a.host, a.port, cid, version=5, clean=False)
    old.connect(properties=expiry)
    old.subscribe("pt/old/#", qos=1)
    for p in proxies:
        p.cut()
    for node, other in ((a, b), (b, a)):
        wait_until(lambda: _statuses(node)[other.name] == "stopped", timeout=20,
                   what=f"{node.name} sees {other.name} stopped")
    new = MqttClient(b.host, b.port, cid, version=5, clean=False)
    new.connect(properties=expiry)
    assert new.session_present is False  # (a's session is out of reach)
    new.subscribe("pt/new/#", qos=1)
    assert not old.disconnected.is_set()
    for p in proxies:
        p.heal()
    assert old.wait_disconnected(timeout=30) == 0x8E
    assert not new.disconnected.is_set()
    for node in (a, b):
        wait_until(lambda: [(c["clientid"], c["node"]) for c in node.get(
            f"/clients?clientid={cid}")["data"]] == [(cid, b.name)], timeout=20,
            what=f"{cid} listed once, on {b.name}, by {node.name}")
    assert {s["topic"] for s in b.get(f"/clients/{cid}/subscriptions")} == {
        "pt/old/#", "pt/new/#"}
    pub = client(a)
    pub.publish("pt/old/1", "kept", qos=1)
    assert new.get().payload == b"kept"
    pub.close()
    new.close()


# -- a node killed: the others stop counting it at once -----------------------------------------

def test_a_killed_node_is_left_out_at_once(make_mqtt_broker, tmp_path):
    """kill -9 of a node (its nats-server dies with it): the other node's cluster-wide lists
    answer at once with the running nodes' rows, and /nodes shows it stopped within a few
    seconds, not after the heartbeats' cluster.down_after (10 s)."""
    names = _names(2)
    a = Node(make_mqtt_broker({
        "node": {"name": names[0], "cookie": "testcookie"},
        "cluster": {"name": "testmb", "discovery_strategy": "static",
                    "static": {"seeds": names}}}))
    b = _proc(tmp_path, names[1], names)
    try:
        b.start()
        wait_until(lambda: _statuses(a) == {n: "running" for n in names}, timeout=30,
                   what="both nodes running")
        here = [client(a, uid("here")) for _ in range(2)]
        there = MqttClient("127.0.0.1", b.mqtt_port, uid("there"))
        there.connect()
        wait_until(lambda: a.get("/clients")["meta"]["count"] == 3, what="3 clients listed")

        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait(10)
        b.proc = None
        started = time.monotonic()
        listed = a.get("/clients")
        took = time.monotonic() - started
        assert sorted(c["clientid"] for c in listed["data"]) == \
            sorted(c.client_id for c in here)
        assert listed["meta"]["count"] == 2
        assert took < 2, f"/clients took {took:.1f} s"
        assert {s["node"] for s in a.get("/subscriptions")["data"]} <= {a.name}
        wait_until(lambda: _statuses(a)[names[1]] == "stopped",
                   timeout=a.broker.cluster.down_after / 2, what="b stopped")
        assert a.broker.cluster.stopped_nodes() == [names[1]]
        assert a.get("/stats?aggregate=true")["connections.count"] == 2
        for c in here:
            c.close()
    finally:
        b.stop()
        a.stop()


# -- nodes of another emqpy version ---------------------------------------------------------------

def _alarms(node: Node) -> set[str]:
    return {x["name"] for x in node.get("/alarms?activated=true&limit=1000")["data"]}


def test_nodes_of_another_forwarding_protocol_do_not_route_to_each_other(cluster):
    a, b = cluster(2)
    _routes(a, b)
    theirs = link.FORWARD_PROTOCOL + 1  # b plays a node of a later version
    b.call(lambda: setattr(b.broker.cluster, "protocol", theirs))
    wait_until(lambda: link.PROTOCOL_ALARM + b.name in _alarms(a)
               and link.PROTOCOL_ALARM + a.name in _alarms(b), what="both alarmed")
    alarm = next(x for x in a.get("/alarms?activated=true")["data"]
                 if x["name"] == link.PROTOCOL_ALARM + b.name)
    assert alarm["details"] == {"node": b.name, "protocol": theirs,
                                "this_node_protocol": link.FORWARD_PROTOCOL}
    # neither has the other's filters any more, nor learns new ones: nothing crosses
    topic = f"pt/version/{uid()}"
    subs = {n: client(n) for n in (a, b)}
    for s in subs.values():
        s.subscribe(topic, qos=1)
    pubs = {n: client(n) for n in (a, b)}
    pubs[a].publish(topic, "from a", qos=1)
    pubs[b].publish(topic, "from b", qos=1)
    assert subs[a].get().payload == b"from a" and subs[b].get().payload == b"from b"
    subs[a].expect_none()
    subs[b].expect_none()
    assert not a.broker.cluster.remote.match(topic) and not b.broker.cluster.remote.match(topic)
    assert _statuses(a) == {a.name: "running", b.name: "running"}  # it does run
    # b back on this version: the alarms clear and messages cross again
    b.call(lambda: setattr(b.broker.cluster, "protocol", link.FORWARD_PROTOCOL))
    wait_until(lambda: link.PROTOCOL_ALARM + b.name not in _alarms(a)
               and link.PROTOCOL_ALARM + a.name not in _alarms(b), what="alarms cleared")
    _routes(a, b)
    _routes(b, a)
    for c in (*subs.values(), *pubs.values()):
        c.close()


def test_a_node_from_before_protocol_versions_gets_no_route_table(cluster):
    """Such a node's heartbeat has no protocol header, and its request for a node's table is
    an empty one: it is alarmed, and not answered (so it never forwards here)."""
    (a,) = cluster(1)
    old = "emqx-old@127.0.0.1"
    prefix = a.broker.cluster.prefix

    async def play_old_node():
        import nats
        nc = await nats.connect(a.broker.cluster_nats.connect_url, allow_reconnect=False)
        try:
            await nc.publish(f"{prefix}.hb", msgpack.packb([old, 0, 1]))
            await nc.flush()
            with pytest.raises(nats.errors.TimeoutError):
                await nc.request(f"{prefix}.dump.{a.name}", b"", timeout=1)
            # (one of this version is answered)
            answer = await nc.request(f"{prefix}.dump.{a.name}",
                                      msgpack.packb([old, link.FORWARD_PROTOCOL]), timeout=5)
            return msgpack.unpackb(answer.data)
        finally:
            await nc.close()
    version, filters = asyncio.run(play_old_node())
    assert isinstance(version, int) and isinstance(filters, list)
    wait_until(lambda: link.PROTOCOL_ALARM + old in _alarms(a), what="the old node alarmed")


# -- three nodes, one cut off: the majority keeps the log --------------------------------------

def test_three_nodes_the_majority_keeps_writing_and_the_minority_catches_up(cluster):
    """Node c cut off from a and b (its nats-server frozen: its routes stall, as in a network
    partition that drops packets). a and b, two of three JetStream servers, keep the log:
    a ban made on a applies on b during the partition; c serves its own clients, and its own
    change waits in its outbox. Healed: c applies what the majority wrote, its change reaches
    a and b, and all three route to each other again."""
    a, b, c = cluster(3, {"cluster": {"down_after": "4s"}})
    for node in (a, b, c):
        wait_until(lambda: node.broker.cluster.replica.caught_up.is_set(), what="caught up")
    _routes(a, c)
    nats_c = c.broker.cluster_nats.proc
    nats_c.send_signal(signal.SIGSTOP)
    try:
        for node in (a, b):
            wait_until(lambda: _statuses(node)[c.name] == "stopped", timeout=20,
                       what=f"{node.name} sees {c.name} stopped")
        ban_a, ban_c = uid("ban-a"), uid("ban-c")
        a.ok("POST", "/banned", json={"as": "clientid", "who": ban_a})
        wait_until(lambda: ban_a in _banned(b), timeout=20, what="a's ban applied on b")
        assert _waiting(a) == 0  # in the log: a and b are a quorum
        _routes(a, b)
        _local_pubsub(c)
        c.ok("POST", "/banned", json={"as": "clientid", "who": ban_c})
        wait_until(lambda: _waiting(c) == 1, what="c's ban waiting for the log")
        assert ban_a not in _banned(c) and ban_c not in _banned(a)
    finally:
        nats_c.send_signal(signal.SIGCONT)
    wait_until(lambda: all(_statuses(n) == {x.name: "running" for x in (a, b, c)}
                           for n in (a, b, c)), timeout=40, what="all three running on all")
    wait_until(lambda: _waiting(c) == 0, timeout=30, what="c's ban in the log")
    for node in (a, b, c):
        wait_until(lambda: {ban_a, ban_c} <= _banned(node), timeout=30,
                   what=f"both bans on {node.name}")
    _routes(c, a)
    _routes(b, c)
