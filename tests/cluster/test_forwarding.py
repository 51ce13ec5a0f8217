"""Forwarding between nodes under a burst: more than NATS's max_payload (1 MB) queued for a node
in one event-loop iteration goes out in several batches, and every message arrives (a batch
over the limit used to be refused by NATS and lost without a word); with a small flow-control
window the publisher is held back and released by the receiver's acks, and nothing is lost."""
from __future__ import annotations

import time

from emqpy.cluster import link
from support.mqttclient import MqttClient, client, props, uid
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
    a, b = _burst(cluster, "held")
    link_a = a.broker.cluster
    assert link_a.stats["window_full"] > 1  # (each window the 3 MB burst filled: held back)
    window = link_a._windows[b.broker.node_name]
    wait_until(lambda: window.acked == window.sent and not window.congested,
               what="every forwarded byte acknowledged")
    assert window.sent > N * PAYLOAD


def test_qos0_bodies_forwarded_as_received_reach_either_protocol(cluster):
    """A QoS 0 message travels between nodes as the PUBLISH body it arrived with (the receiver
    reuses it for subscribers of the same protocol family, and encodes it anew for the
    others): MQTT 3.1.1 and 5 publishers, with and without properties, each reach a 3.1.1
    and a 5 subscriber on the other node whole."""
    a, b = cluster(2)
    topic = f"cl/{uid()}"
    subs = {4: client(b), 5: client(b, v5=True)}
    # a filter each: one subscriber gets the publisher's body as it is, the other a new one
    filters = {4: f"{topic}/#", 5: f"{topic}/+/#"}
    for version, sub in subs.items():
        sub.subscribe(filters[version], qos=0)
    wait_until(lambda: all(_sees_filter(a, b, f) for f in filters.values()))
    pubs = {4: client(a), 5: client(a, v5=True)}
    pubs[4].publish(f"{topic}/from4", b"plain", qos=0)
    pubs[5].publish(f"{topic}/from5", b"bare", qos=0)
    pubs[5].publish(f"{topic}/from5/props", "withprops", qos=0,
                    properties=props(UserProperty=[("k", "v"), ("k", "w")],
                                     ContentType="text/plain", PayloadFormatIndicator=1))
    for version, sub in subs.items():
        got = {m.topic: m for m in sub.get_many(3)}
        assert {t: m.payload for t, m in got.items()} == {
            f"{topic}/from4": b"plain", f"{topic}/from5": b"bare",
            f"{topic}/from5/props": b"withprops"}
        assert all(m.qos == 0 and not m.retain for m in got.values())
        if version == 5:
            p = got[f"{topic}/from5/props"].properties
            assert p.UserProperty == [("k", "v"), ("k", "w")]
            assert p.ContentType == "text/plain" and p.PayloadFormatIndicator == 1
            assert not hasattr(got[f"{topic}/from4"].properties, "UserProperty")
        sub.expect_none()
    for c in (*subs.values(), *pubs.values()):
        c.close()


def _numbered_burst(a, topic: str, n: int, version: int = 4) -> None:
    """n QoS 0 messages (payload: their number) written at once by a raw publisher on `a`:
    one loop iteration's worth, which the sender forwards as runs (records.Run)."""
    pub = RawClient(a.host, a.port, version=version)
    pub.connect(uid("runpub"))
    pub.send(b"".join(publish_packet(topic, b"%d" % i, version=version) for i in range(n)))
    pub.close()


def _numbers(sub, n: int) -> list[int]:
    got: list[int] = []
    wait_until(lambda: got.extend(int(m.payload) for m in sub.drain()) or len(got) >= n,
               timeout=20, what=f"{n} messages")
    return got


def test_a_run_of_packets_is_written_whole_and_counted_per_message(cluster):
    """QoS 0 messages of one publisher for one filter cross as one run of PUBLISH packets,
    which the receiver writes to a plain subscriber of the same protocol family as one chunk
    (Broker.fanout_qos0_frames): every message arrives in order, and the subscriber's
    send_msg, the node's messages.sent and the link's received count each message."""
    a, b = cluster(2)
    topic = f"cl/{uid()}"
    sub = client(b)
    sub.subscribe(topic, qos=0)
    wait_until(lambda: _sees_filter(a, b, topic))
    before = b.api.get(f"/clients/{sub.client_id}").json()["send_msg"]
    sent_before = b.broker.metrics.sent_q[0]
    received_before = b.broker.cluster.stats["received"]
    _numbered_burst(a, topic, 500)
    assert _numbers(sub, 500) == list(range(500))
    assert b.api.get(f"/clients/{sub.client_id}").json()["send_msg"] - before == 500
    assert b.broker.metrics.sent_q[0] - sent_before == 500
    assert b.broker.cluster.stats["received"] - received_before == 500


def test_a_run_reaches_subscribers_it_cannot_be_written_to_as_it_is(cluster):
    """A run whose subscribers are not all plain subscribers of the sender's protocol family
    (here an MQTT 5 subscriber of a 3.1.1 publisher, beside a 3.1.1 one) is delivered one
    message at a time: each gets every message, in order, encoded for its own protocol."""
    a, b = cluster(2)
    topic = f"cl/{uid()}"
    subs = [client(b), client(b, v5=True)]
    for sub in subs:
        sub.subscribe(topic, qos=0)
    wait_until(lambda: _sees_filter(a, b, topic))
    _numbered_burst(a, topic, 300)
    for sub in subs:
        assert _numbers(sub, 300) == list(range(300))


def test_a_run_respects_a_subscribers_maximum_packet_size(cluster):
    """An MQTT 5 subscriber with a Maximum Packet Size gets the run's packets that fit and
    not the others (EMQX drops them for that subscriber), in order: a run with a packet over
    its maximum is not written to it whole."""
    a, b = cluster(2)
    topic = f"cl/{uid()}"
    sub = MqttClient(b.host, b.port, version=5)
    sub.connect(properties=props("CONNECT", MaximumPacketSize=100))
    sub.subscribe(topic, qos=0)
    wait_until(lambda: _sees_filter(a, b, topic))
    pub = RawClient(a.host, a.port, version=5)
    pub.connect(uid("runpub"))
    # even numbers small, odd ones over 100 bytes as packets
    pub.send(b"".join(publish_packet(topic, b"%d" % i + (b"" if i % 2 == 0 else b" " * 120),
                                     version=5) for i in range(40)))
    pub.close()
    assert _numbers(sub, 20) == list(range(0, 40, 2))
    time.sleep(0.3)
    assert sub.drain() == []
