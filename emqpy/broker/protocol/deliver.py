"""PUBLISH to a client (Channel.send_publish, called by its Session): the message's cached
wire form for this client's protocol, with the listener's mountpoint taken off the topic and
outgoing topic aliases assigned as EMQX does; too large for the client's Maximum Packet Size:
dropped. QoS 1/2 forms are a prefix/suffix pair around the packet id."""
from __future__ import annotations

from emqpy.broker.message import Message
from emqpy.mqtt.packets import Pubrel

_DUP_FLAG = 0x08


def send_publish(ch, msg, qos: int, retain: bool, sub_ids, pid: int, dup: bool = False,
                 publisher=None) -> int:
    """Queue a PUBLISH; returns 1 if sent, 0 if dropped as too large. `publisher`: the
    connection the message came from, held back while this one is congested."""
    v5 = ch.version == 5
    broker = ch.broker
    if not qos and broker.delivered_hooked:
        # (QoS 1/2: run by Session._send_new, which keeps what it sent for retransmission)
        msg = broker.hooks.fold("message.delivered", msg, ch) or msg
    if ch.mountpoint and msg.topic.startswith(ch.mountpoint):
        msg = _unmount(ch, msg)
    if ch.alias_max:
        w = _aliased_wire(ch, msg, qos, retain, sub_ids)
    else:
        w = msg.wire(v5, qos, retain, sub_ids if v5 else None)
    if qos:
        prefix, suffix = w
        if dup:
            prefix = bytes((prefix[0] | _DUP_FLAG,)) + prefix[1:]
        size = len(prefix) + 2 + len(suffix)
        if ch.client_max_packet and size > ch.client_max_packet:
            ch.session.count_drop("too_large", msg=msg)
            return 0
        ch.write(prefix + pid.to_bytes(2, "big") + suffix, publisher)
        if qos == 1:
            ch.send_q1 += 1
        else:
            ch.send_q2 += 1
    else:
        if ch.client_max_packet and len(w) > ch.client_max_packet:
            ch.session.count_drop("too_large", msg=msg)
            return 0
        ch.write(w, publisher)
    broker.metrics.sent_q[qos] += 1
    return 1


def send_pubrel(ch, pid: int, reason: int = 0) -> None:
    ch.send_packet(Pubrel(pid, reason), "packets.pubrel.sent")


def _aliased_wire(ch, msg, qos: int, retain: bool, sub_ids):
    """Outgoing topic aliases as EMQX assigns them: a new topic takes the next free alias and
    is sent with its name once; later PUBLISHes carry only the alias."""
    aliases = ch._out_aliases
    if aliases is None:
        aliases = ch._out_aliases = {}
    alias = aliases.get(msg.topic)
    send_topic = alias is None
    if alias is None and len(aliases) < ch.alias_max:
        alias = aliases[msg.topic] = len(aliases) + 1
    if alias is None:
        return msg.wire(True, qos, retain, sub_ids)
    return msg.encode_with(qos, retain, sub_ids, alias, send_topic)


def _unmount(ch, msg):
    m = Message(msg.topic[len(ch.mountpoint):], msg.payload, msg.qos, msg.retain, msg.props,
                msg.sender, msg.username, msg.peerhost, msg.timestamp)
    m.expire_at = msg.expire_at
    return m
