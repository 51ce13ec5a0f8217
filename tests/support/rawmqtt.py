"""Hand-rolled MQTT packet encoding/decoding over a plain socket.

Used for byte-exact checks and for sending malformed or protocol-violating input. Written from the
MQTT 3.1.1 / 5.0 specs on purpose: it must not share code with the codec under test (emqpy.mqtt).
"""
from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

# Packet types
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)

# v5 property ids -> wire type
_PROP_TYPES = {
    0x01: "byte", 0x02: "u32", 0x03: "str", 0x08: "str", 0x09: "bin", 0x0B: "varint",
    0x11: "u32", 0x12: "str", 0x13: "u16", 0x15: "str", 0x16: "bin", 0x17: "byte",
    0x18: "u32", 0x19: "byte", 0x1A: "str", 0x1C: "str", 0x1F: "str", 0x21: "u16",
    0x22: "u16", 0x23: "u16", 0x24: "byte", 0x25: "byte", 0x26: "pair", 0x27: "u32",
    0x28: "byte", 0x29: "byte", 0x2A: "byte",
}
PAYLOAD_FORMAT, MESSAGE_EXPIRY, CONTENT_TYPE, RESPONSE_TOPIC, CORRELATION_DATA = 1, 2, 3, 8, 9
SUBSCRIPTION_ID, SESSION_EXPIRY, ASSIGNED_CLIENT_ID, SERVER_KEEP_ALIVE = 0x0B, 0x11, 0x12, 0x13
REQUEST_RESPONSE_INFO, RESPONSE_INFO, REASON_STRING, RECEIVE_MAXIMUM = 0x19, 0x1A, 0x1F, 0x21
TOPIC_ALIAS_MAXIMUM, TOPIC_ALIAS, MAXIMUM_QOS, RETAIN_AVAILABLE, USER_PROPERTY = 0x22, 0x23, 0x24, 0x25, 0x26
MAXIMUM_PACKET_SIZE, WILDCARD_AVAILABLE, SUB_ID_AVAILABLE, SHARED_AVAILABLE = 0x27, 0x28, 0x29, 0x2A
WILL_DELAY = 0x18


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def u16(n: int) -> bytes:
    return struct.pack("!H", n)


def s(text: str | bytes) -> bytes:
    """Length-prefixed UTF-8 string (bytes are sent as-is, to allow invalid UTF-8)."""
    raw = text.encode() if isinstance(text, str) else text
    return u16(len(raw)) + raw


def props(p: dict | list | None) -> bytes:
    """Encode v5 properties; `p` is {id: value} or a list of (id, value) (for repeats)."""
    if p is None:
        return varint(0)
    items = p.items() if isinstance(p, dict) else p
    body = bytearray()
    for pid, val in items:
        body += varint(pid)
        kind = _PROP_TYPES[pid]
        if kind == "byte":
            body.append(val)
        elif kind == "u16":
            body += u16(val)
        elif kind == "u32":
            body += struct.pack("!I", val)
        elif kind == "varint":
            body += varint(val)
        elif kind in ("str", "bin"):
            body += s(val)
        elif kind == "pair":
            body += s(val[0]) + s(val[1])
    return varint(len(body)) + bytes(body)


def packet(ptype: int, flags: int, body: bytes) -> bytes:
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


def connect_packet(client_id: str | bytes = "", *, version: int = 5, clean: bool = True,
                   keepalive: int = 60, properties=None, will: dict | None = None,
                   username: str | None = None, password: bytes | None = None,
                   proto_name: str | None = None) -> bytes:
    """will = {"topic", "payload", "qos", "retain", "properties"}."""
    name = proto_name or ("MQIsdp" if version == 3 else "MQTT")
    flags = 0x02 if clean else 0
    if will:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = s(name) + bytes([version, flags]) + u16(keepalive)
    if version == 5:
        body += props(properties)
    body += s(client_id)
    if will:
        if version == 5:
            body += props(will.get("properties"))
        body += s(will["topic"]) + s(will.get("payload", b""))
    if username is not None:
        body += s(username)
    if password is not None:
        body += s(password)
    return packet(CONNECT, 0, body)


def publish_packet(topic: str | bytes, payload: bytes = b"", *, qos: int = 0, pid: int = 0,
                   retain: bool = False, dup: bool = False, properties=None,
                   version: int = 5) -> bytes:
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = s(topic)
    if qos:
        body += u16(pid)
    if version == 5:
        body += props(properties)
    return packet(PUBLISH, flags, body + payload)


def subscribe_packet(pid: int, filters: list[tuple[str, int]], *, properties=None,
                     version: int = 5) -> bytes:
    """filters: (topic filter, options byte: QoS | NL<<2 | RAP<<3 | RH<<4)."""
    body = u16(pid) + (props(properties) if version == 5 else b"")
    for f, opts in filters:
        body += s(f) + bytes([opts])
    return packet(SUBSCRIBE, 0x02, body)


def unsubscribe_packet(pid: int, filters: list[str], *, version: int = 5) -> bytes:
    body = u16(pid) + (props(None) if version == 5 else b"")
    for f in filters:
        body += s(f)
    return packet(UNSUBSCRIBE, 0x02, body)


def ack_packet(ptype: int, pid: int, rc: int | None = None, *, version: int = 5) -> bytes:
    """PUBACK/PUBREC/PUBREL/PUBCOMP (PUBREL gets its mandatory 0x02 flags)."""
    body = u16(pid)
    if version == 5 and rc is not None:
        body += bytes([rc])
    return packet(ptype, 0x02 if ptype == PUBREL else 0, body)


def disconnect_packet(rc: int = 0, properties=None, *, version: int = 5) -> bytes:
    if version != 5:
        return packet(DISCONNECT, 0, b"")
    return packet(DISCONNECT, 0, bytes([rc]) + props(properties))


PINGREQ_PACKET = bytes([0xC0, 0x00])


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    mult, val = 1, 0
    while True:
        b = buf[i]
        i += 1
        val += (b & 0x7F) * mult
        if not b & 0x80:
            return val, i
        mult *= 128


def parse_props(buf: bytes, i: int) -> tuple[dict, int]:
    """Decode a v5 property block; user properties become a list under USER_PROPERTY."""
    n, i = _read_varint(buf, i)
    end = i + n
    out: dict = {}
    while i < end:
        pid, i = _read_varint(buf, i)
        kind = _PROP_TYPES[pid]
        if kind == "byte":
            val, i = buf[i], i + 1
        elif kind == "u16":
            val, i = struct.unpack_from("!H", buf, i)[0], i + 2
        elif kind == "u32":
            val, i = struct.unpack_from("!I", buf, i)[0], i + 4
        elif kind == "varint":
            val, i = _read_varint(buf, i)
        elif kind in ("str", "bin"):
            ln = struct.unpack_from("!H", buf, i)[0]
            val = buf[i + 2:i + 2 + ln]
            val = val.decode() if kind == "str" else val
            i += 2 + ln
        else:
            k, i = _str(buf, i)
            v, i = _str(buf, i)
            out.setdefault(pid, []).append((k, v))
            continue
        if pid == SUBSCRIPTION_ID:
            out.setdefault(pid, []).append(val)
        else:
            out[pid] = val
    return out, end


def _str(buf: bytes, i: int) -> tuple[str, int]:
    ln = struct.unpack_from("!H", buf, i)[0]
    return buf[i + 2:i + 2 + ln].decode(), i + 2 + ln


@dataclass
class Packet:
    type: int
    flags: int
    body: bytes
    version: int = 5
    # decoded fields (filled per type)
    rc: int | None = None
    rcs: list[int] = field(default_factory=list)
    pid: int | None = None
    props: dict = field(default_factory=dict)
    session_present: bool = False
    topic: str = ""
    payload: bytes = b""

    @property
    def qos(self) -> int:
        return (self.flags >> 1) & 3

    @property
    def dup(self) -> bool:
        return bool(self.flags & 0x08)

    @property
    def retain(self) -> bool:
        return bool(self.flags & 0x01)

    def raw(self) -> bytes:
        return bytes([(self.type << 4) | self.flags]) + varint(len(self.body)) + self.body

    def decode(self) -> "Packet":
        b, v = self.body, self.version
        t = self.type
        if t == CONNACK:
            self.session_present = bool(b[0] & 1)
            self.rc = b[1]
            if v == 5 and len(b) > 2:
                self.props, _ = parse_props(b, 2)
        elif t == PUBLISH:
            self.topic, i = _str(b, 0)
            if self.qos:
                self.pid = struct.unpack_from("!H", b, i)[0]
                i += 2
            if v == 5:
                self.props, i = parse_props(b, i)
            self.payload = b[i:]
        elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            self.pid = struct.unpack_from("!H", b, 0)[0]
            self.rc = b[2] if len(b) > 2 else 0
            if len(b) > 3:
                self.props, _ = parse_props(b, 3)
        elif t in (SUBACK, UNSUBACK):
            self.pid = struct.unpack_from("!H", b, 0)[0]
            i = 2
            if v == 5:
                self.props, i = parse_props(b, i)
            self.rcs = list(b[i:])
        elif t == DISCONNECT:
            self.rc = b[0] if b else 0
            if len(b) > 1:
                self.props, _ = parse_props(b, 1)
        return self


def split_packet(buf: bytes, version: int = 5) -> tuple[Packet | None, bytes]:
    """The first complete packet in `buf` (decoded) and the bytes after it; (None, buf) while
    the packet is incomplete."""
    if len(buf) >= 2:
        try:
            ln, i = _read_varint(buf, 1)
        except IndexError:
            return None, buf
        if len(buf) >= i + ln:
            first = buf[0]
            return Packet(first >> 4, first & 0x0F, buf[i:i + ln], version).decode(), \
                buf[i + ln:]
    return None, buf


class Closed(Exception):
    """The peer closed the connection."""


class RawClient:
    """A blocking socket that speaks MQTT packets built with the functions above."""

    def __init__(self, host: str, port: int, version: int = 5, timeout: float = 10.0):
        self.version = version
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no packet from broker in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no packet from broker in time") from None
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            raise Closed()
        self.buf += chunk

    def recv(self, timeout: float | None = None) -> Packet:
        """Next complete packet (decoded); raises Closed or TimeoutError."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            pkt, self.buf = split_packet(self.buf, self.version)
            if pkt is not None:
                return pkt
            self._fill(deadline)

    def expect(self, ptype: int, timeout: float | None = None, skip: tuple[int, ...] = ()) -> Packet:
        """Next packet, which must be of `ptype` (packets of types in `skip` are ignored)."""
        while True:
            p = self.recv(timeout)
            if p.type in skip:
                continue
            assert p.type == ptype, f"expected packet type {ptype}, got {p.type} ({p.raw()!r})"
            return p

    def expect_close(self, timeout: float | None = None) -> list[Packet]:
        """Wait until the broker closes the socket; returns packets received before that."""
        got = []
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            try:
                got.append(self.recv(max(0.01, deadline - time.monotonic())))
            except Closed:
                return got
            except TimeoutError:
                raise AssertionError(f"broker did not close the connection; got {got}") from None

    def connect(self, client_id: str | bytes = "", **kw) -> Packet:
        kw.setdefault("version", self.version)
        self.send(connect_packet(client_id, **kw))
        return self.expect(CONNACK)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def connack_bytes(host: str, port: int, client_id: str, *, username: str | None = None,
                  timeout: float = 10.0) -> bytes:
    """Send an MQTT 3.1.1 CONNECT on a new socket: the CONNACK as sent, or b"" when the broker
    closes the connection without one."""
    c = RawClient(host, port, 4, timeout)
    try:
        c.send(connect_packet(client_id, version=4, keepalive=30, username=username))
        return c.recv().raw()
    except Closed:
        return b""
    finally:
        c.close()
