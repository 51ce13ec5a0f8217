"""How a CONNECT ends: the authentication result applied, then a CONNACK that accepts the
client (sent once the broker has attached its session) or refuses it."""
from __future__ import annotations

import time

from emqpy.broker.protocol.states import CONNECTED, reason_name
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.packets import Connack


def authenticated(ch, result) -> None:
    """`result` is 0 / None to accept, a reason code to refuse, or a dict of auth facts."""
    if isinstance(result, dict):
        ch.is_superuser = bool(result.get("is_superuser"))
        ch.client_attrs = result.get("client_attrs")
        ch._auth_data = result.get("auth_data")
        result = 0
    if result:
        ch.broker.metrics.c["authentication.failure"] += 1
        refuse(ch, result)
        return
    broker = ch.broker
    broker.metrics.c["authentication.success"] += 1
    if broker.cluster is not None:
        # a session on another node comes here first (CONNACK's session present flag)
        waiting = broker.cluster.sessions.take_before_connack(ch, ch.connect_pkt)
        if waiting is not None:
            ch.wait_for_io(waiting, (), lambda _task: broker.establish(ch, ch.connect_pkt))
            return
    broker.establish(ch, ch.connect_pkt)


def accepted(ch, session, present: bool, props: dict | None) -> None:
    """Called by the broker once the session is attached (Channel.accepted): send CONNACK
    (`props` are its MQTT 5 properties)."""
    ch.session = session
    ch.state = CONNECTED
    ch.connected_at = time.time()
    if session.drops:  # this connection's drop counters start from here (as in EMQX)
        ch._drops_base = dict(session.drops)
    broker = ch.broker
    if ch.version == 5:
        if ch._auth_method:
            props["authentication_method"] = ch._auth_method
            if ch._auth_data is not None:
                props["authentication_data"] = ch._auth_data
        if "client.connack" in broker.hooks._points:  # (may change the properties)
            broker.hooks.run("client.connack", ch, 0, props)
        ch.write(broker.connack_v5(present, props))
    else:
        if "client.connack" in broker.hooks._points:
            broker.hooks.run("client.connack", ch, 0, None)
        ch.write(b"\x20\x02\x01\x00" if present else b"\x20\x02\x00\x00")
    ch.send_other += 1
    c = broker.metrics.c
    c["packets.connack.sent"] += 1
    c["client.connack"] += 1


def refuse(ch, code: int) -> None:
    send_error_connack(ch, code, code if ch.version == 5 else rc.connack_code_v3(code))
    if code in (rc.BAD_USERNAME_OR_PASSWORD, rc.NOT_AUTHORIZED, rc.BAD_AUTHENTICATION_METHOD):
        ch.broker.metrics.c["packets.connack.auth_error"] += 1
    ch.close(None, reason_name(code))


def send_error_connack(ch, code: int, wire_code: int | None = None) -> None:
    """A CONNACK refusing the connection: `code` as the hooks see it (MQTT 5's reason codes),
    `wire_code` as the client's protocol spells it (default: the same)."""
    hooks = ch.broker.hooks
    if "client.connack" in hooks._points:
        hooks.run("client.connack", ch, code, None)
    ch.send_packet(Connack(False, code if wire_code is None else wire_code),
                   "packets.connack.error")
