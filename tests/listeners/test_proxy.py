"""PROXY protocol v1/v2 in front of tcp and ssl listeners: the client's real address survives a
load balancer; bad or missing headers are closed and counted."""
from __future__ import annotations

import ipaddress
import socket
import ssl
import struct

import pytest

from emqpy.listeners.proxy import HeaderParser, ProxyHeaderError

from support.rawmqtt import connect_packet
from support.waiting import WAIT, wait_until

from .helpers import closed_by_peer, recv_exactly

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
CONNACK_OK = b"\x20\x02\x00\x00"


def v1(src="198.51.100.7", dst="192.0.2.1", sport=51234, dport=1883, fam="TCP4") -> bytes:
    return f"PROXY {fam} {src} {dst} {sport} {dport}\r\n".encode()


def tlv(t: int, value: bytes) -> bytes:
    return bytes((t,)) + struct.pack("!H", len(value)) + value


def v2(src="198.51.100.7", dst="192.0.2.1", sport=51234, dport=1883, cmd=1, tlvs=b"") -> bytes:
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    fam = 0x11 if a.version == 4 else 0x21
    body = a.packed + b.packed + struct.pack("!HH", sport, dport) + tlvs
    return SIG + bytes((0x20 | cmd, fam)) + struct.pack("!H", len(body)) + body


def ssl_cn_tlv(cn: str) -> bytes:
    # PP2_TYPE_SSL: client flags (SSL | CERT_CONN), verify = 0 (ok), then the CN sub-TLV.
    return tlv(0x20, b"\x03" + b"\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3") + tlv(0x22, cn.encode()))


def parse_all(data: bytes, step: int):
    p = HeaderParser()
    i = 0
    while p.result is None:
        take = p.wanted(data[i:i + step])
        assert take > 0
        i += take
    return p.result, i


@pytest.mark.parametrize("step", [1, 3, 4096])
def test_parser_consumes_exactly_the_header(step):
    for header in (v1(), v1("2001:db8::1", "2001:db8::2", fam="TCP6"), v2(),
                   v2("2001:db8::1", "2001:db8::2"), v2(tlvs=ssl_cn_tlv("dev-7"))):
        info, used = parse_all(header + b"\x10MQTT...", step)
        assert used == len(header)
        assert info.src[1] == 51234 and info.dst[1] == 1883
    info, _ = parse_all(v2(tlvs=ssl_cn_tlv("dev-7")), step)
    assert info.ssl_cn == "dev-7" and info.src == ("198.51.100.7", 51234)
    info, _ = parse_all(b"PROXY UNKNOWN\r\n", step)
    assert info.src is None
    info, _ = parse_all(v2(cmd=0), step)  # LOCAL: health check from the proxy itself
    assert info.src is None and info.version == 2


@pytest.mark.parametrize("bad", [
    b"\x10\x0c\x00\x04MQTT",                       # no header at all
    b"PROXY TCP4 1.2.3.4 5.6.7.8 70000 1\r\n",      # port out of range
    b"PROXY TCP4 1.2.3.4 ::1 1 1\r\n",              # mixed families
    b"PROXY TCP9 1.2.3.4 5.6.7.8 1 1\r\n",
    b"PROXY TCP4 " + b"1" * 120,                    # no CRLF within 107 bytes
    SIG + b"\x31\x11\x00\x0c" + bytes(12),          # version 3
])
def test_parser_rejects(bad):
    with pytest.raises(ProxyHeaderError):
        parse_all(bad, 4096)


def _proxy_broker(make_broker, **extra):
    return make_broker({"listeners": {
        "tcp": {"default": {"proxy_protocol": True, "proxy_protocol_timeout": "1s"}},
        "ssl": {"default": {"proxy_protocol": True}}}, **extra})


@pytest.mark.parametrize("header", [v1(), v2()], ids=["v1", "v2"])
def test_tcp_with_proxy_header(make_broker, header):
    h = _proxy_broker(make_broker)
    with socket.create_connection(("127.0.0.1", h.port), timeout=WAIT) as s:
        # header and CONNECT in one segment
        s.sendall(header + connect_packet("lb-client", version=4))
        assert recv_exactly(s, 4) == CONNACK_OK
        ch = wait_until(lambda: h.broker.channels.get("lb-client"))
        assert (ch.peerhost, ch.peerport, ch.sockport) == ("198.51.100.7", 51234, 1883)


def test_ipv6_source_and_header_in_pieces(make_broker):
    h = _proxy_broker(make_broker)
    header = v2("2001:db8::42", "2001:db8::1", 4242, 8883)
    with socket.create_connection(("127.0.0.1", h.port), timeout=WAIT) as s:
        s.sendall(header[:10])
        s.sendall(header[10:20])
        s.sendall(header[20:] + connect_packet("v6-client", version=4))
        assert recv_exactly(s, 4) == CONNACK_OK
        ch = wait_until(lambda: h.broker.channels.get("v6-client"))
        assert (ch.peerhost, ch.peerport) == ("2001:db8::42", 4242)


def test_ssl_with_proxy_header_before_tls(make_broker):
    h = _proxy_broker(make_broker)
    port = h.broker.listeners["ssl:default"].port
    ctx = ssl.create_default_context(cafile=str(h.broker.data_dir / "certs" / "cacert.pem"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    raw.sendall(v2("198.51.100.99", "192.0.2.1", 60000, 8883))
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:  # ClientHello follows at once
        s.sendall(connect_packet("tls-behind-lb", version=4))
        assert recv_exactly(s, 4) == CONNACK_OK
        ch = wait_until(lambda: h.broker.channels.get("tls-behind-lb"))
        assert (ch.peerhost, ch.peerport, ch.listener.id) == ("198.51.100.99", 60000,
                                                              "ssl:default")


def test_proxy_ssl_cn_as_username(make_broker):
    h = _proxy_broker(make_broker, mqtt={"peer_cert_as_username": "cn"})
    with socket.create_connection(("127.0.0.1", h.port), timeout=WAIT) as s:
        s.sendall(v2(tlvs=ssl_cn_tlv("meter-0042"))
                  + connect_packet("meter", version=4, username="from-packet"))
        assert recv_exactly(s, 4) == CONNACK_OK
        ch = wait_until(lambda: h.broker.channels.get("meter"))
        assert ch.username == "meter-0042"


def test_missing_bad_and_late_headers_are_closed_and_counted(make_broker, caplog):
    h = _proxy_broker(make_broker)
    lst = h.broker.listeners["tcp:default"]
    with socket.create_connection(("127.0.0.1", h.port), timeout=WAIT) as s:
        s.sendall(connect_packet("no-header", version=4))
        assert closed_by_peer(s)
    with socket.create_connection(("127.0.0.1", h.port), timeout=WAIT) as s:
        s.sendall(b"PROXY TCP4 garbage\r\n")
        assert closed_by_peer(s)
    with socket.create_connection(("127.0.0.1", h.port), timeout=WAIT) as s:
        assert closed_by_peer(s)  # says nothing: proxy_protocol_timeout (1s) closes it
    wait_until(lambda: lst.counters["proxy_header_error"] == 2)
    wait_until(lambda: lst.counters["proxy_header_timeout"] == 1)
    assert not h.broker.channels
    assert not [r for r in caplog.records if r.exc_info]
