"""Overlapping subscriptions of one client: one copy per matching subscription (EMQX, the
default) or one copy per client (`mqtt.overlapping_subscriptions = single`, MQTT 5 3.3.4),
seen by real clients."""
from __future__ import annotations

import pytest

from emqpy.config import load_config
from support.mqttclient import props, sub_opts, uid

SINGLE = {"mqtt": {"overlapping_subscriptions": "single"}}


def _sub_ids(msg) -> list:
    ids = getattr(msg.properties, "SubscriptionIdentifier", None) if msg.properties else None
    if ids is None:
        return []
    return list(ids) if isinstance(ids, list) else [ids]


def _subscribe(c, flt, qos, sub_id=None, **opts):
    p = props("SUBSCRIBE", SubscriptionIdentifier=sub_id) if sub_id else None
    assert c.subscribe(flt, options=sub_opts(qos, **opts), properties=p)[0] < 0x80


def test_subscription_identifiers_single_copy(make_broker):
    # what Paho's interoperability test_subscribe_identifiers checks: a client with two
    # matching subscriptions gets one message carrying both identifiers
    node = make_broker(SINGLE)
    a = node.mqtt(uid("a"))
    b = node.mqtt(uid("b"))
    _subscribe(a, "TopicA", 2, 456789)
    _subscribe(b, "TopicA", 2, 2)
    _subscribe(b, "TopicA/#", 2, 3)
    b.publish("TopicA", b"sub identifier test", qos=1)
    got_a = a.get()
    assert _sub_ids(got_a) == [456789]
    got_b = b.get()
    assert sorted(_sub_ids(got_b)) == [2, 3] and got_b.qos == 1
    a.expect_none()
    b.expect_none()


def test_single_copy_at_the_highest_qos(make_broker):
    # Paho's test_overlapping_subscriptions, answered the "one message" way
    node = make_broker(SINGLE)
    c = node.mqtt(uid("o"))
    _subscribe(c, "TopicA/#", 2)
    _subscribe(c, "TopicA/+", 1)
    c.publish("TopicA/C", b"overlapping topic filters", qos=2)
    msg = c.get()
    assert msg.qos == 2 and _sub_ids(msg) == []
    c.expect_none()


def test_per_subscription_is_the_default(broker):
    c = broker.mqtt(uid("p"))
    _subscribe(c, "ov/#", 1, 1)
    _subscribe(c, "ov/b", 2, 2)
    c.publish("ov/b", b"x", qos=2)
    got = sorted((m.qos, _sub_ids(m)) for m in c.get_many(2))
    assert got == [(1, [1]), (2, [2])]
    c.expect_none()


def test_no_local_takes_only_its_own_subscription_out(make_broker):
    node = make_broker(SINGLE)
    c = node.mqtt(uid("nl"))
    _subscribe(c, "nl/#", 2, 1, no_local=True)
    _subscribe(c, "nl/x", 1, 2)
    c.publish("nl/x", b"mine", qos=2)
    msg = c.get()
    assert _sub_ids(msg) == [2] and msg.qos == 1  # (QoS 2 came only through the No Local one)
    c.expect_none()
    other = node.mqtt()
    other.publish("nl/x", b"theirs", qos=2)
    msg = c.get()
    assert sorted(_sub_ids(msg)) == [1, 2] and msg.qos == 2
    c.unsubscribe("nl/x")
    _subscribe(c, "nl/+", 1, 3, no_local=True)
    c.publish("nl/x", b"mine again", qos=1)  # every matching subscription says No Local
    c.expect_none()


def test_retain_as_published_if_any_subscription_asks(make_broker):
    node = make_broker(SINGLE)
    c = node.mqtt(uid("rap"))
    _subscribe(c, "rp/#", 1, rap=True)
    _subscribe(c, "rp/x", 1)
    node.mqtt().publish("rp/x", b"kept", qos=1, retain=True)
    msg = c.get()
    assert msg.retain
    c.expect_none()


def test_qos0_mqtt3_and_offline_sessions_get_one_copy(make_broker):
    node = make_broker(SINGLE)
    v3 = node.mqtt(uid("v3"), version=4)
    v3.subscribe("q0/#", 0)
    v3.subscribe("q0/+", 0)
    cid = node.offline_session("off", "q0/#")
    resumed = None
    pub = node.mqtt()
    pub.publish("q0/a", b"zero", qos=0)
    pub.publish("q0/a", b"one", qos=1)
    assert [m.payload for m in v3.get_many(2)] == [b"zero", b"one"]
    v3.expect_none()
    resumed = node.mqtt(cid, clean=False, properties=props("CONNECT", SessionExpiryInterval=300))
    assert [m.payload for m in resumed.get_many(2)] == [b"zero", b"one"]
    resumed.expect_none()


def test_shared_subscriptions_keep_their_own_copy(make_broker):
    node = make_broker(SINGLE)
    c = node.mqtt(uid("sh"))
    _subscribe(c, "sh/#", 1)
    _subscribe(c, "sh/x", 1)
    _subscribe(c, "$share/g/sh/x", 1)
    node.mqtt().publish("sh/x", b"x", qos=1)
    assert len(c.get_many(2)) == 2  # one for the plain ones, one for the group
    c.expect_none()


def test_changed_through_the_api(broker):
    # PUT /configs/global_zone and PUT /configs: applies to the next message
    c = broker.mqtt(uid("api"))
    _subscribe(c, "api/#", 1)
    _subscribe(c, "api/x", 1)
    try:
        zone = broker.ok("PUT", "/configs/global_zone",
                         json={"mqtt": {"overlapping_subscriptions": "single"}})
        assert zone["mqtt"]["overlapping_subscriptions"] == "single"
        broker.mqtt().publish("api/x", b"1", qos=1)
        c.get()
        c.expect_none()
        broker.ok("PUT", "/configs", json={"mqtt": {"overlapping_subscriptions": "per_subscription"}})
        assert broker.ok("GET", "/configs/global_zone")["mqtt"]["overlapping_subscriptions"] \
            == "per_subscription"
        broker.mqtt().publish("api/x", b"2", qos=1)
        assert len(c.get_many(2)) == 2
        bad = broker.ok("PUT", "/configs/global_zone", 400,
                        json={"mqtt": {"overlapping_subscriptions": "one"}})
        assert "overlapping_subscriptions" in bad["message"]
    finally:
        broker.ok("PUT", "/configs/global_zone",
                  json={"mqtt": {"overlapping_subscriptions": "per_subscription"}})


def test_env_variable_sets_it(tmp_path):
    env = {"EMQX_MQTT__OVERLAPPING_SUBSCRIPTIONS": "single"}
    assert load_config(env=env, data_dir=str(tmp_path)).mqtt.overlapping_subscriptions == "single"
    with pytest.raises(ValueError, match="mqtt.overlapping_subscriptions"):
        load_config(env={"EMQX_MQTT__OVERLAPPING_SUBSCRIPTIONS": "both"},
                    data_dir=str(tmp_path))
