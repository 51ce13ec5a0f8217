# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twins of the codec's per-message functions (see emqpy/mqtt/accel.py).

Each function here has a pure-Python original with the same name, arguments, results and
errors: `FrameReader` in frames.py, `scan_plain_publish_props`, `decode_utf8` and
`decode_binary` in properties.py, and `parse_plain_publish` and `decode_connect` in
packets.py. tests/mqtt/test_speedups.py checks that the two agree.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memchr

from emqpy.mqtt.reason_codes import (
    CONNECT, PACKET_TOO_LARGE, UNSUPPORTED_PROTOCOL_VERSION, MQTTError, malformed, protocol_error,
)


cdef class FrameReader:
    """Splits a byte stream into MQTT frames; see emqpy.mqtt.frames.FrameReader."""
    cdef public object max_packet_size
    cdef bytes _buf
    cdef public unsigned long long n_frames, n_other, n_qos1, n_qos2

    def __init__(self, max_packet_size=1024 * 1024):
        self.max_packet_size = max_packet_size
        self._buf = b""
        self.n_frames = self.n_other = self.n_qos1 = self.n_qos2 = 0

    @property
    def buffered(self):
        return PyBytes_GET_SIZE(self._buf)

    def feed(self, data):
        cdef bytes buf
        if PyBytes_GET_SIZE(self._buf):
            buf = self._buf + bytes(data)
        elif type(data) is bytes:
            buf = <bytes>data
        else:
            buf = bytes(data)
        cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(buf)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
        cdef Py_ssize_t pos = 0, hdr, end, length
        cdef unsigned char b, byte0
        cdef int shift
        # a limit above what 4 length bytes can say never refuses anything
        cdef Py_ssize_t limit = <Py_ssize_t>min(self.max_packet_size, 1 << 30)
        frames = []
        while n - pos >= 2:
            b = p[pos + 1]
            hdr = 2
            if b < 128:
                length = b
            else:
                length = b & 0x7F
                shift = 7
                while True:
                    if pos + hdr >= n:
                        self._buf = buf[pos:]
                        return frames
                    b = p[pos + hdr]
                    hdr += 1
                    length |= (<Py_ssize_t>(b & 0x7F)) << shift
                    if not b & 0x80:
                        break
                    shift += 7
                    if hdr > 4:
                        raise malformed("remaining length longer than 4 bytes")
            if length + hdr > limit:
                raise MQTTError(PACKET_TOO_LARGE, f"packet of {length + hdr} bytes exceeds "
                                f"max_packet_size {self.max_packet_size}")
            end = pos + hdr + length
            if end > n:
                break
            byte0 = p[pos]
            frames.append((byte0, PyBytes_FromStringAndSize(<const char *>p + pos + hdr, length)))
            self.n_frames += 1
            if byte0 >> 4 != 3:
                self.n_other += 1
            elif byte0 & 0x06 == 0x02:
                self.n_qos1 += 1
            elif byte0 & 0x06 == 0x04:
                self.n_qos2 += 1
            pos = end
        self._buf = buf[pos:] if pos < n else b""
        return frames


cdef inline Py_ssize_t _scan_props(const unsigned char *p, Py_ssize_t n, Py_ssize_t pos):
    cdef Py_ssize_t end, strings
    cdef unsigned char pid
    cdef unsigned int seen = 0, bit
    if pos >= n or p[pos] >= 128:
        return -1
    end = pos + 1 + p[pos]
    if end > n:
        return -1
    pos += 1
    while pos < end:
        pid = p[pos]
        if pid == 0x01:
            strings = 0
        elif pid == 0x03 or pid == 0x08 or pid == 0x09:
            strings = 1
        elif pid == 0x26:
            strings = 2
        else:
            return -1
        if pid != 0x26:
            bit = 1u << (pid & 0x0F)
            if seen & bit:
                return -1
            seen |= bit
        pos += 1
        if strings == 0:
            if pos >= end or p[pos] > 1:
                return -1
            pos += 1
            continue
        while strings:
            if pos + 2 > end:
                return -1
            pos += 2 + ((p[pos] << 8) | p[pos + 1])
            strings -= 1
        if pos > end:
            return -1
    return end


def scan_plain_publish_props(data, Py_ssize_t pos):
    """See emqpy.mqtt.properties.scan_plain_publish_props."""
    cdef bytes b = data if type(data) is bytes else bytes(data)
    if pos < 0:
        return -1
    return _scan_props(<const unsigned char *>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), pos)


def parse_plain_publish(body, bint qos1, bint v5, bint strict, Py_ssize_t max_levels):
    """See emqpy.mqtt.packets.parse_plain_publish."""
    cdef bytes b = body if type(body) is bytes else bytes(body)
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(b)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
    cdef Py_ssize_t end, pos, i, levels = 0, end_props
    cdef unsigned char c
    cdef int pid = 0
    if n < 2:
        return None
    end = 2 + ((p[0] << 8) | p[1])
    pos = end + 2 if qos1 else end
    if pos > n or end == 2:
        return None
    for i in range(2, end):
        c = p[i]
        if c == 0x2F:  # '/'
            levels += 1
        elif c == 0x2B or c == 0x23 or c == 0:  # '+', '#', NUL
            return None
    if levels >= max_levels:
        return None
    try:
        topic = PyUnicode_DecodeUTF8(<const char *>p + 2, end - 2, NULL)
    except UnicodeDecodeError:
        return None
    if qos1:
        pid = (p[end] << 8) | p[end + 1]
    props = None
    if v5:
        if pos < n and p[pos] == 0:
            pos += 1
        else:
            if strict:
                return None
            end_props = _scan_props(p, n, pos)
            if end_props < 0:
                return None
            props = PyBytes_FromStringAndSize(<const char *>p + pos, end_props - pos)
            pos = end_props
    return topic, PyBytes_FromStringAndSize(<const char *>p + pos, n - pos), props, end, pid


cdef inline Py_ssize_t _field_end(const unsigned char *p, Py_ssize_t n, Py_ssize_t pos,
                                  str what) except -1:
    """End of the 2-byte length-prefixed field at `pos` (see properties._string_bytes)."""
    cdef Py_ssize_t end
    if pos < 0 or pos + 2 > n:
        raise malformed(f"truncated {what} length")
    end = pos + 2 + ((p[pos] << 8) | p[pos + 1])
    if end > n:
        raise malformed(f"truncated {what}")
    return end


cdef inline str _utf8_field(const unsigned char *p, Py_ssize_t n, Py_ssize_t *pos):
    """The string at pos[0] (as decode_utf8); moves pos[0] past it."""
    cdef Py_ssize_t start = pos[0]
    cdef Py_ssize_t end = _field_end(p, n, start, "string")
    try:
        s = PyUnicode_DecodeUTF8(<const char *>p + start + 2, end - start - 2, NULL)
    except UnicodeDecodeError:
        raise malformed("string is not valid UTF-8") from None
    if memchr(p + start + 2, 0, end - start - 2) != NULL:
        raise malformed("string contains U+0000")
    pos[0] = end
    return s


cdef inline bytes _binary_field(const unsigned char *p, Py_ssize_t n, Py_ssize_t *pos):
    cdef Py_ssize_t start = pos[0]
    cdef Py_ssize_t end = _field_end(p, n, start, "binary data")
    pos[0] = end
    return PyBytes_FromStringAndSize(<const char *>p + start + 2, end - start - 2)


def decode_utf8(data, Py_ssize_t pos):
    """See emqpy.mqtt.properties.decode_utf8."""
    cdef bytes b = data if type(data) is bytes else bytes(data)
    s = _utf8_field(<const unsigned char *>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), &pos)
    return s, pos


def decode_binary(data, Py_ssize_t pos):
    """See emqpy.mqtt.properties.decode_binary."""
    cdef bytes b = data if type(data) is bytes else bytes(data)
    v = _binary_field(<const unsigned char *>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), &pos)
    return v, pos


# Bound on first use: packets.py imports this module, so it cannot be imported from here.
cdef object _Connect = None, _Will = None, _decode_properties = None


cdef _bind_connect():
    global _Connect, _Will, _decode_properties
    from emqpy.mqtt import packets, properties
    _Will = packets.Will
    _decode_properties = properties.decode_properties
    _Connect = packets.Connect


def decode_connect(flags, body):
    """See emqpy.mqtt.packets.decode_connect."""
    if _Connect is None:
        _bind_connect()
    if flags != 0:
        raise malformed("invalid fixed header flags for CONNECT")
    cdef bytes b = body if type(body) is bytes else bytes(body)
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(b)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
    cdef Py_ssize_t pos = 0
    cdef int level, cflags, keepalive, will_qos
    name = _utf8_field(p, n, &pos)
    if pos >= n:
        raise malformed("truncated CONNECT")
    level = p[pos] & 0x7F  # without the bridge bit (see packets.Connect.is_bridge)
    is_bridge = p[pos] != level
    pos += 1
    if not ((level == 4 or level == 5) and name == "MQTT") and \
            not (level == 3 and name == "MQIsdp"):
        if name != "MQTT" and name != "MQIsdp":
            raise protocol_error(f"unknown protocol name {name!r}")
        # Right name, unsupported level: the caller answers CONNACK 0x01 / 0x84.
        raise MQTTError(UNSUPPORTED_PROTOCOL_VERSION, f"unsupported protocol level {level}")
    if pos + 3 > n:
        raise malformed("truncated CONNECT")
    cflags = p[pos]
    keepalive = (p[pos + 1] << 8) | p[pos + 2]
    pos += 3
    if cflags & 0x01:
        raise malformed("CONNECT reserved flag set")
    props = {}
    if level == 5:
        props, pos = _decode_properties(b, pos, CONNECT)
    clientid = _utf8_field(p, n, &pos)
    will = None
    will_qos = (cflags >> 3) & 0x03
    will_retain = (cflags & 0x20) != 0
    if cflags & 0x04:
        if will_qos == 3:
            raise malformed("will QoS 3")
        wprops = {}
        if level == 5:
            wprops, pos = _decode_properties(b, pos, 0)
        wtopic = _utf8_field(p, n, &pos)
        wpayload = _binary_field(p, n, &pos)
        will = _Will(wtopic, wpayload, will_qos, will_retain, wprops)
    elif will_qos or will_retain:
        raise malformed("will QoS/retain set without will flag")
    username = password = None
    if cflags & 0x80:
        username = _utf8_field(p, n, &pos)
    if cflags & 0x40:
        if level != 5 and username is None:
            raise malformed("password without username")
        password = _binary_field(p, n, &pos)
    if pos != n:
        raise malformed("trailing bytes in CONNECT")
    return _Connect(clientid, level, (cflags & 0x02) != 0, keepalive, will, username, password,
                    props, name, is_bridge)
