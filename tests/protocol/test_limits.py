"""Limits and options from EMQX's `mqtt` config (reason codes as in EMQX 5.8.1
emqx_mqtt_caps / emqx_channel / emqx_packet)."""
import pytest

from support import rawmqtt as R
from support.mqttclient import sub_opts, uid

pytestmark = pytest.mark.emqpy_only


def test_max_clientid_len(make_broker, raw):
    b = make_broker({"mqtt": {"max_clientid_len": 23}})  # EMQX's schema minimum is 23
    assert raw(b).connect("c" * 23).rc == 0
    r5 = raw(b)
    assert r5.connect("c" * 24).rc == 0x85
    r5.expect_close()
    r4 = raw(b, 4)
    assert r4.connect("c" * 24).raw() == b"\x20\x02\x00\x02"
    r4.expect_close()


def test_max_topic_levels(make_broker, raw, mqtt):
    b = make_broker({"mqtt": {"max_topic_levels": 3}})
    c = mqtt(b)
    assert c.subscribe("a/b/c", 1) == [1]
    assert c.subscribe("a/b/c/d", 1) == [0x8F]
    c4 = mqtt(b, version=4)
    assert c4.subscribe("a/b/c/d", 1) == [0x80]
    r = raw(b)
    r.connect(uid())
    r.send(R.publish_packet("a/b/c/d", b"x", qos=1, pid=1))
    assert [(p.type, p.rc) for p in r.expect_close()] == [(R.DISCONNECT, 0x90)]


def test_retain_not_available(make_broker, raw, mqtt):
    b = make_broker({"mqtt": {"retain_available": False}})
    c = mqtt(b)
    t = uid("r")
    c.subscribe(t, 1)
    mqtt(b).publish(t, b"plain", qos=1)
    assert c.get().payload == b"plain"
    r = raw(b)
    r.connect(uid())
    r.send(R.publish_packet(t, b"x", qos=1, pid=1, retain=True))
    assert [(p.type, p.rc) for p in r.expect_close()] == [(R.DISCONNECT, 0x9A)]
    # a retained will is refused at CONNECT (emqx_packet:check_will_msg)
    r2 = raw(b)
    assert r2.connect(uid(), will={"topic": t, "payload": b"w", "retain": True}).rc == 0x9A


def test_will_qos_above_max_qos_allowed(make_broker, raw):
    b = make_broker({"mqtt": {"max_qos_allowed": 1}})
    r = raw(b)
    assert r.connect(uid(), will={"topic": "w", "payload": b"w", "qos": 2}).rc == 0x9B


def test_publish_qos_above_max_qos_allowed(make_broker, raw):
    b = make_broker({"mqtt": {"max_qos_allowed": 1}})
    r = raw(b)
    r.connect(uid())
    r.send(R.publish_packet(uid(), b"x", qos=2, pid=1))
    assert [(p.type, p.rc) for p in r.expect_close()] == [(R.DISCONNECT, 0x9B)]


def test_wildcard_subscription_disabled(make_broker, mqtt):
    b = make_broker({"mqtt": {"wildcard_subscription": False}})
    c = mqtt(b)
    assert c.subscribe("a/+", 1) == [0xA2]
    assert c.subscribe("a/#", 1) == [0xA2]
    assert c.subscribe("a/b", 1) == [1]
    assert mqtt(b, version=4).subscribe("a/#", 1) == [0x80]


def test_exclusive_subscription_disabled_by_default(broker, mqtt):
    assert mqtt(broker).subscribe(f"$exclusive/{uid()}", 1) == [0x8F]


def test_exclusive_subscription(make_broker, mqtt):
    b = make_broker({"mqtt": {"exclusive_subscription": True}})
    t = uid("ex")
    first = mqtt(b)
    assert first.subscribe(f"$exclusive/{t}", 1) == [1]
    second = mqtt(b)
    assert second.subscribe(f"$exclusive/{t}", 1) == [0x97]  # quota exceeded
    mqtt(b).publish(t, b"x", qos=1)  # the exclusive subscription is on the plain topic
    assert first.get().payload == b"x"
    first.disconnect()
    assert second.subscribe(f"$exclusive/{t}", 1) == [1]  # freed when the owner goes away


def test_ignore_loop_deliver(make_broker, mqtt):
    b = make_broker({"mqtt": {"ignore_loop_deliver": True}})
    t = uid("loop")
    v3 = mqtt(b, version=4)
    v3.subscribe(t, 1)
    v3.publish(t, b"own", qos=1)
    mqtt(b).publish(t, b"other", qos=1)
    assert v3.get().payload == b"other"
    v5 = mqtt(b)  # v5 clients decide with No Local instead
    v5.subscribe(t, 1)
    v5.publish(t, b"own5", qos=1)
    assert v5.get().payload == b"own5"


def test_upgrade_qos(make_broker, mqtt):
    b = make_broker({"mqtt": {"upgrade_qos": True}})
    t = uid("up")
    c = mqtt(b)
    c.subscribe(t, 2)
    mqtt(b).publish(t, b"x", qos=0)
    assert c.get().qos == 2


def test_no_upgrade_qos_by_default(broker, mqtt):
    t = uid("up")
    c = mqtt(broker)
    c.subscribe(t, 2)
    mqtt(broker).publish(t, b"x", qos=0)
    assert c.get().qos == 0


def test_max_subscriptions(make_broker, mqtt):
    b = make_broker({"mqtt": {"max_subscriptions": 2}})
    c = mqtt(b)
    assert c.subscribe("s/1", 1) == [1]
    assert c.subscribe("s/2", 1) == [1]
    assert c.subscribe("s/3", 1) == [0x97]
    assert c.subscribe("s/1", 2) == [2]  # updating an existing one is not a new subscription
    c.unsubscribe("s/2")
    assert c.subscribe("s/3", 1) == [1]


def test_use_username_as_clientid(make_broker, mqtt):
    b = make_broker({"mqtt": {"use_username_as_clientid": True}})
    first = mqtt(b, uid("a"), username="alice")
    mqtt(b, uid("b"), username="alice")  # same effective client id: takes over
    assert first.wait_disconnected() == 0x8E
    r_ok = mqtt(b, uid("c"), username="bob")
    assert r_ok.connack_rc == 0


def test_use_username_as_clientid_requires_username(make_broker, raw):
    b = make_broker({"mqtt": {"use_username_as_clientid": True}})
    r = raw(b)
    assert r.connect(uid(), username="").rc == 0x85


def test_strict_mode_rejects_invalid_utf8(make_broker, raw):
    b = make_broker({"mqtt": {"strict_mode": True}})
    r = raw(b)
    r.connect(uid())
    r.send(R.publish_packet(uid(), b"x", qos=1, pid=1, properties={R.CONTENT_TYPE: b"\xff\xfe"}))
    assert [(p.type, p.rc) for p in r.expect_close()] == [(R.DISCONNECT, 0x81)]


def test_non_strict_mode_tolerates_invalid_utf8_property(broker, raw):
    r = raw(broker)
    r.connect(uid())
    r.send(R.publish_packet(uid(), b"x", qos=1, pid=1, properties={R.CONTENT_TYPE: b"\xff\xfe"}))
    assert r.expect(R.PUBACK).pid == 1


def test_max_subscriptions_counts_per_session(make_broker, mqtt):
    b = make_broker({"mqtt": {"max_subscriptions": 1}})
    a, c = mqtt(b), mqtt(b)
    assert a.subscribe("x/1", options=sub_opts(1)) == [1]
    assert c.subscribe("x/1", 1) == [1]
    assert a.subscribe("x/2", 1) == [0x97]
