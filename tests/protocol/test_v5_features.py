"""MQTT 5 features: topic alias, message expiry, maximum packet size, keep alive, pass-through
properties, server DISCONNECT, idle timeout."""
import time

import pytest

from support import rawmqtt as R
from support.mqttclient import props, uid


def test_inbound_topic_alias(broker, raw, mqtt):
    t = uid("alias")
    sub = mqtt(broker)
    sub.subscribe(t, 1)
    r = raw(broker)
    assert r.connect(uid()).props.get(R.TOPIC_ALIAS_MAXIMUM, 0) >= 1
    r.send(R.publish_packet(t, b"1", qos=1, pid=1, properties={R.TOPIC_ALIAS: 1}))
    r.expect(R.PUBACK)
    r.send(R.publish_packet("", b"2", qos=1, pid=2, properties={R.TOPIC_ALIAS: 1}))
    r.expect(R.PUBACK)
    assert [(m.topic, m.payload) for m in sub.get_many(2)] == [(t, b"1"), (t, b"2")]
    # re-mapping an alias to a new topic is allowed
    t2 = uid("alias2")
    sub.subscribe(t2, 1)
    r.send(R.publish_packet(t2, b"3", qos=1, pid=3, properties={R.TOPIC_ALIAS: 1}))
    r.send(R.publish_packet("", b"4", qos=1, pid=4, properties={R.TOPIC_ALIAS: 1}))
    assert [(m.topic, m.payload) for m in sub.get_many(2)] == [(t2, b"3"), (t2, b"4")]


def test_topic_alias_zero_disconnects_0x94(broker, raw):
    r = raw(broker)
    r.connect(uid())
    r.send(R.publish_packet(uid(), b"x", properties={R.TOPIC_ALIAS: 0}))
    got = r.expect_close()
    assert all(p.type == R.DISCONNECT and p.rc >= 0x80 for p in got)
    if broker.is_emqpy:  # EMQX emqx_packet:check_pub_props; Mosquitto says 0x81
        assert [p.rc for p in got] == [0x94]


def test_topic_alias_above_maximum_disconnects_0x94(broker, raw):
    r = raw(broker)
    maximum = r.connect(uid()).props.get(R.TOPIC_ALIAS_MAXIMUM, 0)
    if maximum >= 65535:
        pytest.skip("alias maximum is 65535: no larger alias can be encoded")
    r.send(R.publish_packet(uid(), b"x", properties={R.TOPIC_ALIAS: maximum + 1}))
    assert [(p.type, p.rc) for p in r.expect_close()] == [(R.DISCONNECT, 0x94)]


@pytest.mark.emqpy_only
def test_topic_alias_above_configured_maximum(make_broker, raw):
    b = make_broker({"mqtt": {"max_topic_alias": 2}})
    r = raw(b)
    assert r.connect(uid()).props[R.TOPIC_ALIAS_MAXIMUM] == 2
    r.send(R.publish_packet(uid(), b"x", properties={R.TOPIC_ALIAS: 3}))
    assert [(p.type, p.rc) for p in r.expect_close()] == [(R.DISCONNECT, 0x94)]


def test_unknown_topic_alias_is_protocol_error(broker, raw):
    r = raw(broker)
    r.connect(uid())
    r.send(R.publish_packet("", b"x", properties={R.TOPIC_ALIAS: 1}))
    got = r.expect_close()
    assert all(p.type == R.DISCONNECT and p.rc >= 0x80 for p in got)
    if broker.is_emqpy:
        assert [p.rc for p in got] == [0x82]


def test_outbound_topic_alias_respects_client_maximum(broker, raw, mqtt):
    t = uid("oalias")
    r = raw(broker)
    r.connect(uid(), properties={R.TOPIC_ALIAS_MAXIMUM: 2})
    r.send(R.subscribe_packet(1, [(f"{t}/+", 0)]))
    r.expect(R.SUBACK)
    pub = mqtt(broker)
    aliases: dict[int, str] = {}
    sent = [f"{t}/{i % 3}" for i in range(6)]
    for topic in sent:
        pub.publish(topic, b"x", qos=1)
    seen = []
    for _ in sent:
        p = r.expect(R.PUBLISH)
        alias = p.props.get(R.TOPIC_ALIAS)
        if alias is not None:
            assert 1 <= alias <= 2
            if p.topic:
                aliases[alias] = p.topic
            else:
                assert alias in aliases, "alias used before it was established"
        else:
            assert p.topic
        seen.append(p.topic or aliases[alias])
    assert seen == sent


def test_no_outbound_alias_without_client_maximum(broker, raw, mqtt):
    t = uid("noalias")
    r = raw(broker)
    r.connect(uid())
    r.send(R.subscribe_packet(1, [(t, 0)]))
    r.expect(R.SUBACK)
    pub = mqtt(broker)
    for _ in range(3):
        pub.publish(t, b"x", qos=1)
    for _ in range(3):
        p = r.expect(R.PUBLISH)
        assert p.topic == t and R.TOPIC_ALIAS not in p.props


def test_properties_passed_through_unchanged(broker, mqtt):
    t = uid("pp")
    sub = mqtt(broker)
    sub.subscribe(t, 1)
    p = props(ResponseTopic="reply/here", CorrelationData=b"\x00\xffcorr",
              UserProperty=[("a", "1"), ("b", "2"), ("a", "3")], ContentType="application/json",
              PayloadFormatIndicator=1)
    mqtt(broker).publish(t, b'{"k": 1}', qos=1, properties=p)
    got = sub.get().properties
    assert got.ResponseTopic == "reply/here"
    assert got.CorrelationData == b"\x00\xffcorr"
    assert got.UserProperty == [("a", "1"), ("b", "2"), ("a", "3")]
    assert got.ContentType == "application/json"
    assert got.PayloadFormatIndicator == 1
    assert not hasattr(got, "MessageExpiryInterval")


def test_v5_properties_dropped_for_v311_subscriber(broker, raw, mqtt):
    t = uid("pp")
    r = raw(broker, 4)
    r.connect(uid())
    r.send(R.subscribe_packet(1, [(t, 0)], version=4))
    r.expect(R.SUBACK)
    p = props(UserProperty=[("a", "1")], ContentType="c", MessageExpiryInterval=60)
    mqtt(broker).publish(t, b"x", qos=1, properties=p)
    # a v3.1.1 PUBLISH has no property block: exactly topic + payload
    assert r.expect(R.PUBLISH).raw() == R.publish_packet(t, b"x", version=4)


def test_message_expiry_forwarded_to_online_subscriber(broker, mqtt):
    t = uid("exp")
    sub = mqtt(broker)
    sub.subscribe(t, 1)
    mqtt(broker).publish(t, b"x", qos=1, properties=props(MessageExpiryInterval=30))
    assert 0 < sub.get().properties.MessageExpiryInterval <= 30


def test_expired_messages_dropped_from_offline_queue(broker, mqtt):
    t, cid = uid("exp"), uid("c")
    cp = props("CONNECT", SessionExpiryInterval=60)
    c = mqtt(broker, cid, clean_start=False, properties=cp)
    c.subscribe(t, 1)
    c.disconnect()
    pub = mqtt(broker)
    pub.publish(t, b"short", qos=1, properties=props(MessageExpiryInterval=1))
    pub.publish(t, b"long", qos=1, properties=props(MessageExpiryInterval=100))
    time.sleep(2.2)  # past the 1 s expiry, while the session is offline
    c2 = mqtt(broker, cid, clean_start=False, properties=cp)
    m = c2.get()
    assert m.payload == b"long"
    assert m.properties.MessageExpiryInterval < 100  # reduced by the time spent queued
    c2.expect_none(0.3)
    c2.disconnect(properties=props("DISCONNECT", SessionExpiryInterval=0))


def test_client_maximum_packet_size_drops_oversized(broker, raw, mqtt):
    t = uid("mps")
    r = raw(broker)
    r.connect(uid(), properties={R.MAXIMUM_PACKET_SIZE: 200})
    r.send(R.subscribe_packet(1, [(t, 1)]))
    r.expect(R.SUBACK)
    pub = mqtt(broker)
    pub.publish(t, b"x" * 500, qos=1)  # too big for this client: dropped, not sent
    pub.publish(t, b"small", qos=1)
    p = r.expect(R.PUBLISH)
    assert p.payload == b"small" and len(p.raw()) <= 200
    r.send(R.ack_packet(R.PUBACK, p.pid))


def test_keepalive_timeout_closes(broker, raw):
    r = raw(broker)
    r.connect(uid(), keepalive=1)
    got = r.expect_close()  # after 1.5 x keep alive without any packet
    if broker.is_emqpy:
        assert [(p.type, p.rc) for p in got] == [(R.DISCONNECT, 0x8D)]


def test_keepalive_kept_by_pings(broker, raw):
    r = raw(broker, 4)
    r.connect(uid(), keepalive=1)
    for _ in range(4):  # 2 s of pinging every 0.5 s: longer than 1.5 x keep alive
        time.sleep(0.5)
        r.send(R.PINGREQ_PACKET)
        assert r.expect(R.PINGRESP).raw() == b"\xd0\x00"


@pytest.mark.emqpy_only
def test_server_keep_alive_overrides_client(make_broker, raw):
    b = make_broker({"mqtt": {"server_keepalive": 1}})
    r = raw(b)
    ack = r.connect(uid(), keepalive=600)
    assert ack.props[R.SERVER_KEEP_ALIVE] == 1
    assert [(p.type, p.rc) for p in r.expect_close()] == [(R.DISCONNECT, 0x8D)]


@pytest.mark.emqpy_only
def test_keepalive_multiplier(make_broker, raw):
    # keepalive 1 s x multiplier 3 -> the client survives a 2 s silence.
    b = make_broker({"mqtt": {"keepalive_multiplier": 3}})
    r = raw(b, 4)
    r.connect(uid(), keepalive=1)
    time.sleep(2.0)
    r.send(R.PINGREQ_PACKET)
    assert r.expect(R.PINGRESP)


@pytest.mark.emqpy_only
def test_idle_timeout_closes_socket_without_connect(make_broker, raw, mqtt):
    b = make_broker({"mqtt": {"idle_timeout": "1s"}})
    r = raw(b)
    assert r.expect_close() == []
    mqtt(b)  # the listener is still fine


@pytest.mark.emqpy_only
def test_incoming_packet_over_max_packet_size(make_broker, raw, mqtt):
    b = make_broker({"mqtt": {"max_packet_size": "1KB"}})
    r = raw(b)
    r.connect(uid())
    r.send(R.publish_packet(uid(), b"x" * 2000, qos=1, pid=1))
    assert [(p.type, p.rc) for p in r.expect_close()] == [(R.DISCONNECT, 0x95)]
    r3 = raw(b, 4)
    r3.connect(uid())
    r3.send(R.publish_packet(uid(), b"x" * 2000, qos=1, pid=1, version=4))
    assert r3.expect_close() == []
    ok = mqtt(b)
    ok.subscribe("fine", 1)
    mqtt(b).publish("fine", b"x" * 500, qos=1)
    assert len(ok.get().payload) == 500


def test_client_disconnect_with_reason_and_props(broker, raw):
    r = raw(broker)
    r.connect(uid())
    r.send(R.disconnect_packet(0x80, {R.REASON_STRING: "bye", R.USER_PROPERTY: ("k", "v")}))
    assert r.expect_close() == []


@pytest.mark.emqpy_only
def test_outbound_alias_assignment_like_emqx(broker, raw, mqtt):
    # EMQX emqx_channel:packing_alias: a new topic gets the next free alias (1, 2, ...) and is
    # sent with its name once; later PUBLISHes carry an empty topic and the alias; topics
    # beyond the client's maximum go out without an alias.
    t = uid("ea")
    r = raw(broker)
    r.connect(uid(), properties={R.TOPIC_ALIAS_MAXIMUM: 1})
    r.send(R.subscribe_packet(1, [(f"{t}/+", 0)]))
    r.expect(R.SUBACK)
    pub = mqtt(broker)
    for topic in (f"{t}/a", f"{t}/a", f"{t}/b", f"{t}/a"):
        pub.publish(topic, b"x", qos=1)
    got = [r.expect(R.PUBLISH) for _ in range(4)]
    assert [(p.topic, p.props.get(R.TOPIC_ALIAS)) for p in got] == [
        (f"{t}/a", 1), ("", 1), (f"{t}/b", None), ("", 1)]


def test_inbound_alias_not_kept_across_connections(broker, raw):
    cid = uid("c")
    r = raw(broker)
    r.connect(cid, clean=False, properties={R.SESSION_EXPIRY: 30})
    r.send(R.publish_packet(uid(), b"x", qos=1, pid=1, properties={R.TOPIC_ALIAS: 1}))
    r.expect(R.PUBACK)
    r.close()
    r2 = raw(broker)
    r2.connect(cid, clean=True)
    r2.send(R.publish_packet("", b"x", qos=1, pid=2, properties={R.TOPIC_ALIAS: 1}))
    got = r2.expect_close()  # MQTT 5 3.3.2.3.4: aliases live for one network connection
    assert all(p.type == R.DISCONNECT and p.rc >= 0x80 for p in got)
