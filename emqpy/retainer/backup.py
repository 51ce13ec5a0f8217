"""Retained messages in a data backup (EMQX's table set ``builtin_retainer``, offered while
the retainer is enabled, as EMQX offers it): each message as its stored row, the payload in
base64, the expiry as wall-clock time."""
from __future__ import annotations

import base64
import binascii
import time
from typing import Iterator

from emqpy.retainer import persist

_COLUMNS = ("topic", "msgid", "payload", "qos", "props", "sender", "username", "peerhost",
            "publish_at", "expire_at")


def export(broker) -> Iterator[dict]:
    ret = broker.retainer
    if not ret.config.enable:
        return
    for msg in ret.all():  # (a list: a snapshot, taken in chunks between loop turns)
        yield message_row(msg)


def message_row(msg) -> dict:
    """One retained message as its backup row (JSON-able; `restore` takes it back)."""
    row = dict(zip(_COLUMNS, persist.to_row(msg)))
    row["payload"] = base64.b64encode(row["payload"]).decode()
    return row


def restore(broker, rows: list) -> int:
    ret = broker.retainer
    now_wall, now_mono = time.time(), time.monotonic()
    msgs = []
    for i, row in enumerate(rows, 1):
        try:
            r = {**dict.fromkeys(_COLUMNS), "sender": "", **row}
            r["payload"] = base64.b64decode(r["payload"], validate=True)
            if r["qos"] not in (0, 1, 2) or not isinstance(r["topic"], str) or not r["topic"]:
                raise ValueError("bad topic or qos")
            msg = persist.from_row(r, now_wall, now_mono)
        except (TypeError, ValueError, KeyError, binascii.Error) as e:
            raise ValueError(f"retained message {i}: {e}") from None
        if r["expire_at"] is not None and r["expire_at"] <= now_wall:
            continue  # expired while in the backup
        msgs.append(msg)
    for msg in msgs:
        ret.put(msg)
    return len(msgs)


# EMQX's MQTT 5 property names (emqx_message headers) -> emqpy's
_EMQX_PROPS = {"Payload-Format-Indicator": "payload_format_indicator",
               "Message-Expiry-Interval": "message_expiry_interval",
               "Content-Type": "content_type", "Response-Topic": "response_topic",
               "Correlation-Data": "correlation_data", "User-Property": "user_property"}


def _props_from_emqx(props: dict) -> dict | None:
    from emqpy.backup.erlang import text
    out = {}
    for key, value in (props or {}).items():
        name = _EMQX_PROPS.get(str(key))
        if name is None:
            continue
        if name == "user_property":
            value = [(text(k), text(v)) for k, v in value]
        elif name in ("content_type", "response_topic"):
            value = text(value)
        out[name] = value
    return out or None


def from_emqx(records: list[dict]) -> list[dict]:
    """EMQX's emqx_retainer_message records: the #message{} (id, qos, from, flags, headers,
    topic, payload, timestamp in ms, extra) and the expiry time in ms (0: none)."""
    from emqpy.backup.erlang import ip_text, text
    out = []
    for r in records:
        _tag, msgid, qos, sender, _flags, headers, topic, payload, ts, *_ = r["msg"]
        headers = headers if isinstance(headers, dict) else {}
        peerhost = headers.get("peerhost")
        expiry = r.get("expiry_time") or 0
        out.append({
            "topic": text(topic), "msgid": msgid.hex() if isinstance(msgid, bytes) else None,
            "payload": base64.b64encode(payload).decode(), "qos": qos,
            "props": persist.props_to_json(_props_from_emqx(headers.get("properties"))),
            "sender": text(sender), "username": text(headers.get("username"), None),
            "peerhost": ip_text(peerhost) if peerhost is not None else None,
            "publish_at": ts / 1000, "expire_at": expiry / 1000 if expiry else None})
    return out
