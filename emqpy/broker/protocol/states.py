"""A connection's protocol states, and the names its closes are reported with (EMQX's
disconnect reasons, as `client.disconnected` hooks and the API see them)."""
from __future__ import annotations

from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.reason_codes import MQTTError

# NEW: socket open, no CONNECT yet; CONNECTING: CONNECT received, its authentication is under
# way (asynchronous, or an MQTT 5 AUTH exchange); CONNECTED: CONNACK sent; CLOSED: ended.
NEW, CONNECTING, CONNECTED, CLOSED = range(4)


def require_connected(ch) -> None:
    if ch.state != CONNECTED:
        raise MQTTError(rc.PROTOCOL_ERROR, "packet before CONNECT")


_REASON_NAMES = {
    rc.MALFORMED_PACKET: "malformed_packet", rc.PROTOCOL_ERROR: "protocol_error",
    rc.PACKET_TOO_LARGE: "frame_too_large", rc.TOPIC_ALIAS_INVALID: "topic_alias_invalid",
    rc.TOPIC_NAME_INVALID: "topic_name_invalid", rc.NOT_AUTHORIZED: "not_authorized",
    rc.BAD_USERNAME_OR_PASSWORD: "bad_username_or_password", rc.BANNED: "banned",
    rc.CLIENT_IDENTIFIER_NOT_VALID: "client_identifier_not_valid",
    rc.QOS_NOT_SUPPORTED: "qos_not_supported", rc.RETAIN_NOT_SUPPORTED: "retain_not_supported",
    rc.RECEIVE_MAXIMUM_EXCEEDED: "receive_maximum_exceeded",
    rc.KEEP_ALIVE_TIMEOUT: "keepalive_timeout", rc.SESSION_TAKEN_OVER: "takenover",
    rc.SERVER_SHUTTING_DOWN: "shutdown", rc.ADMINISTRATIVE_ACTION: "kicked",
    rc.DISCONNECT_WITH_WILL: "disconnect_with_will",
}


def reason_name(code: int) -> str:
    return _REASON_NAMES.get(code, f"reason_0x{code:02x}")
