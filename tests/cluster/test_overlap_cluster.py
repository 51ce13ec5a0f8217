"""mqtt.overlapping_subscriptions = single across a cluster: a message published on one node
reaches a client on another node once, however many of its subscriptions match (the publishing
node forwards it once per matching filter; the receiving node merges them)."""
from __future__ import annotations

from support.mqttclient import client, props, sub_opts, uid
from support.waiting import wait_until

from . import test_routing


def test_one_copy_on_another_node(cluster):
    a, b = cluster(2)
    for node in (a, b):
        node.ok("PUT", "/configs/global_zone",
                json={"mqtt": {"overlapping_subscriptions": "single"}})
    topic = f"ovc/{uid()}"
    sub = client(b, v5=True)
    for flt, qos, sub_id in ((f"{topic}/x", 1, 7), (f"{topic}/+", 2, 8), ("ovc/#", 0, None)):
        p = props("SUBSCRIBE", SubscriptionIdentifier=sub_id) if sub_id else None
        sub.subscribe(flt, options=sub_opts(qos), properties=p)
    for flt in (f"{topic}/x", f"{topic}/+", "ovc/#"):
        wait_until(lambda flt=flt: test_routing._sees_filter(a, b, flt))
    pub = client(a, v5=True)
    pub.publish(f"{topic}/x", b"once", qos=2,
                properties=props(MessageExpiryInterval=60))
    pub.publish(f"{topic}/y", b"twice matched", qos=1)
    # (by payload: the client hands a QoS 2 message over at its PUBREL, so the QoS 1 one
    # published after it may come first)
    got = {m.payload: m for m in sub.get_many(2)}
    assert set(got) == {b"once", b"twice matched"}, got
    first, second = got[b"once"], got[b"twice matched"]
    assert first.payload == b"once" and first.qos == 2
    assert sorted(first.properties.SubscriptionIdentifier) == [7, 8]
    assert second.payload == b"twice matched" and second.qos == 1
    assert second.properties.SubscriptionIdentifier == [8]
    sub.expect_none()
    pub.close()
    sub.close()
