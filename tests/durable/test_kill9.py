"""Persistent sessions survive kill -9: a broker in its own process, killed with SIGKILL and
started again on the same data dir, with real MQTT clients before and after."""
from __future__ import annotations

import time

from support.mqttclient import MqttClient, props, uid
from support.process import BrokerProcess
from support.rawmqtt import (CONNACK, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL,
                             SESSION_EXPIRY, SUBACK, RawClient, ack_packet, disconnect_packet, publish_packet,
                             subscribe_packet)
from support.waiting import wait_until

HOST = "127.0.0.1"


def _offline(broker, cid):
    """The broker has processed the client's disconnect (and written it down)."""
    r = broker.api.get(f"/clients/{cid}")
    return r.status_code == 200 and r.json()["connected"] is False


def _durable_subscriptions(broker) -> int:
    """emqx_durable_subscriptions_count, as Prometheus scrapes it (EMQX's /stats leaves the
    durable_subscriptions stats out)."""
    text = broker.api.get("/prometheus/stats").text
    line = next(l for l in text.splitlines() if l.startswith("emqx_durable_subscriptions_count"))
    return int(float(line.split()[-1]))


def _persistent(broker, cid, expiry=300, version=5) -> MqttClient:
    c = MqttClient(HOST, broker.mqtt_port, cid, version=version, clean=False)
    c.connect(properties=props("CONNECT", SessionExpiryInterval=expiry) if version == 5
              else None)
    return c


def _raw(broker, cid, expiry=300, clean=False):
    c = RawClient(HOST, broker.mqtt_port)
    ack = c.connect(cid, clean=clean, properties={SESSION_EXPIRY: expiry})
    assert ack.rc == 0
    return c, ack


def test_queued_qos1_and_qos2_messages_survive_kill_9(tmp_path):
    broker = BrokerProcess(tmp_path).start()
    cid = uid("s")
    try:
        sub = _persistent(broker, cid)
        assert sub.session_present is False
        assert sub.subscribe("k9/q1", qos=1) == [1]
        assert sub.subscribe("k9/q2", qos=2) == [2]
        sub.disconnect()
        v3 = _persistent(broker, cid + "-v3", version=4)  # MQTT 3.1.1 clean session 0
        v3.subscribe("k9/q1", qos=1)
        v3.close()
        wait_until(lambda: _offline(broker, cid) and _offline(broker, cid + "-v3"))
        pub = MqttClient(HOST, broker.mqtt_port).connect()
        n = 200
        for i in range(n):  # each returns once PUBACK / PUBCOMP came back
            pub.publish("k9/q1", b"one-%d" % i, qos=1)
            pub.publish("k9/q2", b"two-%d" % i, qos=2)
        pub.close()
        broker.kill()
        broker.start()
        sub = _persistent(broker, cid)
        assert sub.session_present is True
        got = [sub.get() for _ in range(2 * n)]
        ones = {m.payload for m in got if m.topic == "k9/q1"}
        twos = [m.payload for m in got if m.topic == "k9/q2"]
        assert ones == {b"one-%d" % i for i in range(n)}
        assert sorted(twos) == sorted(b"two-%d" % i for i in range(n))  # exactly once
        assert twos == [b"two-%d" % i for i in range(n)]  # in order
        sub.expect_none()
        v3 = _persistent(broker, cid + "-v3", version=4)
        assert v3.session_present is True
        assert {v3.get().payload for _ in range(n)} == {b"one-%d" % i for i in range(n)}
        assert _durable_subscriptions(broker) == 3
        sub.close()
        v3.close()
    finally:
        broker.stop()


def test_unacknowledged_messages_come_again_with_dup(tmp_path):
    broker = BrokerProcess(tmp_path).start()
    cid = uid("d")
    try:
        sub, _ = _raw(broker, cid)
        sub.send(subscribe_packet(1, [("k9d/1", 1), ("k9d/2", 2)]))
        assert sub.expect(SUBACK).rcs == [1, 2]
        pub = MqttClient(HOST, broker.mqtt_port).connect()
        pub.publish("k9d/1", b"q1", qos=1)
        pub.publish("k9d/2", b"q2-released", qos=2)
        pub.publish("k9d/2", b"q2-unacked", qos=2)
        first = sub.expect(PUBLISH)
        second = sub.expect(PUBLISH)
        third = sub.expect(PUBLISH)
        assert (first.payload, second.payload, third.payload) == (
            b"q1", b"q2-released", b"q2-unacked")
        sub.send(ack_packet(PUBREC, second.pid))  # PUBREC: the broker answers PUBREL
        assert sub.expect(PUBREL).pid == second.pid
        broker.kill()
        sub.close()
        broker.start()
        sub, ack = _raw(broker, cid)
        assert ack.session_present
        again = [sub.recv() for _ in range(3)]
        by_pid = {p.pid: p for p in again}
        assert by_pid[first.pid].type == PUBLISH and by_pid[first.pid].dup
        assert by_pid[first.pid].payload == b"q1"
        assert by_pid[second.pid].type == PUBREL  # not the message again
        assert by_pid[third.pid].type == PUBLISH and by_pid[third.pid].dup
        assert by_pid[third.pid].payload == b"q2-unacked" and by_pid[third.pid].qos == 2
        sub.send(ack_packet(PUBACK, first.pid))
        sub.send(ack_packet(PUBCOMP, second.pid))
        sub.send(ack_packet(PUBREC, third.pid))
        assert sub.expect(PUBREL).pid == third.pid
        sub.send(ack_packet(PUBCOMP, third.pid))
        sub.send(disconnect_packet())
        sub.close()
        pub.close()
        wait_until(lambda: _offline(broker, cid))
        broker.kill()  # what was acknowledged stays acknowledged
        broker.start()
        sub, ack = _raw(broker, cid)
        assert ack.session_present
        try:
            p = sub.recv(timeout=0.5)
            raise AssertionError(f"nothing should come again, got {p}")
        except TimeoutError:
            pass
        sub.close()
    finally:
        broker.stop()


def test_incoming_qos2_awaiting_pubrel_survives(tmp_path):
    broker = BrokerProcess(tmp_path).start()
    pcid, scid = uid("p"), uid("s")
    try:
        sub = _persistent(broker, scid)
        sub.subscribe("k9r/#", qos=2)
        pub, _ = _raw(broker, pcid)
        pub.send(publish_packet("k9r/x", b"once", qos=2, pid=7))
        assert pub.expect(PUBREC).rc == 0
        assert sub.get().payload == b"once"
        sub.disconnect()
        wait_until(lambda: _offline(broker, scid))
        broker.kill()
        pub.close()
        broker.start()
        pub, ack = _raw(broker, pcid)
        assert ack.session_present
        # the publisher did not see our PUBCOMP: it sends the PUBLISH again (DUP), then
        # PUBREL; the broker knows packet id 7 and does not publish twice
        pub.send(publish_packet("k9r/x", b"once", qos=2, pid=7, dup=True))
        assert pub.expect(PUBREC).rc == 0x91  # packet identifier in use
        pub.send(ack_packet(PUBREL, 7))
        assert pub.expect(PUBCOMP).rc == 0
        pub.send(ack_packet(PUBREL, 7))  # released now: unknown
        assert pub.expect(PUBCOMP).rc == 0x92
        sub = _persistent(broker, scid)
        assert sub.session_present
        sub.expect_none()
        pub.close()
        sub.close()
    finally:
        broker.stop()


def test_session_expiry_counts_across_the_downtime(tmp_path):
    broker = BrokerProcess(tmp_path).start()
    short, long_ = uid("short"), uid("long")
    try:
        for cid, expiry in ((short, 15), (long_, 600)):
            c = _persistent(broker, cid, expiry)
            c.subscribe("k9e/t", qos=1)
            c.disconnect()
        gone = time.monotonic()
        wait_until(lambda: _offline(broker, short) and _offline(broker, long_))
        MqttClient(HOST, broker.mqtt_port).connect().publish("k9e/t", b"m", qos=1)
        broker.kill()
        time.sleep(max(0.0, 3 - (time.monotonic() - gone)))  # down 3 s after the disconnect
        broker.start()
        assert broker.api.get(f"/clients/{short}").status_code == 200
        # 15 s from its disconnect; counted from the restart it would be 18 s or more
        wait_until(lambda: broker.api.get(f"/clients/{short}").status_code == 404,
                   timeout=30, what="the 15 s session to expire", interval=0.1)
        assert 14 < time.monotonic() - gone < 17
        c = _persistent(broker, short, 15)
        assert c.session_present is False
        c.expect_none()
        c.close()
        c = _persistent(broker, long_, 600)
        assert c.session_present is True
        assert c.get().payload == b"m"
        c.close()
    finally:
        broker.stop()


def test_will_delay_is_honoured_across_a_kill(tmp_path):
    broker = BrokerProcess(tmp_path).start()
    cid = uid("w")
    try:
        watcher = _persistent(broker, uid("watch"))
        watcher.subscribe("k9w/will", qos=1)
        c = MqttClient(HOST, broker.mqtt_port, cid, version=5, clean=False)
        c.will_set("k9w/will", b"gone", qos=1, properties=props("WILL", WillDelayInterval=3))
        c.connect(properties=props("CONNECT", SessionExpiryInterval=600))
        c.drop()  # no DISCONNECT: the will is due 3 s from now
        dropped = time.monotonic()
        wait_until(lambda: _offline(broker, cid))
        broker.kill()
        watcher.close()
        broker.start()
        watcher = _persistent(broker, watcher.client_id)
        assert watcher.get(timeout=10).payload == b"gone"
        assert time.monotonic() - dropped >= 2.9
        watcher.expect_none(1.0)  # once
        broker.kill()  # published: it does not come again after another restart
        broker.start()
        watcher.close()
        watcher = _persistent(broker, watcher.client_id)
        watcher.expect_none(1.0)
        watcher.close()
    finally:
        broker.stop()


def test_reconnecting_within_the_will_delay_cancels_it_across_a_restart(tmp_path):
    broker = BrokerProcess(tmp_path).start()
    cid = uid("w")
    try:
        watcher = _persistent(broker, uid("watch"))
        watcher.subscribe("k9w2/will", qos=1)
        c = MqttClient(HOST, broker.mqtt_port, cid, version=5, clean=False)
        c.will_set("k9w2/will", b"gone", qos=1, properties=props("WILL", WillDelayInterval=10))
        c.connect(properties=props("CONNECT", SessionExpiryInterval=600))
        c.drop()
        dropped = time.monotonic()
        wait_until(lambda: _offline(broker, cid))
        broker.stop()  # a clean stop this time
        broker.start()
        c = _persistent(broker, cid, 600)
        assert c.session_present
        assert time.monotonic() - dropped < 10, "too slow a restart to test this"
        watcher = _persistent(broker, watcher.client_id)
        watcher.expect_none(max(0.5, 11 - (time.monotonic() - dropped)))
        c.close()
        watcher.close()
    finally:
        broker.stop()


def test_disabled_keeps_sessions_in_memory_only(tmp_path):
    broker = BrokerProcess(tmp_path, config={"durable_sessions": {"enable": False}}).start()
    cid = uid("m")
    try:
        sub = _persistent(broker, cid)
        sub.subscribe("k9m/t", qos=1)
        sub.disconnect()
        wait_until(lambda: _offline(broker, cid))
        MqttClient(HOST, broker.mqtt_port).connect().publish("k9m/t", b"x", qos=1)
        assert _durable_subscriptions(broker) == 0
        broker.kill()
        broker.start()
        assert not (tmp_path / "sessions").exists()
        sub = _persistent(broker, cid)
        assert sub.session_present is False
        sub.expect_none()
        sub.close()
    finally:
        broker.stop()


def test_clean_sessions_and_qos0_are_not_written(tmp_path):
    broker = BrokerProcess(tmp_path).start()
    try:
        sub = MqttClient(HOST, broker.mqtt_port, uid("c")).connect()
        sub.subscribe("k9c/t", qos=1)
        kept = _persistent(broker, uid("k"))
        kept.subscribe("k9c/t", qos=0)
        journal = next((tmp_path / "sessions").glob("journal.*"))
        size = journal.stat().st_size
        pub = MqttClient(HOST, broker.mqtt_port).connect()
        for i in range(20):
            pub.publish("k9c/t", b"%d" % i, qos=1)
        assert len(sub.get_many(20)) == 20
        assert len(kept.get_many(20)) == 20  # (at QoS 0: its subscription's)
        assert journal.stat().st_size == size
        sub.close()
        kept.close()
        pub.close()
    finally:
        broker.stop()


def test_raw_connack_session_present_after_kill(tmp_path):
    """MQTT 3.1.1 at the byte level: CONNACK's session present flag after the restart."""
    broker = BrokerProcess(tmp_path).start()
    cid = uid("r")
    try:
        c = RawClient(HOST, broker.mqtt_port, version=4)
        assert c.connect(cid, clean=False).session_present is False
        c.send(subscribe_packet(1, [("k9b/t", 1)], version=4))
        c.expect(SUBACK)
        c.close()
        wait_until(lambda: _offline(broker, cid))
        broker.kill()
        broker.start()
        c = RawClient(HOST, broker.mqtt_port, version=4)
        ack = c.connect(cid, clean=False)
        assert ack.type == CONNACK and ack.session_present is True
        c.close()
    finally:
        broker.stop()
