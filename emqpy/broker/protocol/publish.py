"""PUBLISH from a client: the inline path for plain QoS 0/1 messages, and the general one
(topic alias, validation, limits, mountpoint, authorization, QoS 2's awaiting-PUBREL state).

The publishing channel passes itself to `Broker.publish`, so that a congested subscriber can
hold back the publisher that fed it (broker/output.py).
"""
from __future__ import annotations

import time

from emqpy.broker.message import Message
from emqpy.broker.protocol.states import CONNECTED
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.packets import Puback, Pubrec, Publish, fixed_header, parse_plain_publish
from emqpy.mqtt.properties import has_invalid_utf8
from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import validate_topic_name


def handle_publish(ch, byte0: int, body) -> None:
    if (byte0 == 0x30 or byte0 == 0x32) and ch.state == CONNECTED \
            and not ch.mountpoint and ch.broker.authorize is None \
            and _fast_publish(ch, byte0 == 0x32, body):
        return
    if ch.state != CONNECTED:
        raise MQTTError(rc.PROTOCOL_ERROR, "PUBLISH before CONNECT")
    pkt = Publish.decode(byte0 & 0x0F, body, ch.version)
    topic = pkt.topic
    props = pkt.props
    broker = ch.broker
    if props is not None:
        if broker.strict_mode and has_invalid_utf8(props):
            raise MQTTError(rc.MALFORMED_PACKET, "property is not valid UTF-8")
        if "subscription_identifier" in props:
            raise MQTTError(rc.PROTOCOL_ERROR, "subscription identifier from a client")
        alias = props.get("topic_alias")
        if alias is not None:
            topic = _resolve_alias(ch, alias, topic)
            props = {k: v for k, v in props.items() if k != "topic_alias"} or None
        elif not props:
            props = None
    qos = pkt.qos
    try:
        validate_topic_name(topic, broker.max_topic_levels)
    except MQTTError:
        broker.metrics.c["packets.publish.error"] += 1
        raise
    if qos > broker.max_qos_allowed:
        raise MQTTError(rc.QOS_NOT_SUPPORTED, "QoS not supported")
    if pkt.retain and not broker.retain_available:
        raise MQTTError(rc.RETAIN_NOT_SUPPORTED, "retain not supported")
    if props is not None and props.get("payload_format_indicator") == 1 and \
            broker.strict_mode:
        try:
            pkt.payload.decode("utf-8")
        except UnicodeDecodeError:
            raise MQTTError(rc.PAYLOAD_FORMAT_INVALID, "payload is not UTF-8") from None
    if ch.mountpoint:
        topic = ch.mountpoint + topic
    if broker.authorize is not None:  # (superusers too: authorization counts them)
        # (checked before counting: a check that must wait replays this packet)
        if not broker.authorize(ch, "publish", topic, qos, pkt.retain):
            broker.metrics.recv_q[qos] += 1
            broker.metrics.c["packets.publish.auth_error"] += 1
            _publish_denied(ch, qos, pkt.packet_id)
            return
    broker.metrics.recv_q[qos] += 1
    msg = Message(topic, pkt.payload, qos, pkt.retain, props, ch.clientid, ch.username,
                  ch.peerhost)
    if qos == 0:
        # Without a topic alias, mountpoint or expiry to rewrite, an outgoing QoS 0 PUBLISH
        # of the same protocol family has exactly this body: forward it as is.
        if props is pkt.props and not ch.mountpoint and msg.expire_at is None:
            msg.raw_body = body
            msg.raw_v5 = ch.version == 5
        broker.publish(msg, ch)
        return
    pid = pkt.packet_id
    if qos == 1:
        n = broker.publish(msg, ch)
        broker.metrics.c["packets.puback.sent"] += 1
        ch.send_other += 1
        if n or ch.version != 5:
            ch.write(b"\x40\x02" + pid.to_bytes(2, "big"))
        else:
            ch.write(Puback(pid, rc.NO_MATCHING_SUBSCRIBERS).encode(5))
        return
    awaiting = ch.session.awaiting_rel
    if pid in awaiting and time.monotonic() - awaiting[pid] > broker.await_rel_timeout:
        del awaiting[pid]  # forgotten after await_rel_timeout: a fresh flow
        ch.session.count_drop("await_pubrel_timeout")
    if pid in awaiting:  # a retransmission: acknowledge again, do not publish twice
        broker.metrics.c["packets.publish.inuse"] += 1
        ch.send_packet(Pubrec(pid, rc.PACKET_IDENTIFIER_IN_USE if ch.version == 5 else 0),
                       "packets.pubrec.sent")
        return
    if len(awaiting) >= broker.max_awaiting_rel:
        broker.expire_awaiting_rel(ch.session)
        if len(awaiting) >= broker.max_awaiting_rel:
            broker.metrics.c["packets.publish.dropped"] += 1
            raise MQTTError(rc.RECEIVE_MAXIMUM_EXCEEDED,
                            "too many QoS 2 messages awaiting PUBREL")
    n = broker.publish(msg, ch)
    awaiting[pid] = time.monotonic()
    if ch.session.journal is not None:  # (kept with the session before our PUBREC)
        ch.session.journal.touch(ch.session)
    ch.send_packet(Pubrec(pid, 0 if n or ch.version != 5 else rc.NO_MATCHING_SUBSCRIBERS),
                   "packets.pubrec.sent")


def _fast_publish(ch, qos1: bool, body) -> bool:
    """The most common PUBLISHes (QoS 0 or 1, no retain, no topic alias or expiry) decoded
    inline, with the incoming body reused as the outgoing one for subscribers of the same
    protocol family. Returns False for anything unusual: the general path handles it (and
    reports the error)."""
    broker = ch.broker
    v5 = ch.version == 5
    parsed = parse_plain_publish(body, qos1, v5, broker.strict_mode, broker.max_topic_levels)
    if parsed is None:
        return False
    topic, payload, props, end, pid = parsed
    if not qos1:
        broker.metrics.recv_q[0] += 1
        msg = Message(topic, payload, 0, False, None, ch.clientid, ch.username, ch.peerhost)
        if props is not None:
            msg.lazy_props(props)
        msg.raw_body = body
        msg.raw_v5 = v5
        broker.publish(msg, ch)
        return True
    if not pid or broker.max_qos_allowed < 1:
        return False
    broker.metrics.recv_q[1] += 1
    msg = Message(topic, payload, 1, False, None, ch.clientid, ch.username, ch.peerhost)
    if props is not None:
        msg.lazy_props(props)
    # A QoS 1 subscriber of the same family gets this very body around its own packet id:
    # seed that wire form instead of encoding it again.
    msg.seed_wire(10 if v5 else 2,
                  (fixed_header(0x32, len(body)) + body[:end], body[end + 2:]))
    n = broker.publish(msg, ch)
    broker.metrics.c["packets.puback.sent"] += 1
    ch.send_other += 1
    if n or not v5:
        ch.write(b"\x40\x02" + body[end:end + 2])
    else:
        ch.write(Puback(pid, rc.NO_MATCHING_SUBSCRIBERS).encode(5))
    return True


def _publish_denied(ch, qos: int, pid) -> None:
    if ch.broker.deny_action_disconnect:
        ch.close(rc.NOT_AUTHORIZED, "not_authorized")
        return
    if qos == 1:
        ch.send_packet(Puback(pid, rc.NOT_AUTHORIZED if ch.version == 5 else 0),
                       "packets.puback.sent")
    elif qos == 2:
        ch.send_packet(Pubrec(pid, rc.NOT_AUTHORIZED if ch.version == 5 else 0),
                       "packets.pubrec.sent")


def _resolve_alias(ch, alias: int, topic: str) -> str:
    """An incoming Topic Alias (MQTT 5 3.3.2.3.4): a topic name sets it, an empty one uses
    it."""
    if alias == 0 or alias > ch.broker.config.mqtt.max_topic_alias:
        raise MQTTError(rc.TOPIC_ALIAS_INVALID, "topic alias out of range")
    aliases = ch._aliases
    if aliases is None:
        aliases = ch._aliases = {}
    if topic:
        aliases[alias] = topic
        return topic
    found = aliases.get(alias)
    if found is None:
        raise MQTTError(rc.PROTOCOL_ERROR, "unknown topic alias")
    return found
