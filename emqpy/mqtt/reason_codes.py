"""MQTT packet types and reason codes (MQTT 5.0 section 2.4, plus the 3.1.1 CONNACK codes)."""

# Packet types (fixed header high nibble).
CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
SUBSCRIBE = 8
SUBACK = 9
UNSUBSCRIBE = 10
UNSUBACK = 11
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14
AUTH = 15

PACKET_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
    7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
    12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH",
}

# Protocol levels.
MQTT31 = 3
MQTT311 = 4
MQTT5 = 5

# MQTT 5 reason codes.
SUCCESS = 0x00
NORMAL_DISCONNECTION = 0x00
GRANTED_QOS_0 = 0x00
GRANTED_QOS_1 = 0x01
GRANTED_QOS_2 = 0x02
DISCONNECT_WITH_WILL = 0x04
NO_MATCHING_SUBSCRIBERS = 0x10
NO_SUBSCRIPTION_EXISTED = 0x11
CONTINUE_AUTHENTICATION = 0x18
REAUTHENTICATE = 0x19
UNSPECIFIED_ERROR = 0x80
MALFORMED_PACKET = 0x81
PROTOCOL_ERROR = 0x82
IMPLEMENTATION_SPECIFIC_ERROR = 0x83
UNSUPPORTED_PROTOCOL_VERSION = 0x84
CLIENT_IDENTIFIER_NOT_VALID = 0x85
BAD_USERNAME_OR_PASSWORD = 0x86
NOT_AUTHORIZED = 0x87
SERVER_UNAVAILABLE = 0x88
SERVER_BUSY = 0x89
BANNED = 0x8A
SERVER_SHUTTING_DOWN = 0x8B
BAD_AUTHENTICATION_METHOD = 0x8C
KEEP_ALIVE_TIMEOUT = 0x8D
SESSION_TAKEN_OVER = 0x8E
TOPIC_FILTER_INVALID = 0x8F
TOPIC_NAME_INVALID = 0x90
PACKET_IDENTIFIER_IN_USE = 0x91
PACKET_IDENTIFIER_NOT_FOUND = 0x92
RECEIVE_MAXIMUM_EXCEEDED = 0x93
TOPIC_ALIAS_INVALID = 0x94
PACKET_TOO_LARGE = 0x95
MESSAGE_RATE_TOO_HIGH = 0x96
QUOTA_EXCEEDED = 0x97
ADMINISTRATIVE_ACTION = 0x98
PAYLOAD_FORMAT_INVALID = 0x99
RETAIN_NOT_SUPPORTED = 0x9A
QOS_NOT_SUPPORTED = 0x9B
USE_ANOTHER_SERVER = 0x9C
SERVER_MOVED = 0x9D
SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E
CONNECTION_RATE_EXCEEDED = 0x9F
MAXIMUM_CONNECT_TIME = 0xA0
SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1
WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED = 0xA2

# MQTT 3.1 / 3.1.1 CONNACK return codes.
V3_ACCEPTED = 0x00
V3_UNACCEPTABLE_PROTOCOL_VERSION = 0x01
V3_IDENTIFIER_REJECTED = 0x02
V3_SERVER_UNAVAILABLE = 0x03
V3_BAD_USERNAME_OR_PASSWORD = 0x04
V3_NOT_AUTHORIZED = 0x05

# MQTT 3.1.1 SUBACK failure.
V3_SUBACK_FAILURE = 0x80


def connack_code_v3(v5_code: int) -> int:
    """Map an MQTT 5 CONNACK reason code to the closest 3.1.1 return code (as EMQX does)."""
    if v5_code == SUCCESS:
        return V3_ACCEPTED
    if v5_code == UNSUPPORTED_PROTOCOL_VERSION:
        return V3_UNACCEPTABLE_PROTOCOL_VERSION
    if v5_code == CLIENT_IDENTIFIER_NOT_VALID:
        return V3_IDENTIFIER_REJECTED
    if v5_code in (BAD_USERNAME_OR_PASSWORD, BAD_AUTHENTICATION_METHOD):
        return V3_BAD_USERNAME_OR_PASSWORD
    if v5_code in (NOT_AUTHORIZED, BANNED):
        return V3_NOT_AUTHORIZED
    return V3_SERVER_UNAVAILABLE


class MQTTError(Exception):
    """A protocol violation: the connection is closed, with `reason_code` sent first on MQTT 5."""

    def __init__(self, reason_code: int, message: str):
        super().__init__(message)
        self.reason_code = reason_code


def malformed(message: str) -> MQTTError:
    return MQTTError(MALFORMED_PACKET, message)


def protocol_error(message: str) -> MQTTError:
    return MQTTError(PROTOCOL_ERROR, message)


# EMQX's names of the MQTT 5 reason codes (emqx_reason_codes:name/1), as events show them.
_EMQX_NAMES = {
    0x00: "success", 0x01: "granted_qos1", 0x02: "granted_qos2",
    0x04: "disconnect_with_will_message", 0x10: "no_matching_subscribers",
    0x11: "no_subscription_existed", 0x18: "continue_authentication", 0x19: "re_authenticate",
    0x80: "unspecified_error", 0x81: "malformed_packet", 0x82: "protocol_error",
    0x83: "implementation_specific_error", 0x84: "unsupported_protocol_version",
    0x85: "client_identifier_not_valid", 0x86: "bad_username_or_password",
    0x87: "not_authorized", 0x88: "server_unavailable", 0x89: "server_busy", 0x8A: "banned",
    0x8B: "server_shutting_down", 0x8C: "bad_authentication_method",
    0x8D: "keepalive_timeout", 0x8E: "session_taken_over", 0x8F: "topic_filter_invalid",
    0x90: "topic_name_invalid", 0x91: "packet_identifier_inuse",
    0x92: "packet_identifier_not_found", 0x93: "receive_maximum_exceeded",
    0x94: "topic_alias_invalid", 0x95: "packet_too_large", 0x96: "message_rate_too_high",
    0x97: "quota_exceeded", 0x98: "administrative_action", 0x99: "payload_format_invalid",
    0x9A: "retain_not_supported", 0x9B: "qos_not_supported", 0x9C: "use_another_server",
    0x9D: "server_moved", 0x9E: "shared_subscriptions_not_supported",
    0x9F: "connection_rate_exceeded", 0xA0: "maximum_connect_time",
    0xA1: "subscription_identifiers_not_supported",
    0xA2: "wildcard_subscriptions_not_supported",
}


def emqx_name(code: int) -> str:
    """A reason code as EMQX names it (``0x87`` -> ``"not_authorized"``)."""
    return _EMQX_NAMES.get(code, "unknown_error")
