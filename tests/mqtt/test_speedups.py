"""The compiled accelerator (emqpy/mqtt/_speedups.pyx) and its pure-Python originals agree.

Every function is run both ways on the same generated input: same results, same errors. The rest
of the suite runs with whichever is selected (CI runs it twice: compiled, and with
EMQPY_NO_EXTENSIONS=1).
"""
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st

from emqpy.mqtt import accel, frames, packets, properties
from emqpy.mqtt.packets import Connect, Publish, Will
from emqpy.mqtt.reason_codes import MQTTError

speedups = accel.speedups
needs_build = pytest.mark.skipif(speedups is None, reason="accelerator not built or switched off")


def test_selection_follows_the_environment_switch():
    """EMQPY_NO_EXTENSIONS=1 selects the pure-Python code; otherwise the compiled one if built.
    CI sets EMQPY_REQUIRE_EXTENSIONS=1 on its compiled run so that a failed build cannot pass
    as a second pure-Python run."""
    code = ("from emqpy.mqtt import frames, packets, properties\n"
            "print(frames.FrameReader.__module__, packets.parse_plain_publish.__module__,"
            " properties.scan_plain_publish_props.__module__, properties.decode_utf8.__module__,"
            " packets.decode_connect.__module__)")
    env = dict(os.environ, EMQPY_NO_EXTENSIONS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["emqpy.mqtt.frames", "emqpy.mqtt.packets", "emqpy.mqtt.properties",
                   "emqpy.mqtt.properties", "emqpy.mqtt.packets"]
    if os.environ.get("EMQPY_REQUIRE_EXTENSIONS") == "1":
        assert speedups is not None and not accel.NO_EXTENSIONS
    if speedups is not None:
        assert frames.FrameReader is speedups.FrameReader
        assert packets.parse_plain_publish is speedups.parse_plain_publish
        assert properties.scan_plain_publish_props is speedups.scan_plain_publish_props
        assert properties.decode_utf8 is speedups.decode_utf8
        assert properties.decode_binary is speedups.decode_binary
        assert packets.decode_connect is speedups.decode_connect
    else:
        assert frames.FrameReader is frames.FrameReaderPy


def _feed_all(cls, limit, chunks):
    r = cls(limit)
    out = []
    try:
        for chunk in chunks:
            out.append(r.feed(chunk))
    except MQTTError as e:
        out.append(("error", e.reason_code, str(e)))
    return out, r.buffered, (r.n_frames, r.n_other, r.n_qos1, r.n_qos2)


@needs_build
@settings(max_examples=1500, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=12), st.sampled_from([2, 5, 64, 4096, 1 << 28]))
def test_frame_reader_twins_agree(chunks, limit):
    assert _feed_all(speedups.FrameReader, limit, chunks) == \
        _feed_all(frames.FrameReaderPy, limit, chunks)


@needs_build
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), st.binary(max_size=300)), max_size=8),
       st.data())
def test_frame_reader_twins_agree_on_valid_streams_split_anywhere(pkts, data):
    stream = b"".join(packets.fixed_header(0x30 | flags, len(body)) + body
                      for flags, body in pkts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
    fast, slow = (_feed_all(cls, 1 << 20, chunks) for cls in
                  (speedups.FrameReader, frames.FrameReaderPy))
    assert fast == slow
    assert [f for batch in fast[0] for f in batch] == [(0x30 | f, b) for f, b in pkts]


_PROPS = st.lists(st.tuples(st.sampled_from([0x01, 0x02, 0x03, 0x08, 0x09, 0x0B, 0x23, 0x26]),
                            st.binary(max_size=6)), max_size=5)


@needs_build
@settings(max_examples=1500, deadline=None)
@given(_PROPS, st.binary(max_size=8), st.integers(0, 4))
def test_property_scan_twins_agree(parts, tail, pos):
    raw = b"".join(bytes((pid,)) + val for pid, val in parts)
    block = properties.encode_varint(len(raw)) + raw + tail
    assert speedups.scan_plain_publish_props(block, pos) == \
        properties.scan_plain_publish_props_py(block, pos)


_TOPICS = st.one_of(st.text(max_size=12), st.sampled_from(["a/b", "a/+", "#", "a\x00b", "", "/"]))


@needs_build
@settings(max_examples=1500, deadline=None)
@given(_TOPICS, st.binary(max_size=20), st.integers(0, 65535), _PROPS, st.booleans(),
       st.booleans(), st.booleans(), st.integers(1, 4), st.binary(max_size=4))
def test_publish_parse_twins_agree(topic, payload, pid, parts, qos1, v5, strict, levels, noise):
    raw = b"".join(bytes((p,)) + val for p, val in parts)
    tb = topic.encode("utf-8", "surrogatepass")
    body = len(tb).to_bytes(2, "big") + tb + (pid.to_bytes(2, "big") if qos1 else b"")
    if v5:
        body += properties.encode_varint(len(raw)) + raw
    body += payload
    for b in (body, body[:len(noise)] + noise, body[len(noise):]):
        got = speedups.parse_plain_publish(b, qos1, v5, strict, levels)
        assert got == packets.parse_plain_publish_py(b, qos1, v5, strict, levels)
        if got is not None and (got[4] or not qos1):  # and agree with the full decoder
            full = Publish.decode(2 if qos1 else 0, b, 5 if v5 else 4)
            assert (full.topic, full.payload, full.packet_id or 0) == (got[0], got[1], got[4])


def _outcome(fn, data, pos):
    try:
        return fn(data, pos)
    except MQTTError as e:
        return ("error", e.reason_code, str(e))


@needs_build
@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.binary(max_size=12),
                 st.text(max_size=8).map(lambda t: properties.encode_utf8(t) + b"!"),
                 st.binary(max_size=6).map(lambda b: len(b).to_bytes(2, "big") + b)),
       st.binary(max_size=3), st.integers(0, 5))
def test_string_field_twins_agree(field, prefix, pos):
    data = prefix + field
    for fast, slow in ((speedups.decode_utf8, properties.decode_utf8_py),
                       (speedups.decode_binary, properties.decode_binary_py)):
        assert _outcome(fast, data, pos) == _outcome(slow, data, pos)
    if len(prefix) <= 5:  # the field itself, where it starts
        assert _outcome(speedups.decode_utf8, data, len(prefix)) == \
            _outcome(properties.decode_utf8_py, data, len(prefix))


def _connect_outcome(fn, body):
    try:
        c = fn(0, body)
    except MQTTError as e:
        return ("error", e.reason_code, str(e))
    w = c.will
    return (c.proto_name, c.proto_ver, c.clean_start, c.keepalive, c.clientid, c.username,
            c.password, c.props, c.is_bridge,
            None if w is None else (w.topic, w.payload, w.qos, w.retain, w.props))


_FIELD = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                 max_size=8)  # a valid MQTT string
_USER_PROPS = st.lists(st.tuples(_FIELD, _FIELD), min_size=1, max_size=2)
_CONNECT_PROPS = st.fixed_dictionaries({}, optional={
    "session_expiry_interval": st.integers(0, 2**32 - 1),
    "receive_maximum": st.integers(1, 65535), "user_property": _USER_PROPS})
_WILL_PROPS = st.fixed_dictionaries({}, optional={
    "will_delay_interval": st.integers(0, 2**32 - 1), "user_property": _USER_PROPS})


@needs_build
@settings(max_examples=1500, deadline=None)
@given(_FIELD, st.sampled_from([3, 4, 5]), st.booleans(), st.integers(0, 65535),
       st.none() | st.tuples(_FIELD, st.binary(max_size=6), st.integers(0, 2),
                             st.booleans(), _WILL_PROPS),
       st.none() | _FIELD, st.none() | st.binary(max_size=6), _CONNECT_PROPS,
       st.integers(0, 60), st.binary(min_size=1, max_size=3), st.booleans())
def test_connect_decode_twins_agree(clientid, level, clean, keepalive, will, username, password,
                                    props, cut, noise, bridge):
    w = None
    if will is not None:
        w = Will(will[0], will[1], will[2], will[3], will[4] if level == 5 else None)
    c = Connect(clientid, level, clean, keepalive, w, username, password,
                props if level == 5 else None, is_bridge=bridge)
    raw = c.encode()
    i = 1
    while raw[i] & 0x80:  # (the remaining length)
        i += 1
    body = raw[i + 1:]
    cut = min(cut, len(body) - 1)
    flipped = body[:cut] + bytes([body[cut] ^ noise[0]]) + body[cut + 1:]
    variants = [body, body[:cut], body + noise, noise + body[len(noise):], flipped]
    for b in variants:
        fast = _connect_outcome(speedups.decode_connect, b)
        assert fast == _connect_outcome(packets.decode_connect_py, b)
    if level != 5 and password is not None and username is None:
        return  # (MQTT 3 forbids a password without a user name: an error both ways)
    assert _connect_outcome(speedups.decode_connect, body)[4:7] == (clientid, username, password)
    assert _connect_outcome(speedups.decode_connect, body)[1:9:7] == (level, bridge)
