"""MQTT 5 properties: a dict keyed by snake_case name.

`user_property` is a list of (name, value) pairs, `subscription_identifier` a list of ints (a
PUBLISH may carry several); every other property is a single value. Which property may appear in
which packet is checked on decode (MQTT 5.0 section 2.2.2.2).
"""
from __future__ import annotations

import struct

from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.accel import pick
from emqpy.mqtt.reason_codes import malformed, protocol_error

BYTE, U16, U32, VARINT, UTF8, BINARY, PAIR = range(7)

_C, _CA, _P, _PA, _SUB, _SA, _UNS, _UA, _D, _AU, _W = (
    rc.CONNECT, rc.CONNACK, rc.PUBLISH, rc.PUBACK, rc.SUBSCRIBE, rc.SUBACK, rc.UNSUBSCRIBE,
    rc.UNSUBACK, rc.DISCONNECT, rc.AUTH, 0,  # 0 stands for the Will properties of CONNECT
)
_ACKS = (rc.PUBACK, rc.PUBREC, rc.PUBREL, rc.PUBCOMP)

# id: (name, type, packets it may appear in)
PROPERTIES: dict[int, tuple[str, int, tuple[int, ...]]] = {
    0x01: ("payload_format_indicator", BYTE, (_P, _W)),
    0x02: ("message_expiry_interval", U32, (_P, _W)),
    0x03: ("content_type", UTF8, (_P, _W)),
    0x08: ("response_topic", UTF8, (_P, _W)),
    0x09: ("correlation_data", BINARY, (_P, _W)),
    0x0B: ("subscription_identifier", VARINT, (_P, _SUB)),
    0x11: ("session_expiry_interval", U32, (_C, _CA, _D)),
    0x12: ("assigned_client_identifier", UTF8, (_CA,)),
    0x13: ("server_keep_alive", U16, (_CA,)),
    0x15: ("authentication_method", UTF8, (_C, _CA, _AU)),
    0x16: ("authentication_data", BINARY, (_C, _CA, _AU)),
    0x17: ("request_problem_information", BYTE, (_C,)),
    0x18: ("will_delay_interval", U32, (_W,)),
    0x19: ("request_response_information", BYTE, (_C,)),
    0x1A: ("response_information", UTF8, (_CA,)),
    0x1C: ("server_reference", UTF8, (_CA, _D)),
    0x1F: ("reason_string", UTF8, (_CA, _SA, _UA, _D, _AU) + _ACKS),
    0x21: ("receive_maximum", U16, (_C, _CA)),
    0x22: ("topic_alias_maximum", U16, (_C, _CA)),
    0x23: ("topic_alias", U16, (_P,)),
    0x24: ("maximum_qos", BYTE, (_CA,)),
    0x25: ("retain_available", BYTE, (_CA,)),
    0x26: ("user_property", PAIR, (_C, _CA, _P, _SUB, _SA, _UNS, _UA, _D, _AU, _W) + _ACKS),
    0x27: ("maximum_packet_size", U32, (_C, _CA)),
    0x28: ("wildcard_subscription_available", BYTE, (_CA,)),
    0x29: ("subscription_identifier_available", BYTE, (_CA,)),
    0x2A: ("shared_subscription_available", BYTE, (_CA,)),
}
BY_NAME = {name: (pid, typ) for pid, (name, typ, _) in PROPERTIES.items()}

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def decode_varint(data, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    for i in range(4):
        if pos >= len(data):
            raise malformed("truncated variable byte integer")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
    raise malformed("variable byte integer longer than 4 bytes")


def encode_varint(n: int) -> bytes:
    if n < 128:
        return bytes((n,))
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _string_bytes(data, pos: int, what: str) -> tuple[bytes, int]:
    """A 2-byte length-prefixed field: (its bytes, position after it)."""
    if pos + 2 > len(data):
        raise malformed(f"truncated {what} length")
    n = (data[pos] << 8) | data[pos + 1]
    end = pos + 2 + n
    if end > len(data):
        raise malformed(f"truncated {what}")
    return bytes(data[pos + 2:end]), end


def decode_utf8(data, pos: int) -> tuple[str, int]:
    raw, end = _string_bytes(data, pos, "string")
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise malformed("string is not valid UTF-8") from None
    if "\x00" in s:
        raise malformed("string contains U+0000")
    return s, end


def has_invalid_utf8(props: dict) -> bool:
    for name, value in props.items():
        values = value if name == "user_property" else (value,)
        for v in values:
            for s in (v if isinstance(v, tuple) else (v,)):
                if isinstance(s, str):
                    try:
                        s.encode("utf-8")
                    except UnicodeEncodeError:
                        return True
                    if "\x00" in s:
                        return True
    return False


def decode_binary(data, pos: int) -> tuple[bytes, int]:
    return _string_bytes(data, pos, "binary data")


decode_utf8_py, decode_binary_py = decode_utf8, decode_binary
decode_utf8, decode_binary = pick(decode_utf8), pick(decode_binary)


def encode_utf8(s: str) -> bytes:
    b = s.encode("utf-8", "surrogateescape")
    return _U16.pack(len(b)) + b


def encode_binary(b: bytes) -> bytes:
    return _U16.pack(len(b)) + b


_BOOL_PROPS = frozenset(("payload_format_indicator", "request_problem_information",
                         "request_response_information"))


def decode_properties(data, pos: int, packet_type: int) -> tuple[dict, int]:
    """Decode a property block starting at `pos` (its length prefix included).

    Written as one loop without helper calls: it runs for every MQTT 5 PUBLISH.
    """
    n = len(data)
    if pos >= n:
        raise malformed("missing property length")
    length = data[pos]
    if length < 128:
        pos += 1
    else:
        length, pos = decode_varint(data, pos)
    end = pos + length
    if end > n:
        raise malformed("property length exceeds packet")
    props: dict = {}
    while pos < end:
        pid = data[pos]
        pos += 1
        spec = PROPERTIES.get(pid)  # every property id is below 0x80: one byte
        if spec is None:
            raise malformed(f"unknown property 0x{pid:02X}")
        name, typ, allowed = spec
        if packet_type not in allowed:
            raise protocol_error(f"property {name} not allowed in this packet")
        if typ >= UTF8:  # UTF8, BINARY, PAIR: length-prefixed
            if pos + 2 > end:
                raise malformed("truncated property")
            start = pos + 2
            pos = start + ((data[pos] << 8) | data[pos + 1])
            if pos > end:
                raise malformed("property exceeds property length")
            raw = data[start:pos]
            if typ == BINARY:
                value = raw if type(raw) is bytes else bytes(raw)
            elif typ == UTF8:
                value = bytes(raw).decode("utf-8", "surrogateescape")
            else:
                if pos + 2 > end:
                    raise malformed("truncated property")
                start = pos + 2
                pos = start + ((data[pos] << 8) | data[pos + 1])
                if pos > end:
                    raise malformed("property exceeds property length")
                value = (bytes(raw).decode("utf-8", "surrogateescape"),
                         bytes(data[start:pos]).decode("utf-8", "surrogateescape"))
                lst = props.get(name)
                if lst is None:
                    props[name] = [value]
                else:
                    lst.append(value)
                continue
        elif typ == BYTE:
            if pos >= end:
                raise malformed("truncated property")
            value = data[pos]
            pos += 1
            if value > 1 and name in _BOOL_PROPS:
                raise protocol_error(f"{name} must be 0 or 1")
        elif typ == U16:
            if pos + 2 > end:
                raise malformed("truncated property")
            value = (data[pos] << 8) | data[pos + 1]
            pos += 2
            if value == 0 and name == "receive_maximum":
                raise protocol_error("receive_maximum 0")
        elif typ == U32:
            if pos + 4 > end:
                raise malformed("truncated property")
            value = _U32.unpack_from(data, pos)[0]
            pos += 4
            if value == 0 and name == "maximum_packet_size":
                raise protocol_error("maximum_packet_size 0")
        else:  # VARINT: the subscription identifier
            value, pos = decode_varint(data, pos)
            if pos > end:
                raise malformed("property exceeds property length")
            if value == 0:
                raise protocol_error("subscription identifier 0")
            lst = props.get(name)
            if lst is None:
                props[name] = [value]
            elif packet_type == rc.SUBSCRIBE:
                raise protocol_error("duplicate subscription identifier")
            else:
                lst.append(value)
            continue
        if name in props:
            raise protocol_error(f"duplicate property {name}")
        props[name] = value
    return props, end


_PLAIN_PUBLISH_PROPS = {0x01: 0, 0x03: 1, 0x08: 1, 0x09: 1, 0x26: 2}  # id -> strings to skip


def scan_plain_publish_props(data, pos: int) -> int:
    """End of a PUBLISH property block holding only properties that are forwarded unchanged
    (payload format, content type, response topic, correlation data, user properties), checked
    as `decode_properties` would; -1 for anything else (topic alias, expiry, subscription id,
    a duplicate, a bad value or a malformed block), which the caller decodes the full way.
    Decoding into a dict is then left for whoever needs the values."""
    n = len(data)
    if pos >= n or data[pos] >= 128:
        return -1
    end = pos + 1 + data[pos]
    if end > n:
        return -1
    pos += 1
    seen = 0
    while pos < end:
        pid = data[pos]
        strings = _PLAIN_PUBLISH_PROPS.get(pid)
        if strings is None:
            return -1
        if pid != 0x26:
            bit = 1 << (pid & 0x0F)
            if seen & bit:
                return -1
            seen |= bit
        pos += 1
        if strings == 0:
            if pos >= end or data[pos] > 1:
                return -1
            pos += 1
            continue
        for _ in range(strings):
            if pos + 2 > end:
                return -1
            pos += 2 + ((data[pos] << 8) | data[pos + 1])
        if pos > end:
            return -1
    return end


scan_plain_publish_props_py = scan_plain_publish_props
scan_plain_publish_props = pick(scan_plain_publish_props)


def encode_properties(props: dict | None) -> bytes:
    """Encode a property block with its length prefix; unknown names raise KeyError."""
    if not props:
        return b"\x00"
    out = bytearray()
    for name, value in props.items():
        if value is None:
            continue
        pid, typ = BY_NAME[name]
        if typ == PAIR:
            for k, v in value:
                out.append(pid)
                out += encode_utf8(k)
                out += encode_utf8(v)
            continue
        if name == "subscription_identifier" and isinstance(value, (list, tuple)):
            for v in value:
                out.append(pid)
                out += encode_varint(v)
            continue
        out.append(pid)
        if typ == BYTE:
            out.append(value)
        elif typ == U16:
            out += _U16.pack(value)
        elif typ == U32:
            out += _U32.pack(value)
        elif typ == VARINT:
            out += encode_varint(value)
        elif typ == UTF8:
            out += encode_utf8(value)
        else:
            out += encode_binary(value)
    return encode_varint(len(out)) + bytes(out)
