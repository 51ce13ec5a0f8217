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
