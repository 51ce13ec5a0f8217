"""What a trace file holds: EMQX's trace lines, text or JSON (emqx_trace_formatter,
emqx_trace_json_formatter), with MQTT packets written as emqx_packet:format writes them.

A text line is ``<rfc3339 µs> [<TAG>] <clientid>@<peername> msg: <msg>, <key>: <value>, ...``
with ``packet`` first and ``payload`` last; a JSON line is one object with ``time``, ``level``,
``msg`` and ``meta`` (the event's keys, ``trace_tag`` among them).
"""
from __future__ import annotations

import json
from datetime import datetime

from emqpy.mqtt import packets as P

# EMQX writes payloads up to 1024 bytes whole; longer ones are cut to their first 100 bytes.
MAX_PAYLOAD_FORMAT_SIZE = 1024
TRUNCATED_PAYLOAD_SIZE = 100

_NAMES = {P.Connect: "CONNECT", P.Connack: "CONNACK", P.Publish: "PUBLISH",
          P.Puback: "PUBACK", P.Pubrec: "PUBREC", P.Pubrel: "PUBREL", P.Pubcomp: "PUBCOMP",
          P.Subscribe: "SUBSCRIBE", P.Suback: "SUBACK", P.Unsubscribe: "UNSUBSCRIBE",
          P.Unsuback: "UNSUBACK", P.Pingreq: "PINGREQ", P.Pingresp: "PINGRESP",
          P.Disconnect: "DISCONNECT", P.Auth: "AUTH"}


def now_rfc3339() -> str:
    """Local time with offset and microseconds, as EMQX stamps trace lines."""
    return datetime.now().astimezone().isoformat(timespec="microseconds")


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def format_payload_value(payload, encode: str) -> str:
    """The payload as a trace shows it (no label): text, hex or hidden, long ones truncated."""
    if payload is None:
        return ""
    if encode == "hidden":
        return "******"
    if isinstance(payload, str):
        payload = payload.encode()
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        return str(payload)
    payload = bytes(payload)
    if len(payload) <= MAX_PAYLOAD_FORMAT_SIZE:
        return _text(payload) if encode == "text" else payload.hex().upper()
    part = payload[:TRUNCATED_PAYLOAD_SIZE]
    shown = _text(part) if encode == "text" else part.hex().upper()
    return (f"{shown}... The {len(payload) - TRUNCATED_PAYLOAD_SIZE} bytes of this log are "
            "truncated")


def _payload_field(payload, encode: str) -> str:
    if encode == "hidden":
        return "Payload=******"
    label = "Payload(hex)=" if encode == "hex" and payload is not None \
        and len(payload) <= MAX_PAYLOAD_FORMAT_SIZE else "Payload="
    return label + format_payload_value(payload, encode)


def _undef(v) -> str:
    return "undefined" if v is None else str(v)


def _bool(v) -> str:
    return "true" if v else "false"


def _sub_opts(o) -> str:
    return (f"#{{nl => {int(o.no_local)},qos => {o.qos},rap => {int(o.retain_as_published)},"
            f"rh => {o.retain_handling}}}")


def format_packet(pkt, encode: str = "text") -> str:
    """One packet as emqx_packet:format/2 writes it, e.g.
    ``PUBLISH(Q1, R0, D0, Topic=t, PacketId=1, Payload=hi)``."""
    name = _NAMES.get(type(pkt), type(pkt).__name__.upper())
    qos = retain = dup = 0
    if isinstance(pkt, P.Publish):
        qos, retain, dup = pkt.qos, int(pkt.retain), int(pkt.dup)
    elif isinstance(pkt, (P.Pubrel, P.Subscribe, P.Unsubscribe)):
        qos = 1
    head = f"{name}(Q{qos}, R{retain}, D{dup}"
    if isinstance(pkt, P.Connect):
        body = (f"ClientId={pkt.clientid}, ProtoName={pkt.proto_name}, "
                f"ProtoVsn={pkt.proto_ver}, CleanStart={_bool(pkt.clean_start)}, "
                f"KeepAlive={pkt.keepalive}, Username={_undef(pkt.username)}, "
                f"Password={'******' if pkt.password else ''}")
        w = pkt.will
        if w is not None:
            body += (f", Will(Q{w.qos}, R{int(w.retain)}, Topic={w.topic} "
                     f"{_payload_field(w.payload, encode)})")
    elif isinstance(pkt, P.Connack):
        body = f"AckFlags={int(pkt.session_present)}, ReasonCode={pkt.reason_code}"
    elif isinstance(pkt, P.Publish):
        body = (f"Topic={pkt.topic}, PacketId={_undef(pkt.packet_id)}, "
                f"{_payload_field(pkt.payload, encode)}")
    elif isinstance(pkt, P.Subscribe):
        filters = ",".join(f"{t}({_sub_opts(o)})" for t, o in pkt.topics)
        body = f"PacketId={pkt.packet_id} TopicFilters=[{filters}]"
    elif isinstance(pkt, P.Unsubscribe):
        body = f"PacketId={pkt.packet_id} TopicFilters=[{','.join(pkt.topics)}]"
    elif isinstance(pkt, P.Unsuback):
        body = f"PacketId={pkt.packet_id}"
    elif isinstance(pkt, P.Suback):
        body = f"PacketId={pkt.packet_id}, ReasonCodes=[{','.join(map(str, pkt.reason_codes))}]"
    elif isinstance(pkt, P._Ack):
        body = f"PacketId={pkt.packet_id}, ReasonCode={pkt.reason_code}"
    elif isinstance(pkt, P.Disconnect):  # (and AUTH)
        body = f"ReasonCode={pkt.reason_code}"
    else:  # PINGREQ, PINGRESP
        return head + ")"
    return f"{head}, {body})"


def _value(v) -> str:
    """A meta value as EMQX's text formatter prints it."""
    if isinstance(v, bool):
        return _bool(v)
    if v is None:
        return "undefined"
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, dict):
        return "[" + ", ".join(f"{k}: {_value(x)}" for k, x in sorted(v.items())) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_value(x) for x in v) + "]"
    if isinstance(v, (bytes, bytearray)):
        return _text(bytes(v))
    return str(v)


def _weight(key: str):
    return (0 if key == "packet" else 2 if key == "payload" else 1, key)


def _prepared(meta: dict, encode: str) -> dict:
    out = dict(meta)
    if "packet" in out and not isinstance(out["packet"], str):
        out["packet"] = format_packet(out["packet"], encode)
    if "payload" in out:
        out["payload"] = format_payload_value(out["payload"], encode)
    return out


def text_line(tag: str, msg: str, meta: dict, encode: str) -> str:
    clientid = meta.get("clientid") or ""
    peername = meta.get("peername") or ""
    rest = {k: v for k, v in _prepared(meta, encode).items()
            if k not in ("clientid", "peername", "trace_tag", "msg")}
    kvs = ", ".join(f"{k}: {_value(v)}" for k, v in sorted(rest.items(),
                                                            key=lambda kv: _weight(kv[0])))
    return f"{now_rfc3339()} [{tag}] {clientid}@{peername} msg: {msg}, {kvs}\n"


def _jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return _text(bytes(v))
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_jsonable(x) for x in v]
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def json_line(tag: str, msg: str, meta: dict, encode: str, level: str = "debug") -> str:
    m = _prepared(meta, encode)
    m["trace_tag"] = tag
    return json.dumps({"time": now_rfc3339(), "level": level, "msg": msg,
                       "meta": _jsonable(m)}, ensure_ascii=False) + "\n"
