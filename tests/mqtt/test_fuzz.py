"""Hypothesis fuzz of the decoder: any bytes either decode or raise MQTTError, nothing else."""
from hypothesis import given, settings, strategies as st

from emqpy.mqtt.frames import FrameReader
from emqpy.mqtt.packets import decode_packet
from emqpy.mqtt.reason_codes import MQTTError


@settings(max_examples=3000, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=300), st.sampled_from([3, 4, 5]))
def test_decode_packet_never_crashes(byte0, body, version):
    try:
        decode_packet(byte0, body, version)
    except MQTTError:
        pass


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20), st.sampled_from([4, 5]))
def test_stream_never_crashes(chunks, version):
    r = FrameReader(4096)
    try:
        for chunk in chunks:
            for byte0, body in r.feed(chunk):
                try:
                    decode_packet(byte0, body, version)
                except MQTTError:
                    pass
    except MQTTError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=1, max_size=200))
def test_mutated_valid_packets(noise):
    from emqpy.mqtt.packets import Connect, Publish, Will
    base = [Connect("c", 5, True, 10, Will("w", b"x", 1), "u", b"p", {"receive_maximum": 3}).encode(),
            Publish("a/b", b"payload", 1, packet_id=3, props={"content_type": "x"}).encode(5)]
    for pkt in base:
        data = bytearray(pkt)
        for i, b in enumerate(noise):
            data[(i * 7 + b) % len(data)] ^= b
        try:
            for byte0, body in FrameReader().feed(bytes(data)):
                decode_packet(byte0, body, 5)
        except MQTTError:
            pass


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26, 0x21]),
                          st.binary(max_size=6)), max_size=5))
def test_plain_publish_scan_agrees_with_decode(parts):
    """A block the fast scan accepts decodes cleanly and holds only forwarded properties."""
    from emqpy.mqtt import reason_codes as rc
    from emqpy.mqtt.properties import decode_properties, encode_varint, scan_plain_publish_props
    raw = b"".join(bytes((pid,)) + val for pid, val in parts)
    block = encode_varint(len(raw)) + raw + b"payload"
    end = scan_plain_publish_props(block, 0)
    if end < 0:
        return
    props, dend = decode_properties(block, 0, rc.PUBLISH)
    assert dend == end
    assert set(props) <= {"payload_format_indicator", "content_type", "response_topic",
                          "correlation_data", "user_property"}
