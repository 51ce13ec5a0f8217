"""MQTT over WebSocket and secure WebSocket: paho clients, the upgrade rules EMQX applies, and
frames cutting MQTT packets anywhere."""
from __future__ import annotations

import socket
import ssl

import pytest
from wsproto.events import CloseConnection, Ping, Pong, TextMessage

from support.rawmqtt import connect_packet
from support.waiting import WAIT, wait_until

from .helpers import RawWs, closed_by_peer

CONNACK_OK = b"\x20\x02\x00\x00"
SUBSCRIBE = b"\x82\x08\x00\x01\x00\x03a/b\x01"  # packet id 1, "a/b" at QoS 1
SUBACK = b"\x90\x03\x00\x01\x01"
PINGREQ, PINGRESP = b"\xc0\x00", b"\xd0\x00"

def _pair(msg) -> tuple:
    return msg.topic, msg.payload



def _ws(h, t="ws"):
    return h.broker.listeners[f"{t}:default"].port


def test_messages_cross_all_four_listener_types(make_broker, clients):
    h = make_broker()
    ca = h.broker.data_dir / "certs" / "cacert.pem"
    ports = {t: h.broker.listeners[f"{t}:default"].port for t in ("tcp", "ssl", "ws", "wss")}
    kinds = {"tcp": {}, "ssl": {"ca": ca}, "ws": {"transport": "websockets"},
             "wss": {"transport": "websockets", "ca": ca}}
    subs = {}
    for t, kw in kinds.items():
        c = clients(ports[t], client_id=f"sub-{t}", **kw)
        c.connect()
        assert c.subscribe(f"to/{t}")
        subs[t] = c
    pubs = {t: clients(ports[t], client_id=f"pub-{t}", **kw) for t, kw in kinds.items()}
    for c in pubs.values():
        c.connect()
    order = ["tcp", "ssl", "ws", "wss"]
    for i, src in enumerate(order):
        dst = order[(i + 1) % 4]
        pubs[src].publish(f"to/{dst}", f"{src}->{dst}".encode())
        assert _pair(subs[dst].get()) == (f"to/{dst}", f"{src}->{dst}".encode())
    assert {h.broker.channels[f"sub-{t}"].listener.id for t in order} == \
        {f"{t}:default" for t in order}


def test_packets_split_across_frames_and_packed_in_one(make_broker):
    h = make_broker()
    ws = RawWs(_ws(h))
    assert ws.status == 101 and ws.subprotocol == "mqtt"
    pkt = connect_packet("split-ws", version=4)
    for part in (pkt[:1], pkt[1:5], pkt[5:]):  # one CONNECT in three messages
        ws.send(part)
    assert ws.recv_frame() == CONNACK_OK
    ws.send(SUBSCRIBE + PINGREQ)  # two packets in one message
    got = b""
    while len(got) < len(SUBACK + PINGRESP):
        got += ws.recv_frame()
    assert got == SUBACK + PINGRESP
    ws.send_event(Ping(b"hi"))
    ev = ws.next_event()
    assert isinstance(ev, Pong) and bytes(ev.payload) == b"hi"
    ws.send_event(CloseConnection(code=1000))
    ev = ws.next_event()
    assert isinstance(ev, CloseConnection)
    wait_until(lambda: "split-ws" not in h.broker.channels)
    ws.close()


def test_piggyback_single_sends_one_packet_per_frame(make_broker):
    h = make_broker({"listeners": {"ws": {"default": {"websocket": {"mqtt_piggyback": "single"}}}}})
    ws = RawWs(_ws(h))
    ws.send(connect_packet("single", version=4) + SUBSCRIBE + PINGREQ)
    assert [ws.recv_frame() for _ in range(3)] == [CONNACK_OK, SUBACK, PINGRESP]
    ws.close()


def _http(port, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data
            data += chunk


def test_plain_http_request_is_answered_400_and_closed(make_broker, caplog):
    h = make_broker()
    resp = _http(_ws(h), b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 400")
    resp = _http(_ws(h), b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")  # raw MQTT on WS port
    assert resp.startswith(b"HTTP/1.1 400")
    lst = h.broker.listeners["ws:default"]
    assert lst.counters["ws_bad_request"] == 2
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("path,protos,status,chosen", [
    ("/other", ["mqtt"], 404, None),
    ("/mqtt", [], 400, None),                     # fail_if_no_subprotocol = true
    ("/mqtt", ["chat"], 400, None),
    ("/mqtt", ["chat", "mqttv3.1"], 101, "mqttv3.1"),
    ("/mqtt", ["mqttv5"], 101, "mqttv5"),
    ("/mqtt", ["mqtt-v5"], 101, "mqtt-v5"),
    ("/mqtt?x=1", ["mqtt"], 101, "mqtt"),
])
def test_upgrade_rules(make_broker, path, protos, status, chosen):
    h = make_broker()
    ws = RawWs(_ws(h), path=path, subprotocols=protos)
    assert (ws.status, ws.subprotocol) == (status, chosen)
    ws.close()


def test_no_subprotocol_allowed_when_configured(make_broker):
    h = make_broker({"listeners": {"ws": {"default": {"websocket": {
        "fail_if_no_subprotocol": False, "mqtt_path": "/ws"}}}}})
    ws = RawWs(_ws(h), path="/ws", subprotocols=[])
    assert ws.status == 101
    ws.send(connect_packet("noproto", version=4))
    assert ws.recv_frame() == CONNACK_OK
    ws.close()


def test_origin_check(make_broker):
    h = make_broker({"listeners": {"ws": {"default": {"websocket": {
        "check_origin_enable": True, "allow_origin_absence": False,
        "check_origins": "http://good.example, http://also.example"}}}}})
    port = _ws(h)
    assert RawWs(port, headers=[("Origin", "http://evil.example")]).status == 403
    assert RawWs(port).status == 403  # absent
    assert RawWs(port, headers=[("Origin", "http://also.example")]).status == 101
    assert h.broker.listeners["ws:default"].counters["ws_bad_origin"] == 2


def test_x_forwarded_for_sets_the_client_address(make_broker):
    h = make_broker()
    ws = RawWs(_ws(h), headers=[("X-Forwarded-For", "203.0.113.9, 10.0.0.1"),
                                ("X-Forwarded-Port", "40123")])
    ws.send(connect_packet("behind-lb", version=4))
    assert ws.recv_frame() == CONNACK_OK
    ch = wait_until(lambda: h.broker.channels.get("behind-lb"))
    assert (ch.peerhost, ch.peerport) == ("203.0.113.9", 40123)
    ws.close()


def test_client_that_never_sends_connect_is_closed_and_counted(make_broker):
    h = make_broker({"mqtt": {"idle_timeout": "1s"}})
    ws = RawWs(_ws(h))
    assert ws.status == 101
    ev = ws.next_event()
    assert isinstance(ev, CloseConnection) and ev.code == 1000
    lst = h.broker.listeners["ws:default"]
    wait_until(lambda: lst.counters["idle_timeout"] == 1)
    assert lst.current_connections == 0
    ws.close()
    with socket.create_connection(("127.0.0.1", _ws(h))) as s:  # no upgrade request at all
        assert closed_by_peer(s)
    wait_until(lambda: lst.counters["ws_handshake_timeout"] == 1)


def test_text_frame_closes_with_1003(make_broker):
    h = make_broker()
    ws = RawWs(_ws(h))
    ws.send_event(TextMessage(data="hello"))
    ev = ws.next_event()
    assert isinstance(ev, CloseConnection) and ev.code == 1003
    ws.close()


def test_frame_larger_than_max_frame_size(make_broker):
    h = make_broker({"listeners": {"ws": {"default": {"websocket": {"max_frame_size": 64}}}}})
    ws = RawWs(_ws(h))
    ws.send(connect_packet("x" * 100, version=4))
    ev = ws.next_event()
    assert isinstance(ev, CloseConnection) and ev.code == 1009
    ws.close()


def test_secure_websocket_raw(make_broker):
    h = make_broker()
    ctx = ssl.create_default_context(cafile=str(h.broker.data_dir / "certs" / "cacert.pem"))
    ws = RawWs(_ws(h, "wss"), ctx=ctx)
    assert ws.status == 101
    ws.send(connect_packet("wss-raw", version=4))
    assert ws.recv_frame() == CONNACK_OK
    ch = wait_until(lambda: h.broker.channels.get("wss-raw"))
    assert ch.listener.id == "wss:default"
    ws.close()


def test_frames_pipelined_behind_the_upgrade_request(make_broker):
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import Request
    from wsproto.frame_protocol import FrameProtocol

    h = make_broker()
    client = WSConnection(ConnectionType.CLIENT)
    request = client.send(Request(host="127.0.0.1", target="/mqtt", subprotocols=["mqtt"]))
    frame = FrameProtocol(client=True, extensions=[]).send_data(
        connect_packet("eager", version=4), fin=True)
    with socket.create_connection(("127.0.0.1", _ws(h)), timeout=WAIT) as s:
        s.sendall(request + frame)  # CONNECT in the same segment as the HTTP request
        data = b""
        while not data.endswith(b"\x82\x04" + CONNACK_OK):
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
    assert data.startswith(b"HTTP/1.1 101")


@pytest.mark.parametrize("compress", [True, False])
def test_permessage_deflate(make_broker, compress):
    from wsproto.extensions import PerMessageDeflate
    h = make_broker({"listeners": {"ws": {"default": {"websocket": {"compress": compress}}}}})
    ws = RawWs(_ws(h), extensions=[PerMessageDeflate()])
    assert [e.name for e in ws.accepted_extensions] == (["permessage-deflate"] if compress else [])
    ws.send(connect_packet("deflated", version=4) + SUBSCRIBE)
    got = b""
    while len(got) < len(CONNACK_OK + SUBACK):
        got += ws.recv_frame()
    assert got == CONNACK_OK + SUBACK
    ws.close()
