"""Forwarding between nodes under a burst: more than NATS's max_payload (1 MB) queued for a node
in one event-loop iteration goes out in several batches, and every message arrives (a batch
over the limit used to be refused by NATS and lost without a word); with a small flow-control
window the publisher is held back and released by the receiver's acks, and nothing is lost."""
from __future__ import annotations

from emqpy.cluster import link
from support.mqttclient import client, uid
from support.rawmqtt import RawClient, publish_packet
from support.waiting import wait_until

from cluster.test_routing import _sees_filter

N = 3000
PAYLOAD = 1024  # 3 MB in one write: the publishing node reads megabytes per iteration


def _burst(cluster, name: str):
    """Two nodes; N messages (3 MB) written at once by a publisher on the first, all received
    by a subscriber on the second. Returns the nodes."""
    a, b = cluster(2)
    topic = f"cl/{uid()}"
    sub = client(b)
    sub.subscribe(topic, qos=0)
    wait_until(lambda: _sees_filter(a, b, topic))
    pub = RawClient(a.host, a.port, version=4)
    pub.connect(uid(name))
    pub.send(b"".join(publish_packet(topic, i.to_bytes(4, "big") * (PAYLOAD // 4), version=4)
                      for i in range(N)))
    got: list[int] = []
    wait_until(lambda: got.extend(int.from_bytes(m.payload[:4], "big") for m in sub.drain())
               or len(got) >= N, timeout=30, what=f"{N} messages on the other node")
    assert sorted(got) == list(range(N))
    pub.close()
    sub.close()
    return a, b


def test_a_burst_over_max_payload_reaches_the_other_node_whole(cluster):
    a, _b = _burst(cluster, "burst")
    assert a.broker.cluster.stats["forwarded"] == N


def test_a_full_window_holds_the_publisher_back_until_the_node_acks(cluster, monkeypatch):
    """Flow control (link.Window): with a 64 KiB window every batch fills it, so the publisher
    stops reading after each one until the receiving node acknowledges it; nothing is lost, and
    at the end the acks cover every byte sent."""
    monkeypatch.setattr(link, "FORWARD_WINDOW", 64 * 1024)
    monkeypatch.setattr(link, "FORWARD_RESUME", 32 * 1024)
    a, b = _burst(cluster, "held")
    link_a = a.broker.cluster
    assert link_a.stats["window_full"] > 1  # (each window the 3 MB burst filled: held back)
    window = link_a._windows[b.broker.node_name]
    wait_until(lambda: window.acked == window.sent and not window.congested,
               what="every forwarded byte acknowledged")
    assert window.sent > N * PAYLOAD
