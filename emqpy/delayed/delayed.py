"""Delayed publish (EMQX's emqx_delayed): a PUBLISH to `$delayed/{seconds}/{topic}` is held
back and published to `{topic}` when its time comes.

`{seconds}` below 4294967 is a delay; a larger number is the Unix time (seconds) to publish at.
Held messages are rows in the SQLite store (written before the publisher's acknowledgement
goes out), so they survive a restart; in memory they sit in a dict by message id and a heap
of (due, id), and one loop timer is armed for the earliest one, never one per message.
"""
from __future__ import annotations

import heapq
import logging
import re
import time
from dataclasses import dataclass

from emqpy.broker.message import Message
from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import validate_topic_name
from emqpy.retainer.persist import props_from_json, props_to_json
from emqpy.store import register_migrations

log = logging.getLogger("emqpy.delayed")

PREFIX = "$delayed/"
MAX_INTERVAL = 4294967  # seconds; a larger {seconds} is an absolute Unix time (as EMQX)
_NUMBER = re.compile(r"[+-]?[0-9]+")

register_migrations("delayed", [
    # due/publish_at: epoch seconds; delayed: the interval asked for (seconds)
    "CREATE TABLE delayed ("
    " msgid TEXT PRIMARY KEY, due REAL NOT NULL, delayed INTEGER NOT NULL,"
    " topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL,"
    " retain INTEGER NOT NULL, props TEXT, sender TEXT, username TEXT, peerhost TEXT,"
    " publish_at REAL NOT NULL)",
])
_COLUMNS = ("msgid, due, delayed, topic, payload, qos, retain, props, sender, username, "
            "peerhost, publish_at")


@dataclass
class Held:
    """One delayed message: `msg` is the message to publish (its real topic)."""
    msgid: str
    due: float  # epoch seconds
    interval: int  # seconds, as the publisher wrote them (EMQX's delayed_interval)
    msg: Message

    @property
    def key(self) -> tuple:
        return (self.due, self.msgid)  # EMQX's table order: publish time, then id


def parse(topic: str, now: float) -> tuple[float, int, str] | None:
    """(due time, interval, real topic) of a `$delayed/...` topic; None if it is malformed."""
    rest = topic[len(PREFIX):]
    number, sep, real = rest.partition("/")
    if not sep or not _NUMBER.fullmatch(number):
        return None
    n = int(number)
    if n < MAX_INTERVAL:
        return now + n, n, real
    interval = n - round(now)
    if interval > MAX_INTERVAL:
        return None
    return float(n), interval, real


class Delayed:
    def __init__(self, broker):
        self.broker = broker
        self.db = None
        self.held: dict[str, Held] = {}
        self._heap: list[tuple[float, str]] = []  # (due, msgid); entries of gone ids skipped
        self._timer = None
        self._timer_at = 0.0
        self.loaded = False  # holding `$delayed/` publishes (broker.delay_publish is ours)

    def __len__(self) -> int:
        return len(self.held)

    # -- lifecycle ----------------------------------------------------------------------------

    def attach(self, db) -> None:
        """Load the stored messages (a restart: each keeps its due time)."""
        self.db = db
        db.migrate("delayed")
        self.held.clear()
        self._heap = []
        for r in db.query(f"SELECT {_COLUMNS} FROM delayed"):
            msg = Message(r["topic"], bytes(r["payload"]), r["qos"], bool(r["retain"]),
                          props_from_json(r["props"]), r["sender"] or "", r["username"],
                          r["peerhost"], now=r["publish_at"])
            msg._id = r["msgid"]
            self._add(Held(r["msgid"], r["due"], r["delayed"], msg))

    def load(self) -> None:
        """Start: register the callback and arm the timer (the `enable` switch on)."""
        if not self.loaded:
            self.broker.delay_publish = self.hold
            self.loaded = True
        self._arm()

    def unload(self) -> None:
        """The `enable` switch off: as EMQX, the held messages are discarded too."""
        if self.loaded:
            self.broker.delay_publish = None
            self.loaded = False
        self.clear()
        self._cancel()

    def stop(self) -> None:
        """Node stop: the timer goes, the stored messages stay for the next start."""
        if self.loaded:
            self.broker.delay_publish = None
            self.loaded = False
        self._cancel()

    # -- holding ---------------------------------------------------------------------------

    def hold(self, msg: Message):
        """Keep a `$delayed/` message for later; returns None (nothing routed now), or the
        message unchanged when its topic is not a valid delayed one."""
        now = msg.timestamp
        parsed = parse(msg.topic, now)
        if parsed is not None:
            try:
                validate_topic_name(parsed[2], self.broker.max_topic_levels)
            except MQTTError:
                parsed = None
        if parsed is None:
            # EMQX's callback fails on such a topic and the message goes on unchanged
            log.warning("not a valid delayed publish topic: %r", msg.topic)
            return msg
        due, interval, real = parsed
        held_msg = msg.copy()
        held_msg.topic = real
        held_msg._topic_b = None
        self.store(Held(msg.id, due, interval, held_msg))
        return None  # held back: nothing is routed now

    def store(self, held: Held) -> bool:
        limit = self.broker.config.delayed.max_delayed_messages
        if limit and len(self.held) >= limit:
            log.error("delayed message dropped: max_delayed_messages (%d) reached", limit)
            return False
        if self.db is not None:
            m = held.msg
            self.db.execute(
                f"INSERT OR REPLACE INTO delayed ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (held.msgid, held.due, held.interval, m.topic, bytes(m.payload), m.qos,
                 int(m.retain), props_to_json(m.props), m.sender or "", m.username,
                 m.peerhost, m.timestamp))
        self._add(held)
        self.broker.metrics.c["messages.delayed"] += 1
        self._arm()
        return True

    # -- the one timer ------------------------------------------------------------------------

    def _add(self, held: Held) -> None:
        self.held[held.msgid] = held
        heapq.heappush(self._heap, (held.due, held.msgid))

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        """Keep the timer on the earliest due message (re-armed only when that changes)."""
        heap = self._heap
        while heap and heap[0][1] not in self.held:
            heapq.heappop(heap)
        loop = self.broker.loop
        if not heap or loop is None or not self.loaded:
            self._cancel()
            return
        due = heap[0][0]
        if self._timer is not None and self._timer_at <= due:
            return
        self._cancel()
        self._timer_at = due
        self._timer = loop.call_later(max(0.001, due - time.time()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = time.time()
        heap = self._heap
        done = []
        while heap and heap[0][0] <= now:
            _, msgid = heapq.heappop(heap)
            held = self.held.pop(msgid, None)
            if held is None:
                continue
            done.append(held)
        if done and self.db is not None:
            self._delete_rows([h.msgid for h in done])
        banned = self.broker.banned
        for held in done:
            msg = held.msg
            if banned is not None and msg.sender and banned.get("clientid", msg.sender):
                log.info("delayed message of banned client %s not published", msg.sender)
                continue
            try:
                self.broker.publish(msg)
            except Exception:
                log.exception("publishing a delayed message to %s failed", msg.topic)
        self._arm()

    # -- management ---------------------------------------------------------------------------

    def listing(self) -> list[Held]:
        return sorted(self.held.values(), key=lambda h: h.key)

    def delete(self, msgid: str) -> bool:
        held = self.held.pop(msgid, None)
        if held is None:
            return False
        if self.db is not None:
            self.db.execute("DELETE FROM delayed WHERE msgid=?", (msgid,))
        self._arm()
        return True

    def delete_topic(self, topic: str) -> int:
        ids = [h.msgid for h in self.held.values() if h.msg.topic == topic]
        for msgid in ids:
            del self.held[msgid]
        if ids and self.db is not None:
            self._delete_rows(ids)
        self._arm()
        return len(ids)

    def _delete_rows(self, ids: list[str]) -> None:
        with self.db.transaction() as conn:
            conn.executemany("DELETE FROM delayed WHERE msgid=?", [(i,) for i in ids])

    def clear(self) -> None:
        self.held.clear()
        self._heap = []
        if self.db is not None:
            self.db.execute("DELETE FROM delayed")
