"""DISCONNECT from a client: MQTT 5's last Session Expiry change and whether the will is
sent, then the connection ends."""
from __future__ import annotations

from emqpy.broker.protocol.states import reason_name, require_connected
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.packets import Disconnect
from emqpy.mqtt.reason_codes import MQTTError


def handle_disconnect(ch, byte0: int, body) -> None:
    require_connected(ch)
    pkt = Disconnect.decode(byte0 & 0x0F, body, ch.version)
    ch.broker.metrics.c["packets.disconnect.received"] += 1
    if ch.version == 5:
        exp = pkt.props.get("session_expiry_interval")
        if exp is not None:
            if ch.expiry_interval == 0 and exp != 0:
                raise MQTTError(rc.PROTOCOL_ERROR, "session expiry changed from 0")
            ch.expiry_interval = exp
            ch.session.expiry_interval = exp
    if pkt.reason_code != rc.DISCONNECT_WITH_WILL:
        ch.will = None
    ch._close_reason = "normal" if pkt.reason_code == 0 else reason_name(pkt.reason_code)
    ch.flush_final()
    ch._closed(ch._close_reason)
    if ch.transport is not None:
        ch.transport.close()
