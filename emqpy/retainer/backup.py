"""Retained messages in a data backup (EMQX's table set ``builtin_retainer``, offered while
the retainer is enabled, as EMQX offers it): each message as its stored row, the payload in
base64, the expiry as wall-clock time."""
from __future__ import annotations

import base64
import binascii
import time

from emqpy.retainer import persist

_COLUMNS = ("topic", "msgid", "payload", "qos", "props", "sender", "username", "peerhost",
            "publish_at", "expire_at")


def export(broker) -> list[dict]:
    ret = broker.retainer
    if not ret.config.enable:
        return []
    out = []
    for msg in ret.all():
        row = dict(zip(_COLUMNS, persist.to_row(msg)))
        row["payload"] = base64.b64encode(row["payload"]).decode()
        out.append(row)
    return out


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
