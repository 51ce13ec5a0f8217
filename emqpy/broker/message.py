"""The broker's message: what was published, plus its encoded wire forms shared across subscribers."""
from __future__ import annotations

import os
import time

from emqpy.mqtt.packets import encode_publish, fixed_header, split_publish
from emqpy.mqtt.properties import decode_properties, encode_properties
from emqpy.mqtt.reason_codes import PUBLISH

_LAZY = object()

_counter = int.from_bytes(os.urandom(4), "big")


def new_message_id() -> str:
    """A unique, roughly time-ordered id (EMQX shows message ids as 32 hex digits)."""
    global _counter
    _counter = (_counter + 1) & 0xFFFFFFFF
    return f"{time.time_ns():020x}{_counter:08x}{os.getpid() & 0xFFFF:04x}"[-32:]


class Message:
    __slots__ = ("topic", "payload", "qos", "retain", "_props", "_props_raw", "sender", "username",
                 "peerhost",
                 "timestamp", "expire_at", "_id", "_topic_b", "_wire", "flags", "raw_body",
                 "raw_v5", "_w1_key", "_w1")

    def __init__(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                 props: dict | None = None, sender: str = "", username: str | None = None,
                 peerhost: str | None = None, now: float | None = None):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self._props = props  # MQTT 5 properties to forward (no topic_alias/subscription ids)
        self._props_raw = None
        self.sender = sender
        self.username = username
        self.peerhost = peerhost
        self.timestamp = now if now is not None else time.time()
        self.expire_at = None  # time.monotonic() deadline from Message Expiry Interval
        if props:
            mei = props.get("message_expiry_interval")
            if mei is not None:
                self.expire_at = time.monotonic() + mei
        self._id = None
        self._topic_b = None
        self._wire = None  # further encoded forms, by key
        self._w1_key = -1  # the first encoded form, kept outside a dict (fan-in has just one)
        self._w1 = None
        # bit 1: system message ($SYS / will), for hooks and metrics; bit 4: republished by a
        # rule (the sender is then the rule id: emqpy.rule_engine)
        self.flags = 0
        # The body of the QoS 0 PUBLISH this came in as: an outgoing QoS 0 PUBLISH of the same
        # protocol family has the very same body, so it needs only a new fixed header.
        self.raw_body = None
        self.raw_v5 = False

    @property
    def props(self) -> dict | None:
        p = self._props
        if p is _LAZY:  # decoded on first use from the block it arrived with
            p = self._props = decode_properties(self._props_raw, 0, PUBLISH)[0] or None
        return p

    @props.setter
    def props(self, value: dict | None) -> None:
        self._props = value

    def props_block(self) -> bytes | None:
        """The properties as an encoded block (the one they arrived in, when not decoded since),
        None without any: what another node needs to rebuild them (emqpy/cluster)."""
        if self._props is _LAZY:
            return self._props_raw
        return encode_properties(self._props) if self._props else None

    def lazy_props(self, block: bytes) -> None:
        """Keep an incoming property block (only forwarded kinds) undecoded until needed."""
        self._props = _LAZY
        self._props_raw = block

    def seed_wire(self, key: int, wire) -> None:
        """Provide an already-encoded form (key as in `wire`: v5 << 3 | qos << 1 | retain)."""
        self._w1_key = key
        self._w1 = wire

    def copy(self) -> "Message":
        """A copy without the encoded forms, for a hook or feature to change and pass on."""
        m = Message.__new__(Message)
        for k in Message.__slots__:
            setattr(m, k, getattr(self, k))
        m._wire = None
        m._w1_key = -1
        m._w1 = None
        m.raw_body = None  # (the incoming body is an encoded form too)
        return m

    @property
    def id(self) -> str:
        if self._id is None:
            self._id = new_message_id()
        return self._id

    @property
    def topic_bytes(self) -> bytes:
        tb = self._topic_b
        if tb is None:
            tb = self._topic_b = self.topic.encode("utf-8")
        return tb

    def _props_block(self, sub_ids, now: float) -> bytes:
        props = self.props
        if self.expire_at is not None or sub_ids:
            props = dict(props) if props else {}
            if self.expire_at is not None:
                props["message_expiry_interval"] = max(0, int(self.expire_at - now + 0.999))
            if sub_ids:
                props["subscription_identifier"] = sub_ids
        return encode_properties(props)

    def wire(self, v5: bool, qos: int, retain: bool, sub_ids=None, now: float = 0.0):
        """Encoded PUBLISH: bytes for QoS 0, (prefix, suffix) around the packet id for QoS 1/2.

        Forms without per-subscriber parts are cached on the message, so a fan-out to N
        subscribers encodes each distinct form once.
        """
        cacheable = not sub_ids and (not v5 or self.expire_at is None)
        if cacheable:
            key = (v5 << 3) | (qos << 1) | retain
            if self._w1_key == key:
                return self._w1
            cache = self._wire
            if cache is not None:
                w = cache.get(key)
                if w is not None:
                    return w
            raw = self.raw_body
            if raw is not None and not qos and self.raw_v5 == v5:
                w = fixed_header(0x31 if retain else 0x30, len(raw)) + raw
            else:
                w = self._encode(v5, qos, retain, None, now)
            if self._w1_key < 0:
                self._w1_key = key
                self._w1 = w
            else:
                if cache is None:
                    cache = self._wire = {}
                cache[key] = w
            return w
        return self._encode(v5, qos, retain, sub_ids, now)

    def encode_with(self, qos: int, retain: bool, sub_ids, alias: int, send_topic: bool):
        """An MQTT 5 form carrying a topic alias (never cached: alias state is per connection)."""
        props = dict(self.props) if self.props else {}
        if self.expire_at is not None:
            props["message_expiry_interval"] = max(0, int(self.expire_at - time.monotonic()
                                                          + 0.999))
        if sub_ids:
            props["subscription_identifier"] = sub_ids
        props["topic_alias"] = alias
        topic = self.topic_bytes if send_topic else b""
        pb = encode_properties(props)
        if qos:
            return split_publish(topic, self.payload, qos, retain, pb)
        return encode_publish(topic, self.payload, 0, retain, False, None, pb)

    def _encode(self, v5: bool, qos: int, retain: bool, sub_ids, now: float):
        pb = self._props_block(sub_ids, now or time.monotonic()) if v5 else None
        if qos:
            return split_publish(self.topic_bytes, self.payload, qos, retain, pb)
        return encode_publish(self.topic_bytes, self.payload, 0, retain, False, None, pb)
