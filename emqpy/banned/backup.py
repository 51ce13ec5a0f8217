"""The ban list in a data backup (EMQX's table set ``banned``): live bans, as stored."""
from __future__ import annotations

import time
from typing import Iterator

from emqpy.banned.banned import Ban, BanError, normalize

_COLUMNS = ("kind", "who", "by", "reason", "at", "until")


def export(broker) -> Iterator[dict]:
    now = time.time()
    for b in list(broker.banned.all()):  # (a snapshot: taken in chunks between loop turns)
        if not b.expired(now):
            yield {"kind": b.kind, "who": b.who, "by": b.by, "reason": b.reason, "at": b.at,
                   "until": b.until}


def restore(broker, rows: list) -> int:
    """Add the bans (one on the same target is replaced); as EMQX's table restore, clients
    already connected are not kicked."""
    banned = broker.banned
    bans = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise ValueError(f"banned row {i}: an object is expected")
        try:
            who, matcher = normalize(row.get("kind"), row.get("who"))
            ban = Ban(row["kind"], who, str(row.get("by") or "mgmt_api"),
                      str(row.get("reason") or ""), float(row.get("at") or time.time()),
                      None if row.get("until") is None else float(row["until"]), matcher)
        except (BanError, TypeError, ValueError) as e:
            raise ValueError(f"banned row {i}: {e}") from None
        bans.append(ban)
    if banned.db is not None:
        banned.db.replace_rows("banned", _COLUMNS, [
            {c: getattr(b, c) for c in _COLUMNS} for b in bans])
    for ban in bans:
        banned._unindex(ban.kind, ban.who)
        banned._index(ban)
    return len(bans)


def from_emqx(records: list[dict]) -> list[dict]:
    """EMQX's emqx_banned and emqx_banned_rules records (who, by, reason, at, until): ``who``
    is {clientid|username, Bin}, {peerhost, IP}, {clientid_re|username_re, {Compiled, RE}} or
    {peerhost_net, {First, Last, MaskLen}}."""
    from emqpy.backup.erlang import epoch, ip_text, text
    out = []
    for r in records:
        kind, value = r["who"]
        kind = str(kind)
        if kind == "peerhost":
            who = ip_text(value)
        elif kind in ("clientid_re", "username_re"):
            who = text(value[1])
        elif kind == "peerhost_net":
            who = f"{ip_text(value[0])}/{value[2]}"
        else:
            who = text(value)
        out.append({"kind": kind, "who": who, "by": text(r.get("by")),
                    "reason": text(r.get("reason")), "at": epoch(r.get("at")),
                    "until": epoch(r.get("until"))})
    return out
