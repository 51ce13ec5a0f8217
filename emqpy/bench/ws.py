"""MQTT over WebSocket for the load tool (`--ws`), framing by wsproto.

A WsAdapter owns the real transport: it performs the HTTP upgrade (subprotocol "mqtt"), then
hands the MQTT client a transport-like shim whose writes become binary WebSocket messages, and
copies received message bytes into the client's receive buffer. Slower than raw TCP (wsproto
works per frame), which is inherent to measuring WebSocket listeners anyway.
"""
from __future__ import annotations

import asyncio

from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Message, Ping,
                            RejectConnection, Request, TextMessage)


class _Shim:
    """What the MQTT client sees as its transport."""

    def __init__(self, adapter: "WsAdapter"):
        self.a = adapter

    def write(self, data):
        a = self.a
        if a.transport is not None and not a.transport.is_closing():
            a.transport.write(a.ws.send(Message(data=bytes(data))))

    def close(self):
        a = self.a
        if a.transport is not None and not a.transport.is_closing():
            try:
                a.transport.write(a.ws.send(CloseConnection(code=1000)))
            except Exception:  # wsproto refuses in some states; closing the socket suffices
                pass
            a.transport.close()

    def is_closing(self):
        return self.a.transport is None or self.a.transport.is_closing()

    def get_extra_info(self, name, default=None):
        return self.a.transport.get_extra_info(name, default) if self.a.transport else default

    def set_write_buffer_limits(self, high=None, low=None):
        if self.a.transport is not None:
            self.a.transport.set_write_buffer_limits(high=high, low=low)


class WsAdapter(asyncio.Protocol):
    def __init__(self, client, host: str, path: str, upgraded: asyncio.Future):
        self.client, self.host, self.path = client, host, path
        self.upgraded = upgraded
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.transport = None
        self.open = False

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.ws.send(Request(host=self.host, target=self.path,
                                             subprotocols=["mqtt"])))

    def data_received(self, data):
        self.ws.receive_data(data)
        for ev in self.ws.events():
            if isinstance(ev, AcceptConnection):
                self.open = True
                self.client.connection_made(_Shim(self))
                if not self.upgraded.done():
                    self.upgraded.set_result(True)
            elif isinstance(ev, RejectConnection):
                if not self.upgraded.done():
                    self.upgraded.set_exception(ConnectionError(
                        f"WebSocket upgrade refused ({getattr(ev, 'status_code', '?')})"))
                self.transport.close()
            elif isinstance(ev, (BytesMessage, TextMessage)):
                data = ev.data if isinstance(ev, BytesMessage) else ev.data.encode()
                self._feed(data)
            elif isinstance(ev, Ping):
                self.transport.write(self.ws.send(ev.response()))
            elif isinstance(ev, CloseConnection):
                try:
                    self.transport.write(self.ws.send(ev.response()))
                except Exception:
                    pass
                self.transport.close()

    def _feed(self, data: bytes):
        c = self.client
        view = memoryview(data)
        while view:
            buf = c.get_buffer(len(view))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            view = view[n:]
            c.buffer_updated(n)

    def pause_writing(self):
        self.client.pause_writing()

    def resume_writing(self):
        self.client.resume_writing()

    def connection_lost(self, exc):
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError("closed during WebSocket upgrade"))
        if self.open:
            self.client.connection_lost(exc)
        self.transport = None


async def open_ws(loop, client, spec, ssl_ctx):
    upgraded = loop.create_future()
    await loop.create_connection(
        lambda: WsAdapter(client, f"{spec.host}:{spec.port}", spec.ws_path, upgraded),
        spec.host, spec.port, ssl=ssl_ctx, server_hostname=spec.host if ssl_ctx else None)
    await upgraded
