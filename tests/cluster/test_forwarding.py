"""Forwarding between nodes under a burst: more than NATS's max_payload (1 MB) queued for a node
in one event-loop iteration goes out in several batches, and every message arrives (a batch
over the limit used to be refused by NATS and lost without a word)."""
from __future__ import annotations

from support.mqttclient import client, uid
from support.rawmqtt import RawClient, publish_packet
from support.waiting import wait_until

from cluster.test_routing import _sees_filter

N = 3000
PAYLOAD = 1024  # 3 MB in one write: the publishing node reads megabytes per iteration


def test_a_burst_over_max_payload_reaches_the_other_node_whole(cluster):
    a, b = cluster(2)
    topic = f"cl/{uid()}"
    sub = client(b)
    sub.subscribe(topic, qos=0)
    wait_until(lambda: _sees_filter(a, b, topic))
    pub = RawClient(a.host, a.port, version=4)
    pub.connect(uid("burst"))
    pub.send(b"".join(publish_packet(topic, i.to_bytes(4, "big") * (PAYLOAD // 4), version=4)
                      for i in range(N)))
    got: list[int] = []
    wait_until(lambda: got.extend(int.from_bytes(m.payload[:4], "big") for m in sub.drain())
               or len(got) >= N, timeout=30, what=f"{N} messages on the other node")
    assert sorted(got) == list(range(N))
    assert a.broker.cluster.stats["forwarded"] == N
    pub.close()
    sub.close()
