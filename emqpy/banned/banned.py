"""The ban list (EMQX's emqx_banned): clients refused at CONNECT by client id, username, IP
address, client id / username regular expression, or IP network.

Exact bans sit in one dict per kind (O(1) per CONNECT); rules (regexes, networks) are checked in
turn. Every ban is also a row in the SQLite store, loaded at start. Expired bans no longer
apply, are hidden from listings and are deleted by a periodic purge.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from emqpy.mqtt import reason_codes as rc
from emqpy.store import register_migrations

log = logging.getLogger("emqpy.banned")

EXACT = ("clientid", "username", "peerhost")
RULES = ("clientid_re", "username_re", "peerhost_net")
KINDS = EXACT + RULES
PURGE_INTERVAL = 60.0  # seconds, as EMQX's expiry timer

register_migrations("banned", [
    "CREATE TABLE banned ("
    " kind TEXT NOT NULL, who TEXT NOT NULL, by TEXT NOT NULL, reason TEXT NOT NULL,"
    " at REAL NOT NULL, until REAL, PRIMARY KEY (kind, who))",
])


class BanError(ValueError):
    pass


@dataclass
class Ban:
    kind: str  # EMQX's "as"
    who: str  # normalised: the IP address or network in canonical form
    by: str = "mgmt_api"
    reason: str = ""
    at: float = field(default_factory=time.time)
    until: float | None = None  # epoch seconds; None = infinity
    matcher: Any = None  # compiled regex or ip_network for rules

    def expired(self, now: float) -> bool:
        return self.until is not None and self.until <= now

    def matches(self, ch) -> bool:
        if self.kind == "clientid_re":
            return ch.clientid is not None and self.matcher.search(ch.clientid) is not None
        if self.kind == "username_re":
            return ch.username is not None and self.matcher.search(ch.username) is not None
        if self.kind == "peerhost_net":
            ip = _ip(ch.peerhost)
            return ip is not None and ip.version == self.matcher.version and ip in self.matcher
        value = {"clientid": ch.clientid, "username": ch.username,
                 "peerhost": _norm_host(ch.peerhost)}[self.kind]
        return value == self.who


def _ip(host):
    if not host:
        return None
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped or ip


def _norm_host(host):
    ip = _ip(host)
    return str(ip) if ip is not None else host


def normalize(kind: str, who: str) -> tuple[str, Any]:
    """Check a ban target; returns its canonical text and matcher. Raises BanError."""
    if kind not in KINDS:
        raise BanError(f"bad 'as': {kind!r}, expected one of {', '.join(KINDS)}")
    if not isinstance(who, str):
        raise BanError("'who' must be a string")
    if kind == "peerhost":
        ip = _ip(who.strip())
        if ip is None:
            raise BanError("bad peerhost")
        return str(ip), None
    if kind == "peerhost_net":
        try:
            net = ipaddress.ip_network(who.strip(), strict=False)  # host bits cleared, as EMQX
        except ValueError as e:
            raise BanError(f"bad peerhost_net: {e}") from None
        return str(net), net
    if kind in ("clientid_re", "username_re"):
        try:
            return who, re.compile(who)
        except re.error as e:
            raise BanError(f"bad regular expression {who!r}: {e}") from None
    return who, None


class Banned:
    def __init__(self, broker):
        self.broker = broker
        self.db = None
        self.exact: dict[str, dict[str, Ban]] = {k: {} for k in EXACT}
        self.rules: dict[tuple[str, str], Ban] = {}
        self._handle = None

    # -- lifecycle ----------------------------------------------------------------------------

    def attach(self, db) -> None:
        self.db = db
        db.migrate("banned")
        now = time.time()
        for r in db.query("SELECT kind, who, by, reason, at, until FROM banned ORDER BY rowid"):
            if r["until"] is not None and r["until"] <= now:
                continue
            try:
                who, matcher = normalize(r["kind"], r["who"])
            except BanError:
                log.warning("ignoring a stored ban that no longer parses: %s %s",
                            r["kind"], r["who"])
                continue
            self._index(Ban(r["kind"], who, r["by"], r["reason"], r["at"], r["until"], matcher))
        self.purge()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self) -> None:
        loop = self.broker.loop
        if loop is not None:
            self._handle = loop.call_later(PURGE_INTERVAL, self._tick)

    def _tick(self) -> None:
        try:
            self.purge()
        finally:
            self._arm()

    # -- the CONNECT check ----------------------------------------------------------------------

    def check(self, ch, pkt) -> int:
        ban = self.find(ch)
        if ban is None:
            return 0
        log.info("refusing banned client %s (%s %s)", ch.clientid, ban.kind, ban.who)
        return rc.BANNED

    def find(self, ch) -> Ban | None:
        """The ban that applies to a client (clientid, username, peerhost), if any."""
        ex = self.exact
        if not (self.rules or ex["clientid"] or ex["username"] or ex["peerhost"]):
            return None  # nobody is banned: the usual case, on every CONNECT
        now = time.time()
        for kind, value in (("clientid", ch.clientid), ("username", ch.username),
                            ("peerhost", ch.peerhost)):
            if value is None or not ex[kind]:
                continue
            ban = ex[kind].get(_norm_host(value) if kind == "peerhost" else value)
            if ban is not None and not ban.expired(now):
                return ban
        for ban in self.rules.values():
            if not ban.expired(now) and ban.matches(ch):
                return ban
        return None

    # -- management ---------------------------------------------------------------------------

    def _index(self, ban: Ban) -> None:
        if ban.kind in EXACT:
            self.exact[ban.kind][ban.who] = ban
        else:
            self.rules[(ban.kind, ban.who)] = ban

    def _unindex(self, kind: str, who: str) -> Ban | None:
        if kind in EXACT:
            return self.exact[kind].pop(who, None)
        return self.rules.pop((kind, who), None)

    def get(self, kind: str, who: str) -> Ban | None:
        """A live ban by its (normalised) target."""
        ban = (self.exact[kind].get(who) if kind in EXACT else self.rules.get((kind, who)))
        if ban is not None and ban.expired(time.time()):
            return None
        return ban

    def all(self) -> list[Ban]:
        now = time.time()
        out = [b for d in self.exact.values() for b in d.values() if not b.expired(now)]
        out.extend(b for b in self.rules.values() if not b.expired(now))
        return out

    def create(self, ban: Ban) -> Ban:
        """Add a ban and kick the connected clients it covers; raises KeyError(old) if a live
        ban on the same target exists (EMQX does not update bans by overwriting)."""
        old = self.get(ban.kind, ban.who)
        if old is not None:
            raise KeyError(old)
        self._index(ban)
        if self.db is not None:
            self.db.execute(
                "INSERT OR REPLACE INTO banned (kind, who, by, reason, at, until) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (ban.kind, ban.who, ban.by, ban.reason, ban.at, ban.until))
        self._kick(ban)
        return ban

    def _kick(self, ban: Ban) -> None:
        for clientid, ch in list(self.broker.channels.items()):
            if ban.matches(ch):
                log.warning("kick_session_due_to_banned: %s (%s %s)", clientid, ban.kind,
                            ban.who)
                self.broker.kick(clientid)

    def delete(self, kind: str, who: str) -> bool:
        ban = self._unindex(kind, who)
        if self.db is not None:
            self.db.execute("DELETE FROM banned WHERE kind=? AND who=?", (kind, who))
        return ban is not None and not ban.expired(time.time())

    def clear(self) -> None:
        for d in self.exact.values():
            d.clear()
        self.rules.clear()
        if self.db is not None:
            self.db.execute("DELETE FROM banned")

    def purge(self) -> int:
        """Delete expired bans (memory and store); returns how many."""
        now = time.time()
        gone = [(b.kind, b.who) for d in self.exact.values() for b in d.values()
                if b.expired(now)]
        gone.extend(k for k, b in self.rules.items() if b.expired(now))
        for kind, who in gone:
            self._unindex(kind, who)
        if self.db is not None:
            self.db.execute("DELETE FROM banned WHERE until IS NOT NULL AND until <= ?", (now,))
        return len(gone)

    def __len__(self) -> int:
        return sum(len(d) for d in self.exact.values()) + len(self.rules)
