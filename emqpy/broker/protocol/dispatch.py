"""Which handler runs for each MQTT packet type (the first byte's high nibble), as
Channel._process calls them: handler(channel, first_byte, body)."""
from __future__ import annotations

from emqpy.broker.protocol.acks import handle_puback, handle_pubcomp, handle_pubrec, handle_pubrel
from emqpy.broker.protocol.auth import handle_auth
from emqpy.broker.protocol.connect import handle_connect
from emqpy.broker.protocol.disconnect import handle_disconnect
from emqpy.broker.protocol.keepalive import handle_pingreq
from emqpy.broker.protocol.publish import handle_publish
from emqpy.broker.protocol.subscribe import handle_subscribe, handle_unsubscribe
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.reason_codes import MQTTError


def _reserved(ch, byte0: int, body) -> None:
    raise MQTTError(rc.MALFORMED_PACKET, "reserved packet type 0")


def _server_only(ch, byte0: int, body) -> None:
    raise MQTTError(rc.PROTOCOL_ERROR, f"{rc.PACKET_NAMES.get(byte0 >> 4, 'reserved')} "
                                       "from a client")


HANDLERS = (
    _reserved,  # 0
    handle_connect,  # 1 CONNECT
    _server_only,  # 2 CONNACK
    handle_publish,  # 3 PUBLISH
    handle_puback,  # 4 PUBACK
    handle_pubrec,  # 5 PUBREC
    handle_pubrel,  # 6 PUBREL
    handle_pubcomp,  # 7 PUBCOMP
    handle_subscribe,  # 8 SUBSCRIBE
    _server_only,  # 9 SUBACK
    handle_unsubscribe,  # 10 UNSUBSCRIBE
    _server_only,  # 11 UNSUBACK
    handle_pingreq,  # 12 PINGREQ
    _server_only,  # 13 PINGRESP
    handle_disconnect,  # 14 DISCONNECT
    handle_auth,  # 15 AUTH
)
