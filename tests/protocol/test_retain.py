"""Retained messages: storage, deletion, Retain Handling, Retain As Published, expiry."""
import time

import pytest

from support.mqttclient import props, sub_opts, uid


@pytest.fixture
def pub(broker, mqtt):
    return mqtt(broker)


def test_retained_delivered_on_subscribe(broker, mqtt, pub):
    t = uid("ret")
    pub.publish(t, b"kept", qos=1, retain=True)
    c = mqtt(broker)
    c.subscribe(t, 1)
    m = c.get()
    assert (m.payload, m.retain, m.qos) == (b"kept", True, 1)
    pub.publish(t, b"", qos=1, retain=True)


def test_retained_qos_is_min_of_sub_and_message(broker, mqtt, pub):
    t = uid("ret")
    pub.publish(t, b"q2", qos=2, retain=True)
    c = mqtt(broker)
    c.subscribe(t, 1)
    assert c.get().qos == 1
    pub.publish(t, b"", qos=1, retain=True)


def test_retained_replaced_and_deleted(broker, mqtt, pub):
    t = uid("ret")
    pub.publish(t, b"v1", qos=1, retain=True)
    pub.publish(t, b"v2", qos=1, retain=True)
    c = mqtt(broker)
    c.subscribe(t, 1)
    assert c.get().payload == b"v2"
    c.expect_none(0.2)
    pub.publish(t, b"", qos=1, retain=True)
    m = c.get()  # the deleting publish is still forwarded to current subscribers
    assert m.payload == b"" and not m.retain
    c2 = mqtt(broker)
    c2.subscribe(t, 1)
    c2.expect_none()


def test_wildcard_subscribe_gets_all_matching_retained(broker, mqtt, pub):
    t = uid("ret")
    for leaf in ("a", "b", "c/d"):
        pub.publish(f"{t}/{leaf}", leaf.encode(), qos=1, retain=True)
    c = mqtt(broker)
    c.subscribe(f"{t}/#", 1)
    got = {m.topic: m.payload for m in c.get_many(3)}
    assert got == {f"{t}/a": b"a", f"{t}/b": b"b", f"{t}/c/d": b"c/d"}
    c2 = mqtt(broker)
    c2.subscribe(f"{t}/+", 1)
    assert {m.topic for m in c2.get_many(2)} == {f"{t}/a", f"{t}/b"}
    for leaf in ("a", "b", "c/d"):
        pub.publish(f"{t}/{leaf}", b"", qos=1, retain=True)


def test_live_retained_publish_has_retain_cleared(broker, mqtt, pub):
    t = uid("ret")
    c = mqtt(broker)
    c.subscribe(t, 1)
    pub.publish(t, b"live", qos=1, retain=True)
    m = c.get()
    assert m.payload == b"live" and m.retain is False  # RAP=0
    pub.publish(t, b"", qos=1, retain=True)


def test_retain_as_published(broker, mqtt, pub):
    t = uid("ret")
    c = mqtt(broker)
    c.subscribe(t, options=sub_opts(1, rap=True))
    pub.publish(t, b"live", qos=1, retain=True)
    assert c.get().retain is True
    pub.publish(t, b"plain", qos=1)
    assert c.get().retain is False
    pub.publish(t, b"", qos=1, retain=True)


def test_v311_live_retained_publish_has_retain_cleared(broker, mqtt, pub):
    t = uid("ret")
    c = mqtt(broker, version=4)
    c.subscribe(t, 1)
    pub.publish(t, b"live", qos=1, retain=True)
    assert c.get().retain is False
    pub.publish(t, b"", qos=1, retain=True)


def test_retain_handling_0_sends_on_every_subscribe(broker, mqtt, pub):
    t = uid("ret")
    pub.publish(t, b"r", qos=1, retain=True)
    c = mqtt(broker)
    c.subscribe(t, options=sub_opts(1, rh=0))
    assert c.get().retain
    c.subscribe(t, options=sub_opts(1, rh=0))  # re-subscribe: sent again
    assert c.get().retain
    pub.publish(t, b"", qos=1, retain=True)


def test_retain_handling_1_only_for_new_subscription(broker, mqtt, pub):
    t = uid("ret")
    pub.publish(t, b"r", qos=1, retain=True)
    c = mqtt(broker)
    c.subscribe(t, options=sub_opts(1, rh=1))
    assert c.get().payload == b"r"
    c.subscribe(t, options=sub_opts(1, rh=1))  # already exists: nothing
    c.expect_none()
    pub.publish(t, b"", qos=1, retain=True)


def test_retain_handling_2_never_sends(broker, mqtt, pub):
    t = uid("ret")
    pub.publish(t, b"r", qos=1, retain=True)
    c = mqtt(broker)
    c.subscribe(t, options=sub_opts(1, rh=2))
    c.expect_none()
    pub.publish(t, b"live", qos=1)
    assert c.get().payload == b"live"  # the subscription itself works
    pub.publish(t, b"", qos=1, retain=True)


def test_retained_message_expiry(broker, mqtt, pub):
    t = uid("ret")
    pub.publish(t, b"short", qos=1, retain=True,
                properties=props(MessageExpiryInterval=1))
    pub.publish(t + "/long", b"long", qos=1, retain=True,
                properties=props(MessageExpiryInterval=100))
    c = mqtt(broker)
    c.subscribe(t + "/long", 1)
    m = c.get()
    assert 0 < m.properties.MessageExpiryInterval <= 100  # remaining lifetime is forwarded
    time.sleep(2.2)  # past the 1 s expiry
    c2 = mqtt(broker)
    c2.subscribe(t, 1)
    c2.expect_none()
    c3 = mqtt(broker)
    c3.subscribe(t + "/long", 1)
    assert c3.get().properties.MessageExpiryInterval < 100  # time stored counts down
    pub.publish(t + "/long", b"", qos=1, retain=True)


@pytest.mark.emqpy_only
def test_retained_not_sent_to_shared_subscription(broker, mqtt, pub):
    # EMQX emqx_retainer:on_session_subscribed ignores #share{} topics (Mosquitto does send).
    t = uid("ret")
    pub.publish(t, b"r", qos=1, retain=True)
    c = mqtt(broker)
    c.subscribe(f"$share/g/{t}", 1)
    c.expect_none()
    pub.publish(t, b"", qos=1, retain=True)
