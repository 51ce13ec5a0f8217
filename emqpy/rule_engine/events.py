"""The columns a rule sees: one builder per event, with EMQX's names and values
(emqx_rule_events), from what the broker hands to its hook points.

Every event has `event` (EMQX's hook point name), `timestamp` (ms, when the rule runs) and
`node`. Addresses are text as EMQX's `ntoa` writes them (``"127.0.0.1:52918"``, no brackets
around IPv6); MQTT 5 properties use EMQX's names (``'User-Property'`` as a map plus
``'User-Property-Pairs'``); payloads follow the value model of this package.
"""
from __future__ import annotations

import time

from emqpy.mqtt.reason_codes import emqx_name

# the event topic a rule names in FROM -> the hook point it comes from (EMQX's event names)
EVENT_POINTS: dict[str, str] = {
    "$events/client_connected": "client.connected",
    "$events/client_disconnected": "client.disconnected",
    "$events/client_connack": "client.connack",
    "$events/client_check_authz_complete": "client.check_authz_complete",
    "$events/client_check_authn_complete": "client.check_authn_complete",
    "$events/session_subscribed": "session.subscribed",
    "$events/session_unsubscribed": "session.unsubscribed",
    "$events/message_delivered": "message.delivered",
    "$events/message_acked": "message.acked",
    "$events/message_dropped": "message.dropped",
    "$events/delivery_dropped": "delivery.dropped",
}
EVENT_TOPICS: dict[str, str] = {point: topic for topic, point in EVENT_POINTS.items()}
EVENT_TOPICS["message.publish"] = "$events/message_publish"

REPUBLISHED = 4  # Message.flags bit: published by a rule's republish action (sender = rule id)

_PROP_NAMES = {"maximum_qos": "Maximum-QoS"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def payload_text(payload) -> str:
    if isinstance(payload, str):
        return payload
    return bytes(payload).decode("utf-8", "surrogateescape")


def ntoa(host: str | None, port: int | None = None) -> str | None:
    if host is None:
        return None
    if host.startswith("::ffff:") and "." in host:  # an IPv4 client on a dual-stack socket
        host = host[7:]
    return host if port is None else f"{host}:{port}"


def prop_name(name: str) -> str:
    """emqpy's property name -> EMQX's (``message_expiry_interval`` -> ``Message-Expiry-
    Interval``)."""
    n = _PROP_NAMES.get(name)
    if n is None:
        n = _PROP_NAMES[name] = "-".join(w.capitalize() for w in name.split("_"))
    return n


def printable_props(props: dict | None) -> dict:
    """MQTT 5 properties as EMQX shows them to rules (always with a `User-Property` map)."""
    out: dict = {"User-Property": {}}
    if not props:
        return out
    for k, v in props.items():
        if k.startswith("_"):  # emqpy-internal marks
            continue
        if k == "user_property":
            pairs = [(payload_text(a), payload_text(b)) for a, b in v]
            out["User-Property"] = dict(pairs)
            out["User-Property-Pairs"] = [{"key": a, "value": b} for a, b in pairs]
            continue
        if isinstance(v, (bytes, bytearray, memoryview)):
            v = payload_text(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[prop_name(k)] = v
    return out


def _peername(ch) -> str | None:
    return ntoa(ch.peerhost, ch.peerport)


def _sockname(ch) -> str | None:
    t = ch.transport
    sock = t.get_extra_info("sockname") if t is not None else None
    if isinstance(sock, tuple) and len(sock) >= 2:
        return ntoa(sock[0], ch.sockport)
    return ntoa(getattr(ch.listener, "host", None) or "0.0.0.0", ch.sockport)


def _basic(event: str, node: str, cols: dict) -> dict:
    cols["event"] = event
    cols["timestamp"] = now_ms()
    cols["node"] = node
    return cols


def _flags(msg) -> dict:
    flags = {"dup": False, "retain": bool(msg.retain)}
    if msg.flags & 1:
        flags["sys"] = True
    return flags


def _sender_peername(broker, msg) -> str | None:
    if msg.peerhost is None:
        return None
    ch = broker.channels.get(msg.sender)
    if ch is not None and ch.peerhost == msg.peerhost:
        return ntoa(ch.peerhost, ch.peerport)
    return ntoa(msg.peerhost)


def message_envs(msg) -> dict:
    """What actions see beside the columns (EMQX's message headers)."""
    headers: dict = {}
    if msg.flags & REPUBLISHED:
        headers["republish_by"] = msg.sender
    return {"headers": headers}


def _message_columns(broker, msg) -> dict:
    """The columns every event about a published message has (as its publisher sent it)."""
    return {
        "id": msg.id,
        "clientid": msg.sender,
        "username": msg.username,
        "payload": payload_text(msg.payload),
        "peerhost": ntoa(msg.peerhost),
        "peername": _sender_peername(broker, msg),
        "topic": msg.topic,
        "qos": msg.qos,
        "flags": _flags(msg),
        "pub_props": printable_props(msg.props),
        "publish_received_at": int(msg.timestamp * 1000),
    }


def message_publish(broker, msg) -> dict:
    ch = broker.channels.get(msg.sender) if msg.sender else None
    cols = _message_columns(broker, msg)
    cols["client_attrs"] = (ch.client_attrs or {}) if ch is not None else {}
    return _basic("message.publish", broker.node_name, cols)


def message_dropped(broker, msg, reason: str) -> dict:
    return _basic("message.dropped", broker.node_name,
                  {"reason": reason, **_message_columns(broker, msg)})


def message_base(msg) -> dict:
    """The columns of a message event that depend on the message only: built once per message
    and copied for each receiver (a fan-out to N subscribers builds them once)."""
    return {
        "id": msg.id,
        "from_clientid": msg.sender,
        "from_username": msg.username,
        "payload": payload_text(msg.payload),
        "topic": msg.topic,
        "qos": msg.qos,
        "flags": _flags(msg),
        "pub_props": printable_props(msg.props),
        "publish_received_at": int(msg.timestamp * 1000),
    }


def to_receiver(event: str, node: str, base: dict, ch) -> dict:
    """A message event's columns for the receiving connection `ch`, from `message_base`."""
    cols = base.copy()
    host = ch.peerhost
    if host is not None and host.startswith("::ffff:"):
        host = ntoa(host)
    cols["clientid"] = ch.clientid
    cols["username"] = ch.username
    cols["peerhost"] = host
    cols["peername"] = None if host is None else f"{host}:{ch.peerport}"
    cols["event"] = event
    cols["timestamp"] = time.time_ns() // 1_000_000
    cols["node"] = node
    return cols


def message_delivered(broker, msg, ch, base: dict | None = None) -> dict:
    return to_receiver("message.delivered", broker.node_name,
                       base if base is not None else message_base(msg), ch)


def message_acked(broker, msg, ch, base: dict | None = None) -> dict:
    cols = to_receiver("message.acked", broker.node_name,
                       base if base is not None else message_base(msg), ch)
    # (emqpy does not keep a PUBACK's properties with the message: none to show)
    cols["puback_props"] = {"User-Property": {}}
    return cols


def delivery_dropped(broker, session, msg, reason: str) -> dict:
    ch = session.channel
    cols = to_receiver("delivery.dropped", broker.node_name, message_base(msg),
                       ch if ch is not None else _Offline(session))
    cols["reason"] = reason
    return cols


class _Offline:
    """The receiver of a delivery dropped while its client is away: its client id only."""

    def __init__(self, session):
        self.clientid = session.clientid
        self.username = None
        self.peerhost = self.peerport = None


def client_connected(broker, ch) -> dict:
    pkt = ch.connect_pkt
    props = pkt.props if pkt is not None else {}
    return _basic("client.connected", broker.node_name, {
        "clientid": ch.clientid,
        "username": ch.username,
        "mountpoint": ch.mountpoint,
        "peername": _peername(ch),
        "sockname": _sockname(ch),
        "proto_name": ch.proto_name,
        "proto_ver": ch.version,
        "keepalive": ch.keepalive,
        "clean_start": bool(pkt.clean_start) if pkt is not None else True,
        "receive_maximum": props.get("receive_maximum", 0) if ch.version == 5 else 0,
        "expiry_interval": _expiry(ch),
        "is_bridge": bool(pkt.is_bridge) if pkt is not None else False,
        "conn_props": printable_props(props if ch.version == 5 else None),
        "connected_at": int((ch.connected_at or time.time()) * 1000),
        "client_attrs": ch.client_attrs or {},
    })


def _expiry(ch) -> int:
    e = ch.expiry_interval
    return int(e) if e != float("inf") else 0xFFFFFFFF


def client_disconnected(broker, ch, reason: str) -> dict:
    return _basic("client.disconnected", broker.node_name, {
        "reason": reason,
        "clientid": ch.clientid,
        "username": ch.username,
        "peername": _peername(ch),
        "sockname": _sockname(ch),
        "proto_name": ch.proto_name,
        "proto_ver": ch.version,
        "disconn_props": {"User-Property": {}},
        "disconnected_at": int((ch.disconnected_at or time.time()) * 1000),
        "client_attrs": ch.client_attrs or {},
    })


def client_connack(broker, ch, reason_code: int, props) -> dict:
    pkt = ch.connect_pkt
    cprops = pkt.props if pkt is not None and ch.version == 5 else None
    return _basic("client.connack", broker.node_name, {
        "reason_code": emqx_name(reason_code),
        "clientid": ch.clientid if ch.clientid is not None else (
            pkt.clientid if pkt is not None else None),
        "clean_start": bool(pkt.clean_start) if pkt is not None else True,
        "username": ch.username if ch.username is not None else (
            pkt.username if pkt is not None else None),
        "peername": _peername(ch),
        "sockname": _sockname(ch),
        "proto_name": ch.proto_name,
        "proto_ver": ch.version,
        "keepalive": pkt.keepalive if pkt is not None else 0,
        "expiry_interval": (cprops or {}).get("session_expiry_interval", 0),
        "conn_props": printable_props(cprops),
    })


def _subscriber(ch, session) -> tuple:
    if ch is None:
        return session.clientid, None, None, None
    return ch.clientid, ch.username, ntoa(ch.peerhost), _peername(ch)


def session_subscribed(broker, session, sub) -> dict:
    ch = session.channel
    clientid, username, peerhost, peername = _subscriber(ch, session)
    sub_props: dict = {"User-Property": {}}
    if sub.sub_id:
        sub_props["Subscription-Identifier"] = sub.sub_id
    return _basic("session.subscribed", broker.node_name, {
        "clientid": clientid,
        "username": username,
        "peerhost": peerhost,
        "peername": peername,
        "sub_props": sub_props,
        "topic": sub.topic_filter,
        "qos": sub.qos,
        "client_attrs": (ch.client_attrs or {}) if ch is not None else {},
    })


def session_unsubscribed(broker, session, topic_filter: str, qos: int = 0) -> dict:
    ch = session.channel
    clientid, username, peerhost, peername = _subscriber(ch, session)
    return _basic("session.unsubscribed", broker.node_name, {
        "clientid": clientid,
        "username": username,
        "peerhost": peerhost,
        "peername": peername,
        "unsub_props": {"User-Property": {}},
        "topic": topic_filter,
        "qos": qos,
        "client_attrs": (ch.client_attrs or {}) if ch is not None else {},
    })


def check_authz_complete(broker, ch, action: str, topic: str, result: str,
                         source: str) -> dict:
    return _basic("client.check_authz_complete", broker.node_name, {
        "clientid": ch.clientid,
        "username": ch.username,
        "peername": _peername(ch),
        "peerhost": ntoa(ch.peerhost),
        "topic": topic,
        "action": action,
        "authz_source": source,
        "result": result,
        "client_attrs": ch.client_attrs or {},
    })


def check_authn_complete(broker, ch, reason_code: str, is_superuser: bool,
                         is_anonymous: bool) -> dict:
    pkt = ch.connect_pkt
    return _basic("client.check_authn_complete", broker.node_name, {
        "clientid": ch.clientid if ch.clientid is not None else (
            pkt.clientid if pkt is not None else None),
        "username": ch.username if ch.username is not None else (
            pkt.username if pkt is not None else None),
        "peername": _peername(ch),
        "reason_code": reason_code,
        "is_anonymous": is_anonymous,
        "is_superuser": is_superuser,
        "client_attrs": ch.client_attrs or {},
    })
