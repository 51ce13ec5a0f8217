"""Plain TCP listener."""
from __future__ import annotations

import asyncio
import math
import socket

from emqpy.broker.channel import Channel


class ListenerError(RuntimeError):
    pass


class TcpListener:
    type = "tcp"

    def __init__(self, broker, name: str, cfg):
        self.broker = broker
        self.name = name
        self.cfg = cfg
        self.server: asyncio.AbstractServer | None = None
        self.host = cfg.bind.host
        self.port = cfg.bind.port
        self.connections: set = set()
        self.mountpoint = cfg.mountpoint
        mc = cfg.max_connections
        self.max_connections = 0 if mc == math.inf else int(mc)

    @property
    def id(self) -> str:
        return f"{self.type}:{self.name}"

    @property
    def running(self) -> bool:
        return self.server is not None

    @property
    def current_connections(self) -> int:
        return len(self.connections)

    def _protocol(self):
        return Channel(self.broker, self)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        opts = self.cfg.tcp_options
        host = None if self.host in ("0.0.0.0", "::") else self.host
        try:
            self.server = await loop.create_server(
                self._protocol, host=host, port=self.port, backlog=opts.backlog,
                reuse_address=opts.reuseaddr, **self._server_kwargs())
        except OSError as e:
            raise ListenerError(f"listener {self.id} cannot bind {self.cfg.bind}: {e.strerror}") \
                from None
        sock = self.server.sockets[0]
        self.port = sock.getsockname()[1]
        if opts.nodelay:
            for s in self.server.sockets:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _server_kwargs(self) -> dict:
        return {}

    async def stop(self) -> None:
        if self.server is None:
            return
        self.server.close()
        for ch in list(self.connections):
            ch.close(None, "listener_stopped")
        self.server = None

    def on_connection_made(self, ch) -> None:
        self.connections.add(ch)
        if self.max_connections and len(self.connections) > self.max_connections:
            ch.close(None, "max_connections")

    def on_connection_lost(self, ch) -> None:
        self.connections.discard(ch)
