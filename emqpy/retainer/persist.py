"""Durable copy of the retained messages in the broker's SQLite store.

Writes are write-through but off the event loop: the loop records the latest state of each
changed topic in a batch (a retained publish storm on one topic costs one row write) and hands
the batch over once per loop iteration; a writer thread with its own SQLite connection commits
whatever is pending in one transaction, then takes the next batch. So the loop never waits for
an fsync or builds rows, and batches grow with load.
"""
from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
import time

from emqpy.store import register_migrations

log = logging.getLogger("emqpy.retainer")

register_migrations("retainer", [
    # expire_at: absolute expiry (epoch seconds) or NULL; publish_at: epoch seconds.
    "CREATE TABLE retained ("
    " topic TEXT PRIMARY KEY, msgid TEXT NOT NULL, payload BLOB NOT NULL,"
    " qos INTEGER NOT NULL, props TEXT, sender TEXT, username TEXT, peerhost TEXT,"
    " publish_at REAL NOT NULL, expire_at REAL)",
])

_COLUMNS = "topic, msgid, payload, qos, props, sender, username, peerhost, publish_at, expire_at"


def _enc(value):
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode()}
    if isinstance(value, (list, tuple)):
        return [_enc(v) for v in value]
    return value


def _dec(value):
    if isinstance(value, dict) and "$b64" in value:
        return base64.b64decode(value["$b64"])
    if isinstance(value, list):
        return [_dec(v) for v in value]
    return value


def props_to_json(props: dict | None) -> str | None:
    if not props:
        return None
    return json.dumps({k: _enc(v) for k, v in props.items()})


def props_from_json(text: str | None) -> dict | None:
    if not text:
        return None
    props = {k: _dec(v) for k, v in json.loads(text).items()}
    if "user_property" in props:
        props["user_property"] = [tuple(p) for p in props["user_property"]]
    return props


def to_row(msg) -> tuple:
    """The row for a retained Message (its monotonic deadline becomes wall-clock time)."""
    expire = None
    if msg.expire_at is not None:
        expire = time.time() + (msg.expire_at - time.monotonic())
    return (msg.topic, msg.id, bytes(msg.payload), msg.qos, props_to_json(msg.props),
            msg.sender or "", msg.username, msg.peerhost, msg.timestamp, expire)


def from_row(r, now_wall: float, now_mono: float):
    """The retained Message of a row (``to_row``'s columns, by name), its wall-clock expiry
    turned back into a monotonic deadline."""
    from emqpy.broker.message import Message
    msg = Message(r["topic"], bytes(r["payload"]), r["qos"], True, props_from_json(r["props"]),
                  r["sender"] or "", r["username"], r["peerhost"], now=r["publish_at"])
    msg._id = r["msgid"]
    msg.expire_at = None if r["expire_at"] is None else now_mono + (r["expire_at"] - now_wall)
    return msg


def load_rows(store) -> list:
    return store.query(f"SELECT {_COLUMNS} FROM retained")


class Writer:
    """The writer thread. `submit({topic: Message or None})` hands over a batch (None deletes),
    `clear()` empties the table; `sync()` waits for what was handed over, `close()` finishes."""

    def __init__(self, db_path):
        self._conn = sqlite3.connect(str(db_path), isolation_level=None,
                                     check_same_thread=False, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._cond = threading.Condition()
        self._pending: dict[str, tuple | None] = {}
        self._clear = False
        self._stopping = False
        self._submitted = 0  # changes handed over
        self._written = 0  # changes committed (or given up on after an error)
        self._thread = threading.Thread(target=self._run, name="emqpy-retainer-writer",
                                         daemon=True)
        self._thread.start()

    def submit(self, batch: dict) -> None:
        with self._cond:
            self._pending.update(batch)
            self._submitted += 1
            self._cond.notify()

    def clear(self) -> None:
        with self._cond:
            self._pending.clear()
            self._clear = True
            self._submitted += 1
            self._cond.notify()

    def sync(self, timeout: float | None = None) -> bool:
        """Block until everything handed over so far is committed."""
        with self._cond:
            target = self._submitted
            return self._cond.wait_for(lambda: self._written >= target, timeout)

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._clear or self._stopping)
                if self._stopping and not self._pending and not self._clear:
                    return
                batch, self._pending = self._pending, {}
                clear, self._clear = self._clear, False
                upto = self._submitted
            try:
                self._write(batch, clear)
            except Exception:
                log.exception("could not persist %d retained message change(s)", len(batch))
            with self._cond:
                self._written = upto
                self._cond.notify_all()

    def _write(self, batch: dict, clear: bool) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if clear:
                conn.execute("DELETE FROM retained")
            deletes = [(t,) for t, msg in batch.items() if msg is None]
            rows = [to_row(msg) for msg in batch.values() if msg is not None]
            if deletes:
                conn.executemany("DELETE FROM retained WHERE topic=?", deletes)
            if rows:
                conn.executemany(f"INSERT OR REPLACE INTO retained ({_COLUMNS}) "
                                 "VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
