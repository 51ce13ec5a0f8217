"""Keep alive: the handshake (idle) deadline before CONNECT, the keep-alive check after
CONNACK, and PINGREQ.

Deadlines are filed in the broker's one-second DeadlineWheel (broker/deadlines.py), which calls
`Channel.on_deadline`. A connection that received anything since the last check is alive
(`_recv_flag`, set by Channel.data_received).
"""
from __future__ import annotations

from emqpy.broker.protocol.states import CLOSED, CONNECTED, require_connected
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.reason_codes import MQTTError

_PINGRESP = b"\xd0\x00"


def file_deadline(ch, delay: float) -> None:
    """(Re)file the connection's one deadline `delay` seconds from now."""
    drop_deadline(ch)
    ch._deadline = ch.broker.deadlines.add(ch, delay)


def drop_deadline(ch) -> None:
    if ch._deadline is not None:
        ch.broker.deadlines.discard(ch, ch._deadline)
        ch._deadline = None


def start(ch, seconds: int) -> None:
    """Start the keep-alive check at CONNACK (Channel.start_keepalive). The handshake deadline
    filed when the socket opened usually falls before the first check: it then stays filed
    and, when it comes, files the first check (on_deadline), which spares the connect path two
    wheel updates."""
    ch.keepalive = seconds
    ch._recv_flag = False
    d = ch._deadline
    if seconds > 0:
        ch._ka_interval = seconds * ch.broker.keepalive_multiplier
        if d is None or d > (now := ch.broker.loop.time()) + ch._ka_interval:
            file_deadline(ch, ch._ka_interval)
            return
    elif d is None:
        return
    else:
        now = ch.broker.loop.time()
    ch._ka_start = now


def change(ch, seconds: int) -> None:
    """Change the keep-alive check of a connected client (Channel.set_keepalive, from the
    API)."""
    ch._ka_start = None
    drop_deadline(ch)
    start(ch, seconds)


def on_deadline(ch, second: int) -> None:
    """Called by the broker's DeadlineWheel (Channel.on_deadline): the idle timeout before
    CONNECT (and during enhanced authentication), then the keep-alive check every keep alive x
    multiplier."""
    if second != ch._deadline:
        return  # (not expected: a moved or dropped deadline leaves its bucket)
    ch._deadline = None  # the wheel has taken it out of its bucket
    if ch.state == CONNECTED:
        started = ch._ka_start
        if started is not None:  # the handshake deadline, kept at CONNECT (see start)
            ch._ka_start = None
            if ch.keepalive > 0:
                rest = started + ch._ka_interval - ch.broker.loop.time()
                ch._deadline = ch.broker.deadlines.add(ch, rest)
            return
        if ch._recv_flag:
            ch._recv_flag = False
            ch._deadline = ch.broker.deadlines.add(ch, ch._ka_interval)
        else:
            ch.close(rc.KEEP_ALIVE_TIMEOUT, "keepalive_timeout")
    elif ch.state != CLOSED:
        ch.close(None, "idle_timeout")


def handle_pingreq(ch, byte0: int, body) -> None:
    require_connected(ch)
    if byte0 & 0x0F or len(body):
        raise MQTTError(rc.MALFORMED_PACKET, "malformed PINGREQ")
    c = ch.broker.metrics.c
    c["packets.pingreq.received"] += 1
    c["packets.pingresp.sent"] += 1
    ch.send_other += 1
    ch.write(_PINGRESP)
