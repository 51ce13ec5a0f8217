"""Minimal MQTT 3.1/3.1.1/5.0 client-side encoding for the load tool.

Kept apart from emqpy's broker codec, which parses what a broker receives: only what a load
generator sends is encoded here (the variable byte integer is the codec's encode_varint); the
receive side is a frame-header scanner in client.py.
"""
from __future__ import annotations

import struct

from emqpy.mqtt.properties import encode_varint as varint

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14

PINGREQ_BYTES = b"\xc0\x00"
DISCONNECT_BYTES = b"\xe0\x00"
TS = struct.Struct(">Q")  # publish timestamp (µs since epoch) at the start of each payload
PID = struct.Struct(">H")

# Properties put on MQTT 5 PUBLISHes so that brokers pay for parsing/forwarding them:
# payload format indicator = 0 and one user property ("bench", "emqpy").
V5_PUBLISH_PROPS = b"\x01\x00" + b"\x26" + b"\x00\x05bench" + b"\x00\x05emqpy"


def _s(b: bytes | str) -> bytes:
    if isinstance(b, str):
        b = b.encode()
    return len(b).to_bytes(2, "big") + b


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def connect(client_id: str, version: int = 4, keepalive: int = 300, clean: bool = True,
            username: str | None = None, password: str | None = None) -> bytes:
    if version == 3:
        head = _s(b"MQIsdp") + b"\x03"
    elif version in (4, 5):
        head = _s(b"MQTT") + bytes([version])
    else:
        raise ValueError(f"unsupported MQTT version {version}")
    flags = (0x02 if clean else 0) | (0x80 if username is not None else 0) \
        | (0x40 if password is not None else 0)
    body = head + bytes([flags]) + keepalive.to_bytes(2, "big")
    if version == 5:
        body += b"\x00"  # no CONNECT properties
    body += _s(client_id)
    if username is not None:
        body += _s(username)
    if password is not None:
        body += _s(password)
    return _packet(0x10, body)


def subscribe(pid: int, topics: list[str], qos: int, version: int = 4) -> bytes:
    body = PID.pack(pid)
    if version == 5:
        body += b"\x00"
    for t in topics:
        body += _s(t) + bytes([qos])
    return _packet(0x82, body)


def ack(ptype: int, pid: int) -> bytes:
    """PUBACK/PUBREC/PUBCOMP (flags 0) or PUBREL (flags 2); reason 'success' left implicit."""
    return bytes([(ptype << 4) | (2 if ptype == PUBREL else 0), 2]) + PID.pack(pid)


class PublishTemplate:
    """One pre-encoded PUBLISH whose packet id and timestamp are patched in place."""

    __slots__ = ("buf", "pid_off", "ts_off")

    def __init__(self, topic: str, size: int, qos: int = 0, version: int = 4,
                 retain: bool = False, payload: bytes | None = None):
        if payload is None:
            payload = bytes(8) + b"x" * (size - 8) if size >= 8 else b"x" * size
        tb = _s(topic)
        var = tb + (b"\x00\x01" if qos else b"")
        if version == 5:
            var += varint(len(V5_PUBLISH_PROPS)) + V5_PUBLISH_PROPS
        first = 0x30 | (qos << 1) | (1 if retain else 0)
        head = bytes([first]) + varint(len(var) + len(payload))
        self.buf = bytearray(head + var + payload)
        self.pid_off = len(head) + len(tb) if qos else -1
        # -1: payload too small to carry a timestamp, so no latency for it
        self.ts_off = len(head) + len(var) if len(payload) >= 8 and size >= 8 else -1


class PublishChunk:
    """Many QoS 0 PUBLISHes (cycling over topics) concatenated into one buffer, written with one
    call; only the timestamps are refreshed per write."""

    __slots__ = ("buf", "ts_offs", "ends", "count")

    def __init__(self, topics: list[str], size: int, version: int = 4, retain: bool = False,
                 min_bytes: int = 16384, payload: bytes | None = None):
        tmpls = [PublishTemplate(t, size, 0, version, retain, payload) for t in topics]
        one_cycle = sum(len(t.buf) for t in tmpls)
        cycles = max(1, -(-min_bytes // one_cycle))
        buf = bytearray()
        self.ts_offs, self.ends = [], []
        for _ in range(cycles):
            for t in tmpls:
                if t.ts_off >= 0:
                    self.ts_offs.append(len(buf) + t.ts_off)
                buf += t.buf
                self.ends.append(len(buf))
        self.buf = buf
        self.count = len(self.ends)

    def stamped(self, now_us: int, n: int | None = None) -> bytes:
        """The chunk (or its first n messages) with the current time in every payload."""
        pack = TS.pack_into
        buf = self.buf
        for off in self.ts_offs:
            pack(buf, off, now_us)
        if n is None or n >= self.count:
            return bytes(buf)
        return bytes(buf[: self.ends[n - 1]])
