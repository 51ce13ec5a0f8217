"""MQTT control packets: one class per packet type, each with `decode` and `encode`.

`decode(flags, body, version)` takes the fixed header's low nibble and the body (everything after
the remaining-length field) and raises MQTTError on malformed or protocol-violating input.
`encode(version)` returns the complete packet bytes. PUBLISH has extra fast-path helpers because
it is the broker's hot path.
"""
from __future__ import annotations

import struct

from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.accel import pick
from emqpy.mqtt.properties import (
    decode_binary, decode_properties, decode_utf8, encode_binary, encode_properties,
    encode_utf8, encode_varint, scan_plain_publish_props,
)
from emqpy.mqtt.reason_codes import MQTTError, malformed, protocol_error

_U16 = struct.Struct(">H")
_EMPTY_PROPS = b"\x00"


def fixed_header(byte0: int, length: int) -> bytes:
    if length < 128:
        return bytes((byte0, length))
    return bytes((byte0,)) + encode_varint(length)


def _packet(byte0: int, body: bytes) -> bytes:
    return fixed_header(byte0, len(body)) + body


def _u16(body, pos: int, what: str) -> int:
    if pos + 2 > len(body):
        raise malformed(f"truncated {what}")
    return (body[pos] << 8) | body[pos + 1]


def _pid_and_props(flags: int, body, version: int, ptype: int) -> tuple[int, dict, int]:
    """The start shared by SUBSCRIBE and UNSUBSCRIBE: flags 0010, packet id, v5 properties."""
    _expect_flags(flags, 2, rc.PACKET_NAMES[ptype])
    pid = _u16(body, 0, "packet id")
    if pid == 0:
        raise protocol_error("packet id 0")
    if version == 5:
        props, pos = decode_properties(body, 2, ptype)
        return pid, props, pos
    return pid, {}, 2


def _expect_flags(flags: int, expected: int, name: str) -> None:
    if flags != expected:
        raise malformed(f"invalid fixed header flags for {name}")


class Will:
    __slots__ = ("topic", "payload", "qos", "retain", "props")

    def __init__(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                 props: dict | None = None):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.props = props or {}


BRIDGE_BIT = 0x80  # of a CONNECT's protocol level byte


class Connect:
    __slots__ = ("proto_name", "proto_ver", "clean_start", "keepalive", "clientid", "will",
                 "username", "password", "props", "is_bridge")

    def __init__(self, clientid: str = "", proto_ver: int = 4, clean_start: bool = True,
                 keepalive: int = 60, will: Will | None = None, username: str | None = None,
                 password: bytes | None = None, props: dict | None = None,
                 proto_name: str | None = None, is_bridge: bool = False):
        self.proto_ver = proto_ver
        # the bridge bit (0x80) of the protocol level byte: a broker bridging to another
        # (Mosquitto's try_private, EMQX's is_bridge / bridge_mode)
        self.is_bridge = is_bridge
        self.proto_name = proto_name or ("MQIsdp" if proto_ver == 3 else "MQTT")
        self.clean_start = clean_start
        self.keepalive = keepalive
        self.clientid = clientid
        self.will = will
        self.username = username
        self.password = password
        self.props = props or {}

    @classmethod
    def decode(cls, flags: int, body, version: int = 0) -> "Connect":
        return decode_connect(flags, body)

    def encode(self, version: int | None = None) -> bytes:
        v = self.proto_ver
        cflags = 0x02 if self.clean_start else 0
        if self.will:
            cflags |= 0x04 | (self.will.qos << 3) | (0x20 if self.will.retain else 0)
        if self.username is not None:
            cflags |= 0x80
        if self.password is not None:
            cflags |= 0x40
        body = bytearray(encode_utf8(self.proto_name))
        body.append(v | BRIDGE_BIT if self.is_bridge else v)
        body.append(cflags)
        body += _U16.pack(self.keepalive)
        if v == 5:
            body += encode_properties(self.props)
        body += encode_utf8(self.clientid)
        if self.will:
            if v == 5:
                body += encode_properties(self.will.props)
            body += encode_utf8(self.will.topic)
            body += encode_binary(self.will.payload)
        if self.username is not None:
            body += encode_utf8(self.username)
        if self.password is not None:
            body += encode_binary(self.password)
        return _packet(0x10, bytes(body))


def decode_connect(flags: int, body) -> Connect:
    """A CONNECT body (the protocol level is in it). Compiled twin in _speedups."""
    _expect_flags(flags, 0, "CONNECT")
    name, pos = decode_utf8(body, 0)
    if pos >= len(body):
        raise malformed("truncated CONNECT")
    level = body[pos] & ~BRIDGE_BIT
    is_bridge = body[pos] != level
    pos += 1
    if (name, level) not in (("MQTT", 4), ("MQTT", 5), ("MQIsdp", 3)):
        if name not in ("MQTT", "MQIsdp"):
            raise protocol_error(f"unknown protocol name {name!r}")
        # Right name, unsupported level: the caller answers CONNACK 0x01 / 0x84.
        raise MQTTError(rc.UNSUPPORTED_PROTOCOL_VERSION, f"unsupported protocol level {level}")
    if pos + 3 > len(body):
        raise malformed("truncated CONNECT")
    cflags = body[pos]
    keepalive = (body[pos + 1] << 8) | body[pos + 2]
    pos += 3
    if cflags & 0x01:
        raise malformed("CONNECT reserved flag set")
    props = {}
    if level == 5:
        props, pos = decode_properties(body, pos, rc.CONNECT)
    clientid, pos = decode_utf8(body, pos)
    will = None
    will_flag = cflags & 0x04
    will_qos = (cflags >> 3) & 0x03
    will_retain = bool(cflags & 0x20)
    if will_flag:
        if will_qos == 3:
            raise malformed("will QoS 3")
        wprops = {}
        if level == 5:
            wprops, pos = decode_properties(body, pos, 0)
        wtopic, pos = decode_utf8(body, pos)
        wpayload, pos = decode_binary(body, pos)
        will = Will(wtopic, wpayload, will_qos, will_retain, wprops)
    elif will_qos or will_retain:
        raise malformed("will QoS/retain set without will flag")
    username = password = None
    if cflags & 0x80:
        username, pos = decode_utf8(body, pos)
    if cflags & 0x40:
        if level != 5 and username is None:
            raise malformed("password without username")
        password, pos = decode_binary(body, pos)
    if pos != len(body):
        raise malformed("trailing bytes in CONNECT")
    return Connect(clientid, level, bool(cflags & 0x02), keepalive, will, username, password,
                   props, name, is_bridge)


decode_connect_py = decode_connect
decode_connect = pick(decode_connect)


class Connack:
    __slots__ = ("session_present", "reason_code", "props")

    def __init__(self, session_present: bool = False, reason_code: int = 0,
                 props: dict | None = None):
        self.session_present = session_present
        self.reason_code = reason_code
        self.props = props or {}

    @classmethod
    def decode(cls, flags: int, body, version: int) -> "Connack":
        _expect_flags(flags, 0, "CONNACK")
        if len(body) < 2:
            raise malformed("truncated CONNACK")
        props = {}
        if version == 5 and len(body) > 2:
            props, _ = decode_properties(body, 2, rc.CONNACK)
        return cls(bool(body[0] & 1), body[1], props)

    def encode(self, version: int) -> bytes:
        body = bytes((1 if self.session_present else 0, self.reason_code))
        if version == 5:
            body += encode_properties(self.props)
        return _packet(0x20, body)


class Publish:
    __slots__ = ("topic", "payload", "qos", "retain", "dup", "packet_id", "props")

    def __init__(self, topic: str, payload: bytes = b"", qos: int = 0, retain: bool = False,
                 dup: bool = False, packet_id: int | None = None, props: dict | None = None):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.packet_id = packet_id
        self.props = props

    @classmethod
    def decode(cls, flags: int, body, version: int) -> "Publish":
        qos = (flags >> 1) & 0x03
        if qos == 3:
            raise malformed("PUBLISH QoS 3")
        if qos == 0 and flags & 0x08:
            raise malformed("DUP set on QoS 0 PUBLISH")
        n = len(body)
        if n < 2:
            raise malformed("truncated PUBLISH")
        tlen = (body[0] << 8) | body[1]
        pos = 2 + tlen
        if pos > n:
            raise malformed("truncated topic")
        try:
            topic = body[2:pos].decode("utf-8")
        except UnicodeDecodeError:
            raise malformed("topic is not valid UTF-8") from None
        pid = None
        if qos:
            if pos + 2 > n:
                raise malformed("truncated packet id")
            pid = (body[pos] << 8) | body[pos + 1]
            if pid == 0:
                raise protocol_error("packet id 0")
            pos += 2
        props = None
        if version == 5:
            if pos < n and body[pos] == 0:
                pos += 1
            else:
                props, pos = decode_properties(body, pos, rc.PUBLISH)
        return cls(topic, body[pos:], qos, bool(flags & 1), bool(flags & 8), pid, props)

    def encode(self, version: int) -> bytes:
        return encode_publish(self.topic.encode("utf-8"), self.payload, self.qos, self.retain,
                              self.dup, self.packet_id,
                              encode_properties(self.props) if version == 5 else None)


def parse_plain_publish(body, qos1: bool, v5: bool, strict: bool, max_levels: int):
    """The common PUBLISH (QoS 0 or 1, no retain, DUP or topic alias, forwarded properties
    only) in one step, for the broker's inline path: (topic, payload, property block or None,
    end of the topic in `body`, packet id or 0). None for anything else (a bad or wildcard topic,
    `max_levels` levels or more, other properties, properties under `strict` UTF-8 checking),
    which `Publish.decode` then handles and reports."""
    n = len(body)
    end = 2 + ((body[0] << 8) | body[1]) if n >= 2 else n + 1
    pos = end + 2 if qos1 else end
    if pos > n:
        return None
    try:
        topic = body[2:end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not topic or "+" in topic or "#" in topic or "\x00" in topic or \
            topic.count("/") >= max_levels:
        return None
    props = None
    if v5:
        if pos < n and body[pos] == 0:
            pos += 1
        else:
            if strict:
                return None
            end_props = scan_plain_publish_props(body, pos)
            if end_props < 0:
                return None
            props = body[pos:end_props]  # decoded only if someone needs the values
            pos = end_props
    return topic, body[pos:], props, end, (body[end] << 8) | body[end + 1] if qos1 else 0


parse_plain_publish_py = parse_plain_publish
parse_plain_publish = pick(parse_plain_publish)


def encode_publish(topic: bytes, payload: bytes, qos: int, retain: bool, dup: bool,
                   packet_id: int | None, props_block: bytes | None) -> bytes:
    """Encode a PUBLISH. `props_block` is the encoded property block (v5) or None (v3)."""
    byte0 = 0x30 | (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    head = _U16.pack(len(topic)) + topic
    if qos:
        head += _U16.pack(packet_id)
    if props_block is not None:
        head += props_block
    n = len(head) + len(payload)
    return fixed_header(byte0, n) + head + payload


def split_publish(topic: bytes, payload: bytes, qos: int, retain: bool,
                  props_block: bytes | None) -> tuple[bytes, bytes]:
    """Pre-encode a QoS>0 PUBLISH as (prefix, suffix) around its 2-byte packet id.

    Fan-out to many subscribers then costs one concatenation per subscriber instead of an encode.
    The DUP flag is set later by the caller on redelivery (byte 0 of the prefix).
    """
    byte0 = 0x30 | (qos << 1) | (1 if retain else 0)
    tail = (props_block or b"") + payload
    n = 2 + len(topic) + 2 + len(tail)
    return fixed_header(byte0, n) + _U16.pack(len(topic)) + topic, tail


class _Ack:
    """PUBACK, PUBREC, PUBREL, PUBCOMP: packet id, then on v5 an optional reason code and props."""
    __slots__ = ("packet_id", "reason_code", "props")
    TYPE = 0
    FLAGS = 0

    def __init__(self, packet_id: int, reason_code: int = 0, props: dict | None = None):
        self.packet_id = packet_id
        self.reason_code = reason_code
        self.props = props or {}

    @classmethod
    def decode(cls, flags: int, body, version: int):
        if flags != cls.FLAGS:
            raise malformed(f"invalid fixed header flags for {rc.PACKET_NAMES[cls.TYPE]}")
        n = len(body)
        if n < 2:
            raise malformed("truncated ack")
        pid = (body[0] << 8) | body[1]
        if pid == 0:
            raise protocol_error("packet id 0")
        code = 0
        props = None
        if n > 2:
            if version != 5:
                raise malformed("trailing bytes in ack")
            code = body[2]
            if n > 3:
                props, end = decode_properties(body, 3, cls.TYPE)
                if end != n:
                    raise malformed("trailing bytes in ack")
        return cls(pid, code, props)

    def encode(self, version: int) -> bytes:
        byte0 = (self.TYPE << 4) | self.FLAGS
        if version == 5 and (self.reason_code or self.props):
            body = _U16.pack(self.packet_id) + bytes((self.reason_code,))
            if self.props:
                body += encode_properties(self.props)
            return _packet(byte0, body)
        return bytes((byte0, 2)) + _U16.pack(self.packet_id)


class Puback(_Ack):
    __slots__ = ()
    TYPE = rc.PUBACK


class Pubrec(_Ack):
    __slots__ = ()
    TYPE = rc.PUBREC


class Pubrel(_Ack):
    __slots__ = ()
    TYPE = rc.PUBREL
    FLAGS = 2


class Pubcomp(_Ack):
    __slots__ = ()
    TYPE = rc.PUBCOMP


class SubOpts:
    __slots__ = ("qos", "no_local", "retain_as_published", "retain_handling")

    def __init__(self, qos: int = 0, no_local: bool = False, retain_as_published: bool = False,
                 retain_handling: int = 0):
        self.qos = qos
        self.no_local = no_local
        self.retain_as_published = retain_as_published
        self.retain_handling = retain_handling

    def to_byte(self) -> int:
        return (self.qos | (4 if self.no_local else 0) | (8 if self.retain_as_published else 0)
                | (self.retain_handling << 4))


class Subscribe:
    __slots__ = ("packet_id", "topics", "props")

    def __init__(self, packet_id: int, topics: list[tuple[str, SubOpts]],
                 props: dict | None = None):
        self.packet_id = packet_id
        self.topics = topics
        self.props = props or {}

    @classmethod
    def decode(cls, flags: int, body, version: int) -> "Subscribe":
        pid, props, pos = _pid_and_props(flags, body, version, rc.SUBSCRIBE)
        topics = []
        n = len(body)
        while pos < n:
            topic, pos = decode_utf8(body, pos)
            if pos >= n:
                raise malformed("missing subscription options")
            o = body[pos]
            pos += 1
            if version == 5:
                if o & 0xC0 or (o & 3) == 3 or (o >> 4) & 3 == 3:
                    raise malformed("invalid subscription options")
            elif o & 0xFC or (o & 3) == 3:
                raise malformed("invalid requested QoS")
            topics.append((topic, SubOpts(o & 3, bool(o & 4), bool(o & 8), (o >> 4) & 3)))
        if not topics:
            raise protocol_error("SUBSCRIBE with no topic filter")
        return cls(pid, topics, props)

    def encode(self, version: int) -> bytes:
        body = bytearray(_U16.pack(self.packet_id))
        if version == 5:
            body += encode_properties(self.props)
        for topic, opts in self.topics:
            body += encode_utf8(topic)
            body.append(opts.to_byte() if version == 5 else opts.qos)
        return _packet(0x82, bytes(body))


class Suback:
    __slots__ = ("packet_id", "reason_codes", "props")
    TYPE = rc.SUBACK

    def __init__(self, packet_id: int, reason_codes: list[int], props: dict | None = None):
        self.packet_id = packet_id
        self.reason_codes = reason_codes
        self.props = props or {}

    @classmethod
    def decode(cls, flags: int, body, version: int):
        _expect_flags(flags, 0, rc.PACKET_NAMES[cls.TYPE])
        pid = _u16(body, 0, "packet id")
        pos = 2
        props = {}
        if version == 5:
            props, pos = decode_properties(body, pos, cls.TYPE)
        return cls(pid, list(bytes(body[pos:])), props)

    def encode(self, version: int) -> bytes:
        body = _U16.pack(self.packet_id)
        if version == 5:
            body += encode_properties(self.props)
        body += bytes(self.reason_codes)
        return _packet(self.TYPE << 4, body)


class Unsuback(Suback):
    __slots__ = ()
    TYPE = rc.UNSUBACK

    def encode(self, version: int) -> bytes:
        if version != 5:  # no reason codes before MQTT 5
            return bytes((0xB0, 2)) + _U16.pack(self.packet_id)
        return super().encode(version)


class Unsubscribe:
    __slots__ = ("packet_id", "topics", "props")

    def __init__(self, packet_id: int, topics: list[str], props: dict | None = None):
        self.packet_id = packet_id
        self.topics = topics
        self.props = props or {}

    @classmethod
    def decode(cls, flags: int, body, version: int) -> "Unsubscribe":
        pid, props, pos = _pid_and_props(flags, body, version, rc.UNSUBSCRIBE)
        topics = []
        while pos < len(body):
            topic, pos = decode_utf8(body, pos)
            topics.append(topic)
        if not topics:
            raise protocol_error("UNSUBSCRIBE with no topic filter")
        return cls(pid, topics, props)

    def encode(self, version: int) -> bytes:
        body = bytearray(_U16.pack(self.packet_id))
        if version == 5:
            body += encode_properties(self.props)
        for topic in self.topics:
            body += encode_utf8(topic)
        return _packet(0xA2, bytes(body))


class _Empty:
    __slots__ = ()
    TYPE = 0

    @classmethod
    def decode(cls, flags: int, body, version: int):
        if flags or len(body):
            raise malformed(f"malformed {rc.PACKET_NAMES[cls.TYPE]}")
        return cls()

    def encode(self, version: int = 0) -> bytes:
        return bytes((self.TYPE << 4, 0))


class Pingreq(_Empty):
    __slots__ = ()
    TYPE = rc.PINGREQ


class Pingresp(_Empty):
    __slots__ = ()
    TYPE = rc.PINGRESP


class Disconnect:
    """DISCONNECT; on v3 it has no body. AUTH shares the layout (reason code + properties)."""
    __slots__ = ("reason_code", "props")
    TYPE = rc.DISCONNECT

    def __init__(self, reason_code: int = 0, props: dict | None = None):
        self.reason_code = reason_code
        self.props = props or {}

    @classmethod
    def decode(cls, flags: int, body, version: int):
        _expect_flags(flags, 0, rc.PACKET_NAMES[cls.TYPE])
        if version != 5:
            if len(body):
                raise malformed("DISCONNECT with a body on MQTT 3")
            return cls()
        code = body[0] if len(body) else 0
        props = {}
        if len(body) > 1:
            props, end = decode_properties(body, 1, cls.TYPE)
            if end != len(body):
                raise malformed("trailing bytes")
        return cls(code, props)

    def encode(self, version: int) -> bytes:
        byte0 = self.TYPE << 4
        if version != 5:
            return bytes((byte0, 0))
        if not self.reason_code and not self.props:
            return bytes((byte0, 0))
        body = bytes((self.reason_code,))
        if self.props:
            body += encode_properties(self.props)
        return _packet(byte0, body)


class Auth(Disconnect):
    __slots__ = ()
    TYPE = rc.AUTH


PACKET_CLASSES = {
    rc.CONNECT: Connect, rc.CONNACK: Connack, rc.PUBLISH: Publish, rc.PUBACK: Puback,
    rc.PUBREC: Pubrec, rc.PUBREL: Pubrel, rc.PUBCOMP: Pubcomp, rc.SUBSCRIBE: Subscribe,
    rc.SUBACK: Suback, rc.UNSUBSCRIBE: Unsubscribe, rc.UNSUBACK: Unsuback, rc.PINGREQ: Pingreq,
    rc.PINGRESP: Pingresp, rc.DISCONNECT: Disconnect, rc.AUTH: Auth,
}


def decode_packet(byte0: int, body, version: int):
    """Decode one packet from its first byte and body; raises MQTTError."""
    ptype = byte0 >> 4
    cls = PACKET_CLASSES.get(ptype)
    if cls is None:
        raise malformed("reserved packet type 0")
    if ptype == rc.AUTH and version != 5:
        raise malformed("AUTH before MQTT 5")
    return cls.decode(byte0 & 0x0F, body, version)
