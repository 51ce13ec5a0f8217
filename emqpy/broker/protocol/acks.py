"""PUBACK, PUBREC, PUBREL and PUBCOMP from a client: the acknowledgements of QoS 1 and 2 flows
in both directions (the session keeps the state; this answers on the wire and counts)."""
from __future__ import annotations

from emqpy.broker.protocol.states import require_connected
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.packets import Puback, Pubcomp, Pubrec, Pubrel
from emqpy.mqtt.reason_codes import MQTTError


def handle_puback(ch, byte0: int, body) -> None:
    require_connected(ch)
    if byte0 == 0x40 and len(body) == 2:  # the usual 2-byte PUBACK, without an object
        pid = (body[0] << 8) | body[1]
        if not pid:
            raise MQTTError(rc.PROTOCOL_ERROR, "packet id 0")
    else:
        pid = Puback.decode(byte0 & 0x0F, body, ch.version).packet_id
    c = ch.broker.metrics.c
    c["packets.puback.received"] += 1
    if not ch.session.on_puback(pid):
        c["packets.puback.missed"] += 1


def handle_pubrec(ch, byte0: int, body) -> None:
    require_connected(ch)
    pkt = Pubrec.decode(byte0 & 0x0F, body, ch.version)
    c = ch.broker.metrics.c
    c["packets.pubrec.received"] += 1
    code = ch.session.on_pubrec(pkt.packet_id, pkt.reason_code)
    if code < 0:
        return
    if code:
        c["packets.pubrec.missed"] += 1
    ch.send_pubrel(pkt.packet_id, code if ch.version == 5 else 0)


def handle_pubrel(ch, byte0: int, body) -> None:
    require_connected(ch)
    pkt = Pubrel.decode(byte0 & 0x0F, body, ch.version)
    c = ch.broker.metrics.c
    c["packets.pubrel.received"] += 1
    sess = ch.session
    found = sess.awaiting_rel.pop(pkt.packet_id, None) is not None
    if found and sess.journal is not None:  # (forgotten on disk before our PUBCOMP)
        sess.journal.touch(sess)
    if not found:
        c["packets.pubrel.missed"] += 1
    code = 0 if found or ch.version != 5 else rc.PACKET_IDENTIFIER_NOT_FOUND
    ch.send_packet(Pubcomp(pkt.packet_id, code), "packets.pubcomp.sent")


def handle_pubcomp(ch, byte0: int, body) -> None:
    require_connected(ch)
    pkt = Pubcomp.decode(byte0 & 0x0F, body, ch.version)
    c = ch.broker.metrics.c
    c["packets.pubcomp.received"] += 1
    if not ch.session.on_pubcomp(pkt.packet_id):
        c["packets.pubcomp.missed"] += 1
