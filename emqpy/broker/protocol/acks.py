"""PUBACK, PUBREC, PUBREL and PUBCOMP from a client: the acknowledgements of QoS 1 and 2 flows
in both directions (the session keeps the state; this answers on the wire and counts)."""
from __future__ import annotations

from emqpy.broker.protocol.states import require_connected
from emqpy.broker.session import _INFLIGHT_TS, _MSG, _QOS
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
    broker = ch.broker
    c = broker.metrics.c
    c["packets.puback.received"] += 1
    if broker.completed_hooked:
        entry = ch.session.inflight.get(pid)
        if ch.session.on_puback(pid):
            _completed(ch, entry[_MSG], entry[_INFLIGHT_TS])
        else:
            c["packets.puback.missed"] += 1
    elif not ch.session.on_puback(pid):
        c["packets.puback.missed"] += 1


def handle_pubrec(ch, byte0: int, body) -> None:
    require_connected(ch)
    pkt = Pubrec.decode(byte0 & 0x0F, body, ch.version)
    c = ch.broker.metrics.c
    c["packets.pubrec.received"] += 1
    entry = ch.session.inflight.get(pkt.packet_id) if ch.broker.completed_hooked else None
    if entry is not None:
        entry = (entry[_MSG], entry[_INFLIGHT_TS], entry[_QOS])
    code = ch.session.on_pubrec(pkt.packet_id, pkt.reason_code)
    if entry is not None and code == 0 and entry[2] == 2 and entry[0] is not None:
        # (the session lets go of the message at PUBREC: kept here until PUBCOMP)
        if ch._completing is None:
            ch._completing = {}
        ch._completing[pkt.packet_id] = entry[:2]
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
    elif ch._completing:
        held = ch._completing.pop(pkt.packet_id, None)
        if held is not None and ch.broker.completed_hooked:
            _completed(ch, *held)


def _completed(ch, msg, sent_ns: int) -> None:
    """delivery.completed: a QoS 1/2 delivery ended with its last acknowledgement."""
    ch.broker.hooks.run("delivery.completed", msg, ch, sent_ns / 1e9)
