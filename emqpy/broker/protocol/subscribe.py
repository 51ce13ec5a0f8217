"""SUBSCRIBE and UNSUBSCRIBE: decode, authorization prefetch (which may pause the packet for
I/O before anything changes), the broker's subscription change, SUBACK/UNSUBACK, and the
retained messages that follow a SUBACK."""
from __future__ import annotations

from emqpy.broker.protocol.states import CLOSED, require_connected
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.packets import Suback, Subscribe, Unsuback, Unsubscribe


def handle_subscribe(ch, byte0: int, body) -> None:
    require_connected(ch)
    pkt = Subscribe.decode(byte0 & 0x0F, body, ch.version)
    broker = ch.broker
    prefetch = broker.authorize_prefetch
    if prefetch is not None:  # may raise Deferred before anything is subscribed or counted
        prefetch(ch, pkt.topics)
    broker.metrics.c["packets.subscribe.received"] += 1
    sub_id = None
    if pkt.props:
        ids = pkt.props.get("subscription_identifier")
        if ids:
            sub_id = ids[0]
    codes, retained = broker.subscribe(ch.session, pkt.topics, sub_id, ch, from_packet=True)
    if ch.state == CLOSED:
        return
    if ch.version != 5:
        codes = [c if c < 0x80 else rc.V3_SUBACK_FAILURE for c in codes]
    ch.send_packet(Suback(pkt.packet_id, codes), "packets.suback.sent")
    for deliver in retained:  # retained messages follow the SUBACK
        deliver()


def handle_unsubscribe(ch, byte0: int, body) -> None:
    require_connected(ch)
    pkt = Unsubscribe.decode(byte0 & 0x0F, body, ch.version)
    ch.broker.metrics.c["packets.unsubscribe.received"] += 1
    codes = ch.broker.unsubscribe(ch.session, pkt.topics, ch, from_packet=True)
    ch.send_packet(Unsuback(pkt.packet_id, codes), "packets.unsuback.sent")
