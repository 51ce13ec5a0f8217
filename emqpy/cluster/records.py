"""How forwarded messages travel between nodes (emqpy/cluster/link.py sends and receives
the batches): a batch for a node is one msgpack array, [sender node, bytes sent to the node
so far, record...], and a record is one of

- [*message_fields, filter, group]: any message (its properties as their encoded block);
- [*raw_fields, filter, group]: a QoS 0 message that kept the PUBLISH body it arrived with;
- a run (`Run`, RUN_RECORD items): consecutive QoS 0 messages of one publisher for one
  plain filter, as their PUBLISH packets back to back.
"""
from __future__ import annotations

import struct
import time

from emqpy.broker.message import Message
from emqpy.mqtt.packets import Publish, fixed_header, parse_plain_publish
from emqpy.mqtt.properties import decode_varint


def message_fields(msg: Message) -> list:
    """A message as msgpack-able fields (its properties as the encoded block)."""
    remaining = None
    if msg.expire_at is not None:
        remaining = max(0.0, msg.expire_at - time.monotonic())
    return [msg.topic, msg.payload, msg.qos, msg.retain, msg.props_block(), msg.sender,
            msg.username, msg.peerhost, msg.timestamp, msg.flags, remaining]


def message_from_record(rec: list) -> Message:
    """The message of a record [*message_fields, filter, group]."""
    topic, payload, qos, retain, props, sender, username, peerhost, ts, flags, remaining, _, _ \
        = rec
    msg = Message(topic, payload, qos, retain, None, sender, username, peerhost, ts)
    if props:
        msg.lazy_props(props)  # decoded only if something reads them
    if remaining is not None:
        msg.expire_at = time.monotonic() + remaining
    msg.flags = flags
    return msg


def pack_message(flt: str, group: str | None, msg: Message) -> list:
    return [*message_fields(msg), flt, group]


def unpack_message(rec: list) -> tuple[str, str | None, Message]:
    """A record of either form: (filter, group, message)."""
    msg = message_from_raw_record(rec) if len(rec) == 9 else message_from_record(rec)
    return rec[-2], rec[-1], msg


def message_from_raw_record(rec: list) -> Message:
    """The message of a record [*raw_fields, filter, group]: a QoS 0 message that arrived
    as a PUBLISH whose body every subscriber of its protocol family gets as it is, which the
    sender forwarded as that body (see `raw_fields`)."""
    body, v5, sender, username, peerhost, ts, flags, _, _ = rec
    parsed = parse_plain_publish(body, False, v5, False, 1 << 16)
    if parsed is not None:
        topic, payload, props, _, _ = parsed
        msg = Message(topic, payload, 0, False, None, sender, username, peerhost, ts)
        if props is not None:
            msg.lazy_props(props)
    else:  # (properties beyond the inline parser's: the full decoder)
        pkt = Publish.decode(0, body, 5 if v5 else 4)
        msg = Message(pkt.topic, pkt.payload, 0, False, pkt.props or None, sender, username,
                      peerhost, ts)
    msg.raw_body = body
    msg.raw_v5 = v5
    msg.flags = flags
    return msg


def raw_fields(msg: Message) -> list | None:
    """A QoS 0 message that kept its incoming PUBLISH body (`Message.raw_body`) as that body
    and the few fields it does not hold; None for any other message. The receiving node then
    skips both encoding its fields and encoding the PUBLISH for its subscribers."""
    body = msg.raw_body
    if body is None or msg.qos or msg.retain or msg.expire_at is not None:
        return None
    return [body, msg.raw_v5, msg.sender, msg.username, msg.peerhost, msg.timestamp, msg.flags]


class Batch:
    """The records queued for one node (see link.ClusterLink._queue), the last of them perhaps a
    run still growing (`Run`)."""
    __slots__ = ("data", "count", "run")

    def __init__(self):
        self.data = bytearray()
        self.count = 0
        self.run: Run | None = None


class Run:
    """Consecutive QoS 0 messages from one publisher, each kept as the PUBLISH packet it
    arrived as, for one plain filter on a node: the receiver writes the packets to each
    subscriber as one chunk (`Broker.fanout_qos0_frames`). A record
    [frames, timestamps, count, largest, v5, sender, username, peerhost, flags, filter, None]
    once closed (`record`)."""
    __slots__ = ("frames", "stamps", "largest", "flt", "publisher", "msg")

    def __init__(self, flt: str, msg: Message, publisher):
        self.frames = bytearray()
        self.stamps: list[float] = []
        self.largest = 0  # the largest body (the record says the largest packet)
        self.flt = flt
        self.publisher = publisher
        self.msg = msg  # the first one: its sender, username, peerhost, flags, family

    def record(self) -> list:
        msg = self.msg
        return [self.frames, struct.pack(f"<{len(self.stamps)}d", *self.stamps),
                len(self.stamps), len(fixed_header(0x30, self.largest)) + self.largest,
                msg.raw_v5, msg.sender, msg.username, msg.peerhost, msg.flags, self.flt, None]

    def takes(self, flt: str, msg: Message, publisher) -> bool:
        first = self.msg
        return flt == self.flt and msg.flags == first.flags and msg.raw_v5 == first.raw_v5 \
            and (publisher is self.publisher if publisher is not None else (
                msg.sender == first.sender and msg.username == first.username
                and msg.peerhost == first.peerhost))


QOS0_HEADERS = tuple(bytes((0x30, n)) for n in range(128))  # a QoS 0 PUBLISH's fixed header
RUN_RECORD = 11  # the length of a run's record (message records have 13 items, raw ones 9)
_STAMP = struct.Struct("<d")


def run_messages(rec: list):
    """The messages of a run's record, one by one (the path for subscribers that
    `Broker.fanout_qos0_frames` does not write to)."""
    frames, stamps, _, _, v5, sender, username, peerhost, flags, flt, _ = rec
    pos = 0
    for (ts,) in _STAMP.iter_unpack(stamps):
        size, start = decode_varint(frames, pos + 1)  # (after the fixed header's first byte)
        pos = start + size
        body = frames[start:pos]
        yield message_from_raw_record([body, v5, sender, username, peerhost, ts, flags,
                                       flt, None])
