"""HAProxy PROXY protocol, v1 (text) and v2 (binary), as a load balancer sends it.

`HeaderParser` is sans-I/O: `wanted(data)` says how many of the bytes peeked from the socket
belong to the header, so the reader consumes exactly the header and leaves the client's first
bytes (a TLS ClientHello, an HTTP upgrade, an MQTT CONNECT) in the kernel for the real
transport. `read_header(loop, sock)` does that on an accepted non-blocking socket.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from dataclasses import dataclass

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
V1_SIG = b"PROXY "
V1_MAX = 107  # the longest valid v1 line, CRLF included
V2_MAX = 16 + 65535
PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_CN = 0x22


class ProxyHeaderError(ValueError):
    pass


@dataclass
class ProxyInfo:
    """What the header says. `src`/`dst` are None for v1 UNKNOWN and v2 LOCAL/UNSPEC (use the
    socket's own addresses then). `ssl_cn`: the client certificate CN the proxy verified (v2)."""

    version: int
    src: tuple[str, int] | None = None
    dst: tuple[str, int] | None = None
    ssl_cn: str | None = None


class HeaderParser:
    def __init__(self):
        self.buf = b""
        self.result: ProxyInfo | None = None

    def wanted(self, peeked: bytes) -> int:
        """How many leading bytes of `peeked` (what follows `self.buf` on the wire) are header
        bytes; parses the header once it is complete (then `self.result` is set)."""
        have = self.buf
        data = have + peeked
        n = len(have)
        head = data[:12]
        if V2_SIG.startswith(head) and not V1_SIG.startswith(head[:6]):
            if len(data) < 16:
                take = len(data) - n
            else:
                total = 16 + struct.unpack_from("!H", data, 14)[0]
                take = min(len(data), total) - n
        elif V1_SIG.startswith(data[:6]):
            end = data.find(b"\r\n")
            if end < 0:
                if len(data) >= V1_MAX:
                    raise ProxyHeaderError("PROXY v1 line longer than 107 bytes")
                take = len(data) - n
            else:
                take = end + 2 - n
        else:
            raise ProxyHeaderError("no PROXY protocol header")
        self.buf = data[:n + take]
        if self.buf.startswith(V2_SIG) and len(self.buf) >= 16 and \
                len(self.buf) == 16 + struct.unpack_from("!H", self.buf, 14)[0]:
            self.result = parse_v2(self.buf)
        elif self.buf.startswith(V1_SIG) and self.buf.endswith(b"\r\n"):
            self.result = parse_v1(self.buf)
        return take


def parse_v1(line: bytes) -> ProxyInfo:
    try:
        parts = line[:-2].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ProxyHeaderError("PROXY v1 line is not ASCII") from None
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyInfo(1)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"bad PROXY v1 line {line[:-2]!r}")
    want = 4 if parts[1] == "TCP4" else 6
    try:
        src, dst = ipaddress.ip_address(parts[2]), ipaddress.ip_address(parts[3])
        sport, dport = int(parts[4]), int(parts[5])
    except ValueError:
        raise ProxyHeaderError(f"bad PROXY v1 address in {line[:-2]!r}") from None
    if src.version != want or dst.version != want or not (0 <= sport < 65536 and 0 <= dport < 65536) \
            or not parts[4].isdigit() or not parts[5].isdigit():
        raise ProxyHeaderError(f"bad PROXY v1 address in {line[:-2]!r}")
    return ProxyInfo(1, (str(src), sport), (str(dst), dport))


def parse_v2(data: bytes) -> ProxyInfo:
    ver_cmd, fam = data[12], data[13]
    if ver_cmd >> 4 != 2:
        raise ProxyHeaderError(f"PROXY v2 version {ver_cmd >> 4}")
    cmd = ver_cmd & 0x0F
    body = data[16:]
    if cmd == 0:  # LOCAL: a health check from the proxy itself
        return ProxyInfo(2)
    if cmd != 1:
        raise ProxyHeaderError(f"PROXY v2 command {cmd}")
    af, proto = fam >> 4, fam & 0x0F
    if af == 1 and len(body) >= 12:
        src = str(ipaddress.IPv4Address(body[0:4]))
        dst = str(ipaddress.IPv4Address(body[4:8]))
        sport, dport = struct.unpack_from("!HH", body, 8)
        tlvs = body[12:]
    elif af == 2 and len(body) >= 36:
        src = str(ipaddress.IPv6Address(body[0:16]))
        dst = str(ipaddress.IPv6Address(body[16:32]))
        sport, dport = struct.unpack_from("!HH", body, 32)
        tlvs = body[36:]
    elif af in (0, 3):  # UNSPEC or unix socket: no usable IP address
        return ProxyInfo(2)
    else:
        raise ProxyHeaderError(f"PROXY v2 address block too short for family {af}")
    if proto not in (0, 1):  # STREAM; 0 = UNSPEC is tolerated
        raise ProxyHeaderError("PROXY v2 header is not for a stream connection")
    return ProxyInfo(2, (src, sport), (dst, dport), _ssl_cn(tlvs))


def _tlvs(data: bytes):
    i = 0
    while i + 3 <= len(data):
        t, ln = data[i], struct.unpack_from("!H", data, i + 1)[0]
        yield t, data[i + 3:i + 3 + ln]
        i += 3 + ln


def _ssl_cn(tlvs: bytes) -> str | None:
    for t, v in _tlvs(tlvs):
        if t == PP2_TYPE_SSL and len(v) >= 5:
            # client(1) verify(4) then sub-TLVs; verify == 0 means the proxy verified the cert
            if v[0] & 0x01 and struct.unpack_from("!I", v, 1)[0] == 0:
                for st, sv in _tlvs(v[5:]):
                    if st == PP2_SUBTYPE_SSL_CN:
                        return sv.decode("utf-8", "replace")
    return None


async def read_header(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> ProxyInfo:
    """Consume exactly the PROXY header from `sock` (non-blocking); EOFError if it closes."""
    parser = HeaderParser()
    fd = sock.fileno()
    while parser.result is None:
        try:
            peeked = sock.recv(V2_MAX, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            fut = loop.create_future()
            loop.add_reader(fd, lambda: fut.done() or fut.set_result(None))
            try:
                await fut
            finally:
                loop.remove_reader(fd)
            continue
        if not peeked:
            raise EOFError("connection closed before the PROXY header")
        take = parser.wanted(peeked)
        got = 0
        while got < take:  # the bytes were peeked, so these reads do not block
            got += len(sock.recv(take - got))
    return parser.result
