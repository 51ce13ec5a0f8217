"""MQTT over TCP (`tcp`) and over TLS (`ssl`); the shared machinery is in base.py."""
from __future__ import annotations

from emqpy.listeners.base import Listener, ListenerError

__all__ = ["TcpListener", "SslListener", "ListenerError"]


class TcpListener(Listener):
    type = "tcp"


class SslListener(Listener):
    type = "ssl"
    tls = True
