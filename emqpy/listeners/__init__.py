"""Transports that feed bytes to channels: TCP now; TLS and WebSocket follow."""
from __future__ import annotations

from emqpy.listeners.tcp import TcpListener

LISTENER_TYPES = {"tcp": TcpListener}


async def start_listeners(broker) -> None:
    """Start every enabled listener of a type emqpy implements."""
    for ltype, cls in LISTENER_TYPES.items():
        for name, cfg in getattr(broker.config.listeners, ltype).items():
            if not cfg.enable:
                continue
            lst = cls(broker, name, cfg)
            await lst.start()
            broker.listeners[lst.id] = lst
