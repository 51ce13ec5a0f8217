"""Round trips for every packet type and property, and byte-exact checks of known encodings."""
import pytest

from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.frames import FrameReader
from emqpy.mqtt.packets import (
    Auth, Connack, Connect, Disconnect, Pingreq, Pingresp, Puback, Pubcomp, Publish, Pubrec,
    Pubrel, Suback, Subscribe, SubOpts, Unsuback, Unsubscribe, Will, decode_packet,
    split_publish,
)
from emqpy.mqtt.properties import PROPERTIES, decode_properties, encode_properties
from emqpy.mqtt.reason_codes import MQTTError

ALL_PROPS = {
    "payload_format_indicator": 1, "message_expiry_interval": 3600, "content_type": "text/plain",
    "response_topic": "resp/x", "correlation_data": b"\x00\x01corr",
    "subscription_identifier": [7, 268435455], "session_expiry_interval": 0xFFFFFFFF,
    "assigned_client_identifier": "abc", "server_keep_alive": 120,
    "authentication_method": "SCRAM-SHA-256", "authentication_data": b"\xff\x00",
    "request_problem_information": 0, "will_delay_interval": 5,
    "request_response_information": 1, "response_information": "rr", "server_reference": "srv",
    "reason_string": "because", "receive_maximum": 10, "topic_alias_maximum": 20,
    "topic_alias": 3, "maximum_qos": 1, "retain_available": 0,
    "user_property": [("k", "v"), ("k", "v2"), ("ü", "日本")], "maximum_packet_size": 1024,
    "wildcard_subscription_available": 1, "subscription_identifier_available": 1,
    "shared_subscription_available": 0,
}


def roundtrip(pkt, version):
    data = pkt.encode(version)
    frames = FrameReader(1 << 28).feed(data)
    assert len(frames) == 1
    byte0, body = frames[0]
    return decode_packet(byte0, body, version)


def test_every_property_roundtrips():
    assert len(ALL_PROPS) == len(PROPERTIES)
    for pid, (name, _typ, allowed) in PROPERTIES.items():
        for ptype in allowed:
            value = ALL_PROPS[name]
            if name == "subscription_identifier" and ptype == rc.SUBSCRIBE:
                value = [9]  # at most one in a SUBSCRIBE
            block = encode_properties({name: value})
            props, end = decode_properties(block, 0, ptype)
            assert end == len(block)
            expected = value
            if name == "subscription_identifier":
                assert props[name] == list(expected)
            else:
                assert props[name] == expected


def test_property_not_allowed_in_packet_is_protocol_error():
    block = encode_properties({"topic_alias": 1})
    with pytest.raises(MQTTError) as e:
        decode_properties(block, 0, rc.CONNECT)
    assert e.value.reason_code == rc.PROTOCOL_ERROR


def test_duplicate_property_is_protocol_error():
    one = encode_properties({"content_type": "a"})[1:]
    block = bytes([len(one) * 2]) + one + one
    with pytest.raises(MQTTError) as e:
        decode_properties(block, 0, rc.PUBLISH)
    assert e.value.reason_code == rc.PROTOCOL_ERROR


@pytest.mark.parametrize("version", [3, 4, 5])
def test_connect_roundtrip(version):
    will = Will("w/t", b"bye", 2, True,
                {"will_delay_interval": 3, "content_type": "x"} if version == 5 else {})
    pkt = Connect("cid", version, False, 30, will, "user", b"pw",
                  {"session_expiry_interval": 60, "receive_maximum": 5} if version == 5 else {})
    got = roundtrip(pkt, version)
    assert (got.clientid, got.proto_ver, got.clean_start, got.keepalive) == ("cid", version, False, 30)
    assert got.proto_name == ("MQIsdp" if version == 3 else "MQTT")
    assert (got.will.topic, got.will.payload, got.will.qos, got.will.retain) == ("w/t", b"bye", 2, True)
    assert got.will.props == will.props
    assert (got.username, got.password) == ("user", b"pw")
    assert got.props == pkt.props


def test_connect_known_bytes():
    # MQTT 3.1.1 CONNECT, clean session, keepalive 60, client id "a"
    data = bytes.fromhex("100d00044d5154540402003c000161")
    (byte0, body), = FrameReader().feed(data)
    pkt = decode_packet(byte0, body, 0)
    assert (pkt.clientid, pkt.keepalive, pkt.clean_start, pkt.proto_ver) == ("a", 60, True, 4)
    assert Connect("a", 4, True, 60).encode() == data


def test_connect_bridge_bit():
    """0x80 on the protocol level: a bridge (Mosquitto's try_private, EMQX's is_bridge); the
    level is the rest of the byte."""
    data = bytes.fromhex("100d00044d5154548402003c000161")
    (byte0, body), = FrameReader().feed(data)
    pkt = decode_packet(byte0, body, 0)
    assert (pkt.proto_ver, pkt.is_bridge, pkt.clientid) == (4, True, "a")
    assert Connect("a", 4, True, 60, is_bridge=True).encode() == data
    assert Connect.decode(0, bytes.fromhex("00064d5149736470830200000000")).is_bridge is True
    assert Connect.decode(0, body.replace(b"\x84", b"\x04", 1)).is_bridge is False
    with pytest.raises(MQTTError) as e:  # a bridge of an unknown level is still unknown
        Connect.decode(0, bytes.fromhex("00044d5154548602003c000161"))
    assert e.value.reason_code == rc.UNSUPPORTED_PROTOCOL_VERSION


def test_connect_bad_level_and_name():
    body = bytes.fromhex("00044d5154540602003c000161")
    with pytest.raises(MQTTError) as e:
        Connect.decode(0, body)
    assert e.value.reason_code == rc.UNSUPPORTED_PROTOCOL_VERSION
    body = bytes.fromhex("00044d5154580402003c000161")
    with pytest.raises(MQTTError) as e:
        Connect.decode(0, body)
    assert e.value.reason_code == rc.PROTOCOL_ERROR
    with pytest.raises(MQTTError):  # reserved flag
        Connect.decode(0, bytes.fromhex("00044d5154540403003c000161"))


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_roundtrip(version, qos):
    props = {"message_expiry_interval": 9, "user_property": [("a", "b")],
             "correlation_data": b"c"} if version == 5 else None
    pkt = Publish("t/ü", b"\x00payload", qos, True, qos > 0, 42 if qos else None, props)
    got = roundtrip(pkt, version)
    assert (got.topic, got.payload, got.qos, got.retain, got.dup) == ("t/ü", b"\x00payload", qos, True, qos > 0)
    assert got.packet_id == (42 if qos else None)
    assert (got.props or None) == props


def test_publish_known_bytes_and_split():
    assert Publish("a/b", b"hi", 0).encode(4) == bytes.fromhex("3007") + b"\x00\x03a/bhi"
    prefix, suffix = split_publish(b"a/b", b"hi", 1, False, None)
    assert prefix + (5).to_bytes(2, "big") + suffix == Publish("a/b", b"hi", 1, packet_id=5).encode(4)


def test_publish_invalid():
    with pytest.raises(MQTTError):
        Publish.decode(0b0110, b"\x00\x01a\x00\x01", 4)  # QoS 3
    with pytest.raises(MQTTError) as e:
        Publish.decode(0b0010, b"\x00\x01a\x00\x00", 4)  # packet id 0
    assert e.value.reason_code == rc.PROTOCOL_ERROR
    with pytest.raises(MQTTError):
        Publish.decode(0b1000, b"\x00\x01a", 4)  # DUP on QoS 0


@pytest.mark.parametrize("cls", [Puback, Pubrec, Pubrel, Pubcomp])
@pytest.mark.parametrize("version", [4, 5])
def test_acks_roundtrip(cls, version):
    got = roundtrip(cls(7), version)
    assert type(got) is cls and got.packet_id == 7 and got.reason_code == 0
    if version == 5:
        got = roundtrip(cls(8, 0x92, {"reason_string": "nope"}), 5)
        assert (got.packet_id, got.reason_code, got.props) == (8, 0x92, {"reason_string": "nope"})
    assert cls(7).encode(version) == bytes([(cls.TYPE << 4) | cls.FLAGS, 2, 0, 7])


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_family_roundtrip(version):
    opts = SubOpts(2, True, True, 2) if version == 5 else SubOpts(1)
    props = {"subscription_identifier": [5], "user_property": [("a", "b")]} if version == 5 else {}
    got = roundtrip(Subscribe(3, [("a/+", opts), ("$share/g/b/#", SubOpts(0))], props), version)
    assert got.packet_id == 3 and [t for t, _ in got.topics] == ["a/+", "$share/g/b/#"]
    o = got.topics[0][1]
    assert (o.qos, o.no_local, o.retain_as_published, o.retain_handling) == (
        opts.qos, opts.no_local, opts.retain_as_published, opts.retain_handling)
    assert got.props == props
    got = roundtrip(Suback(3, [0, 1, 0x80]), version)
    assert (got.packet_id, got.reason_codes) == (3, [0, 1, 0x80])
    got = roundtrip(Unsubscribe(4, ["a", "b/#"]), version)
    assert (got.packet_id, got.topics) == (4, ["a", "b/#"])
    got = roundtrip(Unsuback(4, [0, 0x11]), version)
    assert got.packet_id == 4
    if version == 5:
        assert got.reason_codes == [0, 0x11]


def test_empty_subscribe_is_protocol_error():
    with pytest.raises(MQTTError) as e:
        Subscribe.decode(2, b"\x00\x01", 4)
    assert e.value.reason_code == rc.PROTOCOL_ERROR


@pytest.mark.parametrize("version", [4, 5])
def test_connack_ping_disconnect_auth(version):
    props = {"assigned_client_identifier": "x", "topic_alias_maximum": 10} if version == 5 else {}
    got = roundtrip(Connack(True, 0, props), version)
    assert got.session_present is True and got.reason_code == 0 and got.props == props
    assert type(roundtrip(Pingreq(), version)) is Pingreq
    assert type(roundtrip(Pingresp(), version)) is Pingresp
    assert Pingreq().encode() == b"\xc0\x00"
    got = roundtrip(Disconnect(0x04 if version == 5 else 0), version)
    assert got.reason_code == (0x04 if version == 5 else 0)
    if version == 5:
        got = roundtrip(Auth(0x18, {"authentication_method": "m", "authentication_data": b"d"}), 5)
        assert got.reason_code == 0x18 and got.props["authentication_method"] == "m"


def test_frame_reader_splits_and_limits():
    data = Publish("a", b"x" * 200, 0).encode(4) + Pingreq().encode()
    r = FrameReader(1024)
    frames = []
    for i in range(len(data)):  # one byte at a time
        frames += r.feed(data[i:i + 1])
    assert [f[0] for f in frames] == [0x30, 0xC0]
    assert r.buffered == 0
    r = FrameReader(100)
    with pytest.raises(MQTTError) as e:
        r.feed(data[:3])  # only the header: refused before the body arrives
    assert e.value.reason_code == rc.PACKET_TOO_LARGE
    with pytest.raises(MQTTError) as e:
        FrameReader().feed(b"\x30\xff\xff\xff\xff\x01")
    assert e.value.reason_code == rc.MALFORMED_PACKET


def test_frame_reader_counts_what_it_returns():
    # the connection's recv_pkt / recv_msg.qos1 / .qos2 counters (and non-PUBLISH packets)
    stream = (Publish("a", b"0", 0).encode(4) + Publish("a", b"1", 1, packet_id=1).encode(4) +
              Publish("a", b"2", 2, dup=True, packet_id=2).encode(4) + Pingreq().encode() +
              Publish("a", b"r", 0, retain=True).encode(4))
    r = FrameReader()
    counts = []
    for i in range(len(stream)):  # split anywhere: a frame counts once it is complete
        r.feed(stream[i:i + 1])
        counts.append((r.n_frames, r.n_other, r.n_qos1, r.n_qos2))
    assert counts[-1] == (5, 1, 1, 1)
    assert counts == sorted(counts)
