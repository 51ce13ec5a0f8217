"""Malformed, truncated, oversized and protocol-violating input from a raw socket ends that
connection only; other clients carry on."""
import random

import pytest

from support import rawmqtt as R
from support.mqttclient import uid


@pytest.fixture
def bystander(broker, mqtt):
    """A client connected before the bad input; `check()` proves it still works afterwards."""
    t = uid("by")
    sub = mqtt(broker)
    sub.subscribe(t, 1)
    pub = mqtt(broker)

    def check():
        payload = uid("p").encode()
        pub.publish(t, payload, qos=1)
        assert sub.get().payload == payload

    return check


def _connected(raw, broker, version=5):
    r = raw(broker, version)
    assert r.connect(uid()).rc == 0
    return r


def _closed_with(r, broker, rc):
    got = r.expect_close()
    assert all(p.type == R.DISCONNECT for p in got), got
    if broker.is_emqpy and r.version == 5:
        assert [p.rc for p in got] == [rc], got
    return got


def test_reserved_packet_type_before_connect(broker, raw, bystander):
    r = raw(broker)
    r.send(b"\x00\x00")
    assert all(p.type == R.CONNACK for p in r.expect_close())
    bystander()


def test_remaining_length_over_four_bytes(broker, raw, bystander):
    r = raw(broker)
    r.send(b"\x10\xff\xff\xff\xff\x7f")
    assert all(p.type == R.CONNACK and p.rc >= 0x80 for p in r.expect_close())
    bystander()


def test_truncated_connect_then_hangup(broker, raw, bystander):
    r = raw(broker)
    r.send(R.connect_packet(uid())[:7])
    r.close()
    bystander()


def test_connect_with_garbage_body(broker, raw, bystander):
    r = raw(broker)
    r.send(R.packet(R.CONNECT, 0, b"\x00\x04MQTT\x05\x02\x00\x3c\xff\xff\xff"))
    assert all(p.type == R.CONNACK and p.rc >= 0x80 for p in r.expect_close())
    bystander()


def test_publish_qos3_is_malformed(broker, raw, bystander):
    r = _connected(raw, broker)
    r.send(R.packet(R.PUBLISH, 0x06, R.s("t") + R.u16(1) + R.props(None)))
    _closed_with(r, broker, 0x81)
    bystander()


def test_publish_topic_length_beyond_packet(broker, raw, bystander):
    r = _connected(raw, broker)
    r.send(R.packet(R.PUBLISH, 0, R.u16(50) + b"abc"))
    _closed_with(r, broker, 0x81)
    bystander()


def test_unknown_property_id(broker, raw, bystander):
    r = _connected(raw, broker)
    r.send(R.packet(R.PUBLISH, 0, R.s("t") + b"\x02\x7f\x00" + b"x"))
    _closed_with(r, broker, 0x81)
    bystander()


def test_property_length_beyond_packet(broker, raw, bystander):
    r = _connected(raw, broker)
    r.send(R.packet(R.PUBLISH, 0, R.s("t") + b"\x40\x01"))
    _closed_with(r, broker, 0x81)
    bystander()


def test_reserved_packet_type_after_connect(broker, raw, bystander):
    r = _connected(raw, broker)
    r.send(b"\x00\x00")
    _closed_with(r, broker, 0x81)
    bystander()


def test_client_sends_server_only_packet(broker, raw, bystander):
    r = _connected(raw, broker)
    r.send(b"\x20\x03\x00\x00\x00")  # CONNACK from a client
    _closed_with(r, broker, 0x82)
    bystander()


def test_subscribe_qos3_option_is_malformed(broker, raw, bystander):
    r = _connected(raw, broker)
    r.send(R.subscribe_packet(1, [(uid(), 3)]))
    _closed_with(r, broker, 0x81)
    bystander()


def test_v311_malformed_closes_silently(broker, raw, bystander):
    r = _connected(raw, broker, 4)
    r.send(R.packet(R.PUBLISH, 0x06, R.s("t") + R.u16(1)))
    assert r.expect_close() == []  # v3 has no DISCONNECT from the server
    bystander()


@pytest.mark.emqpy_only
def test_oversized_announced_length_v5(broker, raw, bystander):
    # Default mqtt.max_packet_size is 1MB: a 200 MB remaining length is refused up front
    # (EMQX emqx_frame frame_too_large -> DISCONNECT 0x95), without waiting for the body.
    r = _connected(raw, broker)
    r.send(b"\x30" + R.varint(200 * 1024 * 1024) + R.s("t"))
    assert [(p.type, p.rc) for p in r.expect_close()] == [(R.DISCONNECT, 0x95)]
    bystander()


@pytest.mark.emqpy_only
def test_oversized_connect(broker, raw, bystander):
    # EMQX: frame_too_large while connecting -> CONNACK 0x95 on v5 (emqx_channel:handle_frame_error)
    r = raw(broker)
    r.send(b"\x10" + R.varint(5 * 1024 * 1024) + b"\x00\x04MQTT\x05")
    got = r.expect_close()
    assert all(p.type == R.CONNACK and p.rc == 0x95 for p in got)
    bystander()


@pytest.mark.parametrize("seed", range(12))
def test_random_garbage_after_connect(broker, raw, bystander, seed):
    rnd = random.Random(seed)
    r = _connected(raw, broker, rnd.choice([4, 5]))
    r.send(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 300))))
    try:  # the broker may keep waiting for the rest of a "packet": hang up ourselves
        r.recv(0.3)
    except (R.Closed, TimeoutError):
        pass
    r.close()
    bystander()


def test_many_bad_connections_then_normal_traffic(broker, raw, bystander):
    for i in range(20):
        r = raw(broker)
        r.send(bytes([0x10, 0x05, 0x00, 0x04]) + b"MQ")
        r.close()
    bystander()
