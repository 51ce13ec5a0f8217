"""MQTT over WebSocket (`ws`) and secure WebSocket (`wss`), RFC 6455, with wsproto.

`WsProtocol` runs on the TCP/TLS transport: it answers the HTTP upgrade as EMQX does (404 for
another path, 403 for a refused Origin, 400 without an acceptable subprotocol), then creates a
Channel and hands it a `WsTransport`. Binary frames in go to `channel.data_received` whatever
MQTT packet boundaries they cut; each channel flush goes out as one binary frame (or one frame
per packet with `mqtt_piggyback = single`).
"""
from __future__ import annotations

import asyncio
import functools
import logging
import struct

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection, BytesMessage, CloseConnection, Message, Ping, RejectConnection, Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from emqpy.broker.channel import CLOSED, Channel
from emqpy.listeners.base import Listener, apply_proxy_info

log = logging.getLogger("emqpy.listeners")

# Spellings clients use for the same subprotocols (Paho JS: "mqttv3.1"; others "mqttv3.1.1",
# "mqttv5"): accepted when the listener supports the EMQX spelling they stand for.
_ALIASES = {"mqttv3.1": "mqtt-v3", "mqttv3.1.1": "mqtt-v3.1.1", "mqttv5": "mqtt-v5",
            "mqtt-v3.1": "mqtt-v3"}
CLOSE_NORMAL, CLOSE_UNSUPPORTED_DATA, CLOSE_TOO_BIG, CLOSE_PROTOCOL_ERROR = 1000, 1003, 1009, 1002


def pick_subprotocol(offered: list[str], supported: list[str]) -> str | None:
    sup = {s.strip().lower() for s in supported}
    for p in offered:
        low = p.strip().lower()
        if low in sup or _ALIASES.get(low) in sup:
            return p
    return None


def frame_header(n: int) -> bytes:
    """Header of an unmasked final binary frame (servers never mask)."""
    if n < 126:
        return bytes((0x82, n))
    if n < 65536:
        return struct.pack("!BBH", 0x82, 126, n)
    return struct.pack("!BBQ", 0x82, 127, n)


def split_packets(data: bytes) -> list[bytes]:
    """Cut a run of whole MQTT packets at packet boundaries (for mqtt_piggyback = single)."""
    out, i, n = [], 0, len(data)
    while i < n:
        j, mult, length = i + 1, 1, 0
        while True:
            b = data[j]
            length += (b & 0x7F) * mult
            mult <<= 7
            j += 1
            if not b & 0x80:
                break
        out.append(data[i:j + length])
        i = j + length
    return out


class WsTransport(asyncio.Transport):
    """What a Channel sees: writes become WebSocket frames; the rest is the socket's."""

    def __init__(self, proto: "WsProtocol"):
        super().__init__()
        self._p = proto

    def write(self, data) -> None:
        self._p.send_binary(bytes(data))

    def close(self) -> None:
        self._p.close_ws(CLOSE_NORMAL)

    def abort(self) -> None:
        self._p.abort()

    def is_closing(self) -> bool:
        t = self._p.transport
        return self._p.closing or t is None or t.is_closing()

    def pause_reading(self) -> None:
        if self._p.transport is not None:
            self._p.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._p.transport is not None:
            self._p.transport.resume_reading()

    def is_reading(self) -> bool:
        t = self._p.transport
        return t is not None and t.is_reading()

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        if self._p.transport is not None:
            self._p.transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        t = self._p.transport
        return t.get_write_buffer_size() if t is not None else 0

    def get_extra_info(self, name, default=None):
        if name == "peername":
            return self._p.peername
        t = self._p.transport
        return t.get_extra_info(name, default) if t is not None else default


class WsProtocol(asyncio.Protocol):
    def __init__(self, listener: "WsListener", proxy=None):
        self.listener = listener
        self.proxy = proxy
        self.ws = WSConnection(ConnectionType.SERVER)
        self.transport = None
        self.channel: Channel | None = None
        self.peername = None
        self.closing = False
        self.raw_frames = True  # no extension: frames are built here, not by wsproto
        self.single = listener.cfg.websocket.mqtt_piggyback == "single"
        mfs = listener.cfg.websocket.max_frame_size
        self.max_frame = 0 if mfs == float("inf") else int(mfs)
        self.frame_len = 0
        self._timer = None
        self._got_data = False
        self._tail = b""  # last bytes of the upgrade request so far, to find its end

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peername = transport.get_extra_info("peername")
        lst = self.listener
        if lst.access_rules is not None and self.peername and self.proxy is None:
            from emqpy.listeners.base import access_allowed
            if not access_allowed(lst.access_rules, self.peername[0]):
                lst.counters["access_denied"] += 1
                transport.abort()
                return
        lst._pending.add(self)
        idle = lst.broker.idle_timeout
        if idle:  # the upgrade request must come in time
            self._timer = lst.broker.loop.call_later(idle, self._handshake_timeout)

    def data_received(self, data: bytes) -> None:
        self._got_data = True
        try:
            if self.channel is None:
                # wsproto's server drops bytes that follow the upgrade request in the same read
                # (a client may send frames right away): feed it the request alone, the rest
                # once the upgrade is accepted.
                probe = self._tail + data
                end = probe.find(b"\r\n\r\n")
                if end < 0:
                    self._tail = probe[-3:]
                    self.ws.receive_data(data)
                    self._handle_events()
                    return
                cut = end + 4 - len(self._tail)
                data, rest = data[:cut], data[cut:]
                self.ws.receive_data(data)
                if not self._handle_events() or self.closing or not rest:
                    return
                data = rest
            self.ws.receive_data(data)
            self._handle_events()
        except RemoteProtocolError as e:
            if self.channel is None:  # not an acceptable upgrade request: plain HTTP answer
                self.listener.counters["ws_bad_request"] += 1
                log.debug("listener %s: bad WebSocket upgrade from %s: %s", self.listener.id,
                          self.peername, e)
                self._reject(e.event_hint.status_code if e.event_hint else 400)
            else:
                self.listener.counters["ws_protocol_error"] += 1
                self.close_ws(CLOSE_PROTOCOL_ERROR, "protocol error")

    def _handle_events(self) -> bool:
        """Process the pending events; True if the upgrade was accepted among them."""
        upgraded = False
        for ev in self.ws.events():
            if isinstance(ev, BytesMessage):
                self._on_bytes(ev)
            elif isinstance(ev, Request):
                self._on_request(ev)
                upgraded = self.channel is not None
            elif isinstance(ev, Ping):
                self._send(ev.response())
            elif isinstance(ev, CloseConnection):
                self._on_close(ev)
            elif isinstance(ev, TextMessage):  # EMQX: unexpected_ws_frame
                self.listener.counters["ws_text_frame"] += 1
                self.close_ws(CLOSE_UNSUPPORTED_DATA, "MQTT needs binary frames")
            if self.closing:
                break
        return upgraded

    def connection_lost(self, exc) -> None:
        self._cancel_timer()
        self.listener._pending.discard(self)
        ch = self.channel
        self.transport = None
        self.closing = True
        if ch is not None:
            ch.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.channel is not None:
            self.channel.pause_writing()

    def resume_writing(self) -> None:
        if self.channel is not None:
            self.channel.resume_writing()

    def eof_received(self):
        return False

    # -- the upgrade -----------------------------------------------------------------------

    def _on_request(self, req: Request) -> None:
        lst = self.listener
        opts = lst.cfg.websocket
        path = req.target.split("?", 1)[0]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in req.extra_headers}
        if path != opts.mqtt_path:
            lst.counters["ws_bad_path"] += 1
            return self._reject(404)
        if opts.check_origin_enable:
            origin = headers.get("origin")
            if origin is None and not opts.allow_origin_absence or \
                    origin is not None and origin not in opts.check_origins:
                lst.counters["ws_bad_origin"] += 1
                return self._reject(403)
        subprotocol = None
        if req.subprotocols:
            subprotocol = pick_subprotocol(req.subprotocols, opts.supported_subprotocols)
            if subprotocol is None:
                lst.counters["ws_bad_subprotocol"] += 1
                return self._reject(400)
        elif opts.fail_if_no_subprotocol:
            lst.counters["ws_no_subprotocol"] += 1
            return self._reject(400)
        extensions = []
        if opts.compress and any("permessage-deflate" in str(e) for e in req.extensions):
            extensions = [PerMessageDeflate()]
            self.raw_frames = False
        self._send(AcceptConnection(subprotocol=subprotocol, extensions=extensions))
        self._cancel_timer()
        lst._pending.discard(self)
        if self.proxy is None:
            self.peername = _forwarded_peer(headers, opts, self.peername)
        ch = self.channel = lst._channel()
        ch.connection_made(WsTransport(self))
        apply_proxy_info(ch, self.proxy)
        if opts.idle_timeout and opts.idle_timeout != float("inf"):
            self._got_data = False
            self._timer = lst.broker.loop.call_later(opts.idle_timeout, self._idle_check)

    def _reject(self, status: int) -> None:
        try:
            data = self.ws.send(RejectConnection(status_code=status, has_body=False,
                                                 headers=[(b"connection", b"close")]))
        except LocalProtocolError:
            data = f"HTTP/1.1 {status} \r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
        if self.transport is not None:
            self.transport.write(data)
        self._shutdown()

    def _handshake_timeout(self) -> None:
        self._timer = None
        if self.channel is None and self.transport is not None:
            self.listener.counters["ws_handshake_timeout"] += 1
            self._shutdown()

    def _idle_check(self) -> None:
        """websocket.idle_timeout: close a connection that has sent nothing for that long."""
        self._timer = None
        if self.transport is None:
            return
        if self._got_data:
            self._got_data = False
            self._timer = self.listener.broker.loop.call_later(
                self.listener.cfg.websocket.idle_timeout, self._idle_check)
        else:
            self.close_ws(CLOSE_NORMAL, "idle timeout")

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- frames ----------------------------------------------------------------------------

    def _on_bytes(self, ev: BytesMessage) -> None:
        if self.max_frame:
            self.frame_len += len(ev.data)
            if self.frame_len > self.max_frame:
                self.listener.counters["ws_frame_too_large"] += 1
                self.close_ws(CLOSE_TOO_BIG, "frame too large")
                return
            if ev.frame_finished:
                self.frame_len = 0
        ch = self.channel
        if ch is not None and ev.data:
            ch.data_received(bytes(ev.data))

    def _on_close(self, ev: CloseConnection) -> None:
        if self.ws.state == ConnectionState.REMOTE_CLOSING:
            self._send(ev.response())
        self._shutdown()

    def send_binary(self, data: bytes) -> None:
        t = self.transport
        if t is None or self.closing:
            return
        chunks = split_packets(data) if self.single else (data,)
        if self.raw_frames:
            for c in chunks:
                t.write(frame_header(len(c)) + c)
        else:
            for c in chunks:
                self._send(Message(data=c))

    def _send(self, event) -> None:
        if self.transport is None:
            return
        try:
            self.transport.write(self.ws.send(event))
        except LocalProtocolError:
            pass  # the connection is already closing: nothing more may be sent

    def close_ws(self, code: int, reason: str | None = None) -> None:
        """Send a Close frame (once) and close the socket."""
        if self.closing:
            return
        if self.channel is not None and self.ws.state == ConnectionState.OPEN:
            self._send(CloseConnection(code=code, reason=reason))
        self._shutdown()

    def _shutdown(self) -> None:
        self.closing = True
        self._cancel_timer()
        self.listener._pending.discard(self)
        if self.transport is not None:
            self.transport.close()
        ch = self.channel
        if ch is not None and ch.state != CLOSED:  # the peer left: the channel's close path
            ch.close(None, "sock_closed")

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


def _forwarded_peer(headers: dict, opts, peer):
    """X-Forwarded-For / X-Forwarded-Port (first entry) behind a load balancer, as EMQX."""
    host, port = (peer[0], peer[1]) if peer else (None, None)
    xff = headers.get(opts.proxy_address_header.lower()) if opts.proxy_address_header else None
    if xff:
        first = xff.replace(" ", ",").split(",")
        first = [x for x in first if x]
        if first:
            import ipaddress
            try:
                host = str(ipaddress.ip_address(first[0].strip("[]")))
            except ValueError:
                pass
    xfp = headers.get(opts.proxy_port_header.lower()) if opts.proxy_port_header else None
    if xfp:
        first = [x for x in xfp.replace(" ", ",").split(",") if x]
        if first and first[0].isdigit() and int(first[0]) < 65536:
            port = int(first[0])
    return (host, port) if host is not None else peer


class WsListener(Listener):
    type = "ws"
    check_access_late = False

    def _inner(self, proxy=None):
        return WsProtocol(self, proxy)

    def _plain_factory(self):
        return functools.partial(WsProtocol, self, None)


class WssListener(WsListener):
    type = "wss"
    tls = True
