"""Per-client counters in /clients and /clients/{clientid}, as EMQX's client object has them
(emqx_connection / emqx_channel / emqx_session_events, 5.8.1): packets and PUBLISH messages per
QoS each way, bytes, socket reads/writes, and messages dropped per reason. Exact counts from raw
MQTT clients that know every byte they exchanged."""
from __future__ import annotations

import time

from mgmt.clients_support import (  # noqa: F401  (env is a fixture)
    env, make_env, props, uid, wait_until,
)
from protocol import rawmqtt as R

COUNTERS = (
    "recv_cnt", "recv_oct", "recv_pkt", "recv_msg", "recv_msg.qos0", "recv_msg.qos1",
    "recv_msg.qos2", "recv_msg.dropped", "recv_msg.dropped.await_pubrel_timeout", "send_cnt",
    "send_oct", "send_pkt", "send_msg", "send_msg.qos0", "send_msg.qos1", "send_msg.qos2",
    "send_msg.dropped", "send_msg.dropped.expired", "send_msg.dropped.queue_full",
    "send_msg.dropped.too_large", "mailbox_len", "heap_size", "reductions",
)


class CountingClient(R.RawClient):
    """A raw client that counts the bytes it wrote and read."""

    def __init__(self, handle, version=5):
        super().__init__(handle.host, handle.port, version)
        self.sent = self.received = 0

    def send(self, data: bytes) -> None:
        self.sent += len(data)
        super().send(data)

    def _fill(self, deadline: float) -> None:
        before = len(self.buf)
        super()._fill(deadline)
        self.received += len(self.buf) - before


def _counters(env, clientid: str) -> dict:
    info = env.ok("GET", f"/clients/{clientid}")
    return {k: info[k] for k in COUNTERS}


def test_every_packet_and_message_counted_both_ways(env):
    sub = CountingClient(env.h)
    sub.connect(sid := uid("sub"))
    sub.send(R.subscribe_packet(1, [("cnt/#", 2)]))
    sub.expect(R.SUBACK)
    pub = CountingClient(env.h)
    pub.connect(pid := uid("pub"))
    for i in range(3):
        pub.send(R.publish_packet("cnt/0", b"zero-%d" % i))
    for i in (1, 2):
        pub.send(R.publish_packet("cnt/1", b"one", qos=1, pid=i))
        pub.expect(R.PUBACK)
    pub.send(R.publish_packet("cnt/2", b"two", qos=2, pid=3))
    pub.expect(R.PUBREC)
    pub.send(R.ack_packet(R.PUBREL, 3))
    pub.expect(R.PUBCOMP)
    pub.send(R.PINGREQ_PACKET)
    pub.expect(R.PINGRESP)

    got = [sub.expect(R.PUBLISH) for _ in range(6)]
    assert [p.qos for p in got] == [0, 0, 0, 1, 1, 2]
    for p in got[3:5]:
        sub.send(R.ack_packet(R.PUBACK, p.pid))
    sub.send(R.ack_packet(R.PUBREC, got[5].pid))
    sub.expect(R.PUBREL)
    sub.send(R.ack_packet(R.PUBCOMP, got[5].pid))
    sub.send(R.PINGREQ_PACKET)  # its answer shows the acknowledgements before it were handled
    sub.expect(R.PINGRESP)

    p = _counters(env, pid)
    # CONNECT, 6 PUBLISH, PUBREL, PINGREQ in; CONNACK, 2 PUBACK, PUBREC, PUBCOMP, PINGRESP out
    assert (p["recv_pkt"], p["recv_msg"], p["recv_msg.qos0"], p["recv_msg.qos1"],
            p["recv_msg.qos2"]) == (9, 6, 3, 2, 1)
    assert (p["send_pkt"], p["send_msg"], p["send_msg.qos0"], p["send_msg.qos1"],
            p["send_msg.qos2"]) == (6, 0, 0, 0, 0)
    assert (p["recv_oct"], p["send_oct"]) == (pub.sent, pub.received)
    assert 1 <= p["recv_cnt"] <= p["recv_pkt"] and 1 <= p["send_cnt"] <= p["send_pkt"]

    s = _counters(env, sid)
    # CONNECT, SUBSCRIBE, 2 PUBACK, PUBREC, PUBCOMP, PINGREQ in;
    # CONNACK, SUBACK, 6 PUBLISH, PUBREL, PINGRESP out
    assert (s["recv_pkt"], s["recv_msg"]) == (7, 0)
    assert (s["send_pkt"], s["send_msg"], s["send_msg.qos0"], s["send_msg.qos1"],
            s["send_msg.qos2"]) == (10, 6, 3, 2, 1)
    assert (s["recv_oct"], s["send_oct"]) == (sub.sent, sub.received)
    for c in (p, s):
        assert c["send_msg.dropped"] == c["recv_msg.dropped"] == 0
        assert c["mailbox_len"] == c["heap_size"] == c["reductions"] == 0


def test_list_reports_messages_of_every_client(env):
    # What emqx-client-monitor reads: recv_msg / send_msg of each client in GET /clients.
    sub = env.client(uid("m-sub"), version=4)
    sub.subscribe("mon/#", 1)
    pub = env.client(uid("m-pub"))
    for i in range(5):
        pub.publish("mon/t", b"%d" % i, qos=i % 2)
    assert len(sub.get_many(5)) == 5
    rows = wait_until(lambda: (r := {c["clientid"]: c for c in env.ok("GET", "/clients")["data"]})
                      and r[sub.client_id]["send_msg"] == 5 and r, what="counters")
    assert rows[pub.client_id]["recv_msg"] == 5
    assert (rows[pub.client_id]["recv_msg.qos0"], rows[pub.client_id]["recv_msg.qos1"]) == (3, 2)
    assert (rows[sub.client_id]["send_msg.qos0"], rows[sub.client_id]["send_msg.qos1"]) == (3, 2)
    one = env.ok("GET", "/clients", params={"fields": "clientid,recv_msg,send_msg.qos1"})
    assert {tuple(sorted(c)) for c in one["data"]} == {("clientid", "recv_msg", "send_msg.qos1")}


def test_too_large_drops(env):
    # the client's Maximum Packet Size keeps both the QoS 0 fan-out and the QoS 1 path from
    # sending; each is a send_msg.dropped.too_large
    sub = CountingClient(env.h)
    sub.connect(sid := uid("big"), properties={R.MAXIMUM_PACKET_SIZE: 64})
    sub.send(R.subscribe_packet(1, [("big/#", 1)]))
    sub.expect(R.SUBACK)
    pub = env.client(uid("big-pub"))
    pub.publish("big/0", b"x" * 100, qos=0)
    pub.publish("big/1", b"x" * 100, qos=1)
    pub.publish("big/1", b"small", qos=1)
    assert sub.expect(R.PUBLISH).payload == b"small"
    c = _counters(env, sid)
    assert (c["send_msg.dropped"], c["send_msg.dropped.too_large"], c["send_msg"]) == (2, 2, 1)


def test_queue_drops_while_offline_then_counters_restart(make_broker):
    with make_env(make_broker, {"mqtt": {"max_mqueue_len": 2, "mqueue_store_qos0": False}}) as e:
        cid = e.offline_session("off", "off/#")
        for i in range(5):
            e.ok("POST", "/publish", json={"topic": "off/1", "payload": str(i), "qos": 1})
        # (202 no_matching_subscribers: the offline session drops QoS 0, mqueue_store_qos0)
        e.ok("POST", "/publish", 202, json={"topic": "off/0", "payload": "q0", "qos": 0})
        info = e.ok("GET", f"/clients/{cid}")
        # counted for the last connection, as EMQX's disconnected channel keeps counting
        assert (info["send_msg.dropped.queue_full"], info["send_msg.dropped"]) == (3, 4)
        assert info["mqueue_dropped"] == 3 and info["recv_pkt"] >= 2
        c2 = e.client(cid, clean=False, properties=props("CONNECT", SessionExpiryInterval=300))
        assert [m.payload for m in c2.get_many(2)] == [b"3", b"4"]
        info = wait_until(lambda: (i := e.ok("GET", f"/clients/{cid}"))["send_msg"] == 2 and i,
                          what="deliveries counted")
        # a new connection's counters start at 0; the queue's own tally is the session's
        assert (info["send_msg.dropped"], info["send_msg.dropped.queue_full"]) == (0, 0)
        assert info["mqueue_dropped"] == 3 and info["recv_msg"] == 0


def test_expired_drops(env):
    cid = env.offline_session("exp", "exp/#")
    pub = env.client(uid("exp-pub"))
    pub.publish("exp/1", b"short", qos=1, properties=props(MessageExpiryInterval=1))
    pub.publish("exp/1", b"long", qos=1)
    time.sleep(1.2)
    c2 = env.client(cid, clean=False, properties=props("CONNECT", SessionExpiryInterval=300))
    assert c2.get().payload == b"long"
    info = env.ok("GET", f"/clients/{cid}")
    assert (info["send_msg.dropped.expired"], info["send_msg.dropped"]) == (1, 1)


def test_await_pubrel_timeout_drops(make_broker):
    with make_env(make_broker, {"mqtt": {"await_rel_timeout": "1s"}}) as e:
        r = R.RawClient(e.h.host, e.h.port)
        r.connect(cid := uid("rel"))
        try:
            r.send(R.publish_packet("rel/t", b"x", qos=2, pid=7))
            r.expect(R.PUBREC)
            time.sleep(1.2)  # no PUBREL within await_rel_timeout: the flow is forgotten
            r.send(R.publish_packet("rel/t", b"y", qos=2, pid=7))
            assert r.expect(R.PUBREC).rc == 0x10  # a new flow (no subscribers), not 0x91 in use
            info = e.ok("GET", f"/clients/{cid}")
            assert (info["recv_msg.dropped"], info["recv_msg.dropped.await_pubrel_timeout"],
                    info["recv_msg.qos2"]) == (1, 1, 2)
        finally:
            r.close()
