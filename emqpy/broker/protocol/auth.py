"""MQTT 5 enhanced authentication (MQTT 5 4.12): the AUTH packet and the exchange it drives,
at CONNECT (with an Authentication Method) and for re-authentication of a connected client.

The exchange itself (SCRAM) is the authn feature's `broker.enhanced_auth` (start/step); this
module carries its answers on the wire: ("continue", data, state) sends AUTH 0x18 and waits
for the client's next AUTH; anything else is the final result.
"""
from __future__ import annotations

from emqpy.broker.protocol import keepalive
from emqpy.broker.protocol.connack import authenticated
from emqpy.broker.protocol.states import CONNECTED, CONNECTING, reason_name
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.packets import Auth, decode_packet
from emqpy.mqtt.reason_codes import MQTTError


def handle_auth(ch, byte0: int, body) -> None:
    pkt = decode_packet(byte0, body, ch.version)
    enhanced = ch.broker.enhanced_auth
    ch.broker.metrics.c["packets.auth.received"] += 1
    if ch.state == CONNECTING and ch._auth_state is not None:
        if pkt.reason_code != rc.CONTINUE_AUTHENTICATION or \
                pkt.props.get("authentication_method") != ch._auth_method:
            raise MQTTError(rc.PROTOCOL_ERROR, "unexpected AUTH during authentication")
        enhanced_answer(ch, enhanced.step(ch, pkt.props.get("authentication_data"),
                                          ch._auth_state))
        return
    if ch.state == CONNECTED and ch._auth_method:  # re-authentication (MQTT 5 4.12.1)
        if pkt.props.get("authentication_method") != ch._auth_method:
            raise MQTTError(rc.PROTOCOL_ERROR, "re-authentication with another method")
        data = pkt.props.get("authentication_data")
        if pkt.reason_code == rc.REAUTHENTICATE and ch._auth_state is None:
            enhanced_answer(ch, enhanced.start(ch, ch.connect_pkt, ch._auth_method, data))
            return
        if pkt.reason_code == rc.CONTINUE_AUTHENTICATION and ch._auth_state is not None:
            enhanced_answer(ch, enhanced.step(ch, data, ch._auth_state))
            return
    raise MQTTError(rc.PROTOCOL_ERROR, "AUTH without enhanced authentication")


def enhanced_answer(ch, result) -> None:
    """Carry out one answer of the enhanced authenticator (see the module's docstring)."""
    if isinstance(result, tuple) and result and result[0] == "continue":
        ch._auth_state = result[2]
        ch.send_packet(Auth(rc.CONTINUE_AUTHENTICATION, {
            "authentication_method": ch._auth_method, "authentication_data": result[1]}),
            "packets.auth.sent")
        idle = ch.broker.idle_timeout
        if ch.state == CONNECTING and idle:
            keepalive.file_deadline(ch, idle)  # a client that never answers is dropped
        return
    ch._auth_state = None
    if ch.state == CONNECTING:
        keepalive.drop_deadline(ch)
    if ch.state == CONNECTED:  # re-authentication: AUTH 0x00 or DISCONNECT
        if isinstance(result, dict):
            ch.is_superuser = bool(result.get("is_superuser"))
            props = {"authentication_method": ch._auth_method}
            if result.get("auth_data") is not None:
                props["authentication_data"] = result["auth_data"]
            ch.send_packet(Auth(rc.SUCCESS, props), "packets.auth.sent")
        else:
            ch.close(result or rc.NOT_AUTHORIZED, reason_name(result or rc.NOT_AUTHORIZED))
        return
    authenticated(ch, result)
