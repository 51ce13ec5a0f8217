"""Sessions: clean start, expiry, session present, takeover, resume with subscriptions/queue."""
import time

import pytest

from support import rawmqtt as R
from support.mqttclient import props, uid


def persistent(mqtt, broker, cid, expiry=60, **kw):
    return mqtt(broker, cid, clean_start=False,
                properties=props("CONNECT", SessionExpiryInterval=expiry), **kw)


def test_clean_start_has_no_session_present(broker, mqtt):
    c = mqtt(broker)
    assert c.session_present is False


def test_v5_session_resumes_with_subscription_and_queue(broker, mqtt):
    cid, t = uid("s"), uid("t")
    c = persistent(mqtt, broker, cid)
    assert c.session_present is False
    c.subscribe(t, 1)
    c.disconnect()
    pub = mqtt(broker)
    pub.publish(t, b"while-away", qos=1)
    c2 = persistent(mqtt, broker, cid)
    assert c2.session_present is True
    m = c2.get()
    assert (m.payload, m.qos) == (b"while-away", 1)
    pub.publish(t, b"live", qos=1)  # the subscription survived too
    assert c2.get().payload == b"live"
    c2.disconnect(properties=props("DISCONNECT", SessionExpiryInterval=0))


def test_v311_persistent_session(broker, mqtt):
    cid, t = uid("s"), uid("t")
    c = mqtt(broker, cid, version=4, clean=False)
    assert c.session_present is False
    c.subscribe(t, 1)
    c.disconnect()
    mqtt(broker).publish(t, b"queued", qos=1)
    c2 = mqtt(broker, cid, version=4, clean=False)
    assert c2.session_present is True
    assert c2.get().payload == b"queued"
    c2.disconnect()
    c3 = mqtt(broker, cid, version=4, clean=True)  # clean session discards it
    assert c3.session_present is False


def test_clean_start_discards_session(broker, mqtt):
    cid, t = uid("s"), uid("t")
    c = persistent(mqtt, broker, cid)
    c.subscribe(t, 1)
    c.disconnect()
    c2 = mqtt(broker, cid, clean_start=True)
    assert c2.session_present is False
    mqtt(broker).publish(t, b"x", qos=1)
    c2.expect_none()


def test_v5_default_expiry_zero_ends_session(broker, mqtt):
    cid, t = uid("s"), uid("t")
    c = mqtt(broker, cid, clean_start=False)  # no Session Expiry Interval -> 0
    c.subscribe(t, 1)
    c.disconnect()
    c2 = mqtt(broker, cid, clean_start=False)
    assert c2.session_present is False


def test_session_expires_after_interval(broker, mqtt):
    cid = uid("s")
    c = persistent(mqtt, broker, cid, expiry=1)
    c.subscribe(uid("t"), 1)
    c.disconnect()
    time.sleep(2.5)  # let the 1 s session expiry interval pass (brokers check ~every second)
    c2 = persistent(mqtt, broker, cid, expiry=1)
    assert c2.session_present is False


def test_disconnect_can_shorten_expiry_to_zero(broker, mqtt):
    cid = uid("s")
    c = persistent(mqtt, broker, cid)
    c.subscribe(uid("t"), 1)
    c.disconnect(properties=props("DISCONNECT", SessionExpiryInterval=0))
    assert persistent(mqtt, broker, cid).session_present is False


def test_disconnect_setting_expiry_from_zero_is_protocol_error(broker, raw):
    r = raw(broker)
    r.connect(uid())  # expiry 0
    r.send(R.disconnect_packet(0, {R.SESSION_EXPIRY: 30}))
    got = r.expect_close()
    assert all(p.type == R.DISCONNECT for p in got)
    if broker.is_emqpy:
        assert [p.rc for p in got] == [0x82]  # MQTT 5 3.14.2.2.2


def test_takeover_v5_old_gets_0x8e_and_session_moves(broker, mqtt):
    cid, t = uid("s"), uid("t")
    old = persistent(mqtt, broker, cid, manual_ack=True)
    old.subscribe(t, 1)
    pub = mqtt(broker)
    pub.publish(t, b"inflight", qos=1)
    first = old.get()  # received, deliberately not acked
    new = persistent(mqtt, broker, cid)
    assert new.session_present is True
    rc = old.wait_disconnected()
    if broker.is_emqpy:  # MQTT 5 3.1.4: MAY send DISCONNECT 0x8E; EMQX does, Mosquitto 2.0 closes
        assert rc == 0x8E  # Session taken over
    again = new.get()
    assert again.payload == b"inflight" and again.dup and again.mid == first.mid
    pub.publish(t, b"after", qos=1)
    assert new.get().payload == b"after"
    new.disconnect(properties=props("DISCONNECT", SessionExpiryInterval=0))


def test_takeover_v311_closes_old_connection(broker, mqtt):
    cid, t = uid("s"), uid("t")
    old = mqtt(broker, cid, version=4, clean=False)
    old.subscribe(t, 1)
    new = mqtt(broker, cid, version=4, clean=False)
    assert new.session_present is True
    old.wait_disconnected()
    mqtt(broker).publish(t, b"x", qos=1)
    assert new.get().payload == b"x"
    new.disconnect()
    mqtt(broker, cid, version=4, clean=True)


def test_takeover_with_clean_start_gives_fresh_session(broker, mqtt):
    cid, t = uid("s"), uid("t")
    old = persistent(mqtt, broker, cid)
    old.subscribe(t, 1)
    new = mqtt(broker, cid, clean_start=True)
    assert new.session_present is False
    rc = old.wait_disconnected()
    assert rc == 0x8E if broker.is_emqpy else True
    mqtt(broker).publish(t, b"x", qos=1)
    new.expect_none()


@pytest.mark.emqpy_only
def test_offline_qos0_queued_by_default(broker, mqtt):
    # EMQX mqtt.mqueue_store_qos0 = true: QoS 0 messages are queued for offline sessions too.
    cid, t = uid("s"), uid("t")
    c = persistent(mqtt, broker, cid)
    c.subscribe(t, 0)
    c.disconnect()
    mqtt(broker).publish(t, b"q0", qos=0)
    c2 = persistent(mqtt, broker, cid)
    m = c2.get()
    assert (m.payload, m.qos) == (b"q0", 0)
    c2.disconnect(properties=props("DISCONNECT", SessionExpiryInterval=0))


@pytest.mark.emqpy_only
def test_offline_qos0_not_queued_when_disabled(make_broker, mqtt):
    b = make_broker({"mqtt": {"mqueue_store_qos0": False}})
    cid, t = uid("s"), uid("t")
    c = persistent(mqtt, b, cid)
    c.subscribe(t, 1)
    c.disconnect()
    pub = mqtt(b)
    pub.publish(t, b"q0", qos=0)
    pub.publish(t, b"q1", qos=1)
    c2 = persistent(mqtt, b, cid)
    assert c2.get().payload == b"q1"
    c2.expect_none()


@pytest.mark.emqpy_only
def test_v3_persistent_session_uses_config_expiry(make_broker, mqtt):
    # v3 has no Session Expiry Interval: EMQX uses mqtt.session_expiry_interval (default 2h).
    b = make_broker({"mqtt": {"session_expiry_interval": "1s"}})
    cid = uid("s")
    c = mqtt(b, cid, version=4, clean=False)
    c.subscribe(uid("t"), 1)
    c.disconnect()
    c2 = mqtt(b, cid, version=4, clean=False)
    assert c2.session_present is True
    c2.disconnect()
    time.sleep(2.5)  # let the configured 1 s expiry pass
    assert mqtt(b, cid, version=4, clean=False).session_present is False


def test_assigned_client_id_session_can_be_resumed(broker, raw):
    r = raw(broker)
    ack = r.connect("", properties={R.SESSION_EXPIRY: 30})
    cid = ack.props[R.ASSIGNED_CLIENT_ID]
    r.send(R.disconnect_packet(0))
    r.expect_close()
    r2 = raw(broker)
    assert r2.connect(cid, clean=False, properties={R.SESSION_EXPIRY: 0}).session_present


def test_takeover_carries_queued_messages(broker, raw, mqtt):
    t, cid = uid("tq"), uid("c")
    cp = {R.SESSION_EXPIRY: 30, R.RECEIVE_MAXIMUM: 1}
    old = raw(broker)
    old.connect(cid, clean=False, properties=cp)
    old.send(R.subscribe_packet(1, [(t, 1)]))
    old.expect(R.SUBACK)
    pub = mqtt(broker)
    for i in range(3):
        pub.publish(t, str(i).encode(), qos=1)
    assert old.expect(R.PUBLISH).payload == b"0"  # 1 inflight (unacked), 2 queued
    new = raw(broker)
    assert new.connect(cid, clean=False, properties=cp).session_present
    got = []
    for _ in range(3):
        p = new.expect(R.PUBLISH)
        got.append((p.payload, p.dup))
        new.send(R.ack_packet(R.PUBACK, p.pid))
    assert got == [(b"0", True), (b"1", False), (b"2", False)]
    new.send(R.disconnect_packet(0, {R.SESSION_EXPIRY: 0}))
