"""Dead letters (an emqpy extension; EMQX has nothing like it): the messages an action gave up
on, kept in the node's SQLite store so a user can look at them, send them again or drop them
(`/actions/{id}/dead_letters`, emqpy/bridge/dead_letters_api.py).

What goes there: a message whose outcome is a final failure (a status or reason code that is
not retried, counted `failed` / `retried.failed`) or whose `request_ttl` ran out
(`dropped.expired`). Not the `dropped.queue_full` ones: the buffer's bound would mean nothing if
its overflow were kept elsewhere. On for every action (nothing to configure: a final failure
otherwise vanishes, which is what the disk buffer is there to prevent), bounded to
`MAX_PER_ACTION` messages per action: past it the oldest go, counted (`dropped`).

The worker acknowledges such a message in its disk buffer only once its dead letter is
committed (the insert runs in a worker thread, one transaction per batch), so a crash in
between sends it again rather than losing it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Sequence

from emqpy.store import register_migrations

log = logging.getLogger("emqpy.bridge")

COMPONENT = "bridge_dead_letters"
MAX_PER_ACTION = 10_000
KINDS = {"failed": "failed", "retried.failed": "failed", "dropped.expired": "expired"}

register_migrations(COMPONENT, [[
    "CREATE TABLE bridge_dead_letters ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL, failed_at REAL NOT NULL,"
    " kind TEXT NOT NULL, reason TEXT NOT NULL, record BLOB NOT NULL)",
    "CREATE INDEX bridge_dead_letters_action ON bridge_dead_letters (action, id)",
    "CREATE TABLE bridge_dead_letter_drops (action TEXT PRIMARY KEY,"
    " dropped INTEGER NOT NULL)",
]])

# a dead letter as the worker hands it over: (counter, reason, record)
Letter = tuple[str, str, bytes]


class DeadLetters:
    """Every action's dead letters in the node's store (`emqpy.store.Store`)."""

    def __init__(self, store, max_per_action: int = MAX_PER_ACTION):
        self.store = store
        self.max_per_action = max_per_action
        store.migrate(COMPONENT)

    # -- from the worker (broker's loop) -----------------------------------------------------

    def add(self, action: str, letters: list[Letter], done: Callable[[bool], None]) -> None:
        """Keep `letters` (in a worker thread); `done(committed)` is called in the loop."""
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, self._insert, action, letters, time.time())

        def finished(f: asyncio.Future) -> None:
            ok = not f.cancelled() and f.exception() is None
            if not ok and not f.cancelled():
                log.error("%s: cannot keep %d dead letters: %s", action, len(letters),
                          f.exception())
            done(ok)
        fut.add_done_callback(finished)

    def _insert(self, action: str, letters: list[Letter], now: float) -> None:
        rows = [(action, now, KINDS.get(counter, "failed"), reason or counter, record)
                for counter, reason, record in letters]
        with self.store.transaction() as conn:
            conn.executemany("INSERT INTO bridge_dead_letters (action, failed_at, kind, reason,"
                             " record) VALUES (?, ?, ?, ?, ?)", rows)
            cut = conn.execute("SELECT id FROM bridge_dead_letters WHERE action=? ORDER BY id "
                               "DESC LIMIT 1 OFFSET ?", (action, self.max_per_action)).fetchone()
            if cut is not None:  # full: the oldest go, counted
                n = conn.execute("DELETE FROM bridge_dead_letters WHERE action=? AND id<=?",
                                 (action, cut[0])).rowcount
                conn.execute("INSERT INTO bridge_dead_letter_drops (action, dropped) "
                             "VALUES (?, ?) ON CONFLICT(action) DO UPDATE SET "
                             "dropped=dropped+excluded.dropped", (action, n))

    # -- for the API ---------------------------------------------------------------------------

    def page(self, action: str, offset: int, limit: int) -> tuple[list, int, int]:
        """(rows of the page, oldest first; how many there are; how many were dropped)."""
        rows = self.store.query("SELECT id, failed_at, kind, reason, record FROM "
                                "bridge_dead_letters WHERE action=? ORDER BY id LIMIT ? "
                                "OFFSET ?", (action, limit, offset))
        total = self.store.query_one("SELECT count(*) FROM bridge_dead_letters WHERE action=?",
                                     (action,))[0]
        dropped = self.store.query_one("SELECT dropped FROM bridge_dead_letter_drops "
                                       "WHERE action=?", (action,))
        return rows, total, dropped[0] if dropped else 0

    def records(self, action: str, ids: Sequence[int] | None) -> list[tuple[int, bytes]]:
        """(id, record) of the given dead letters (all of them with None), oldest first."""
        if ids is None:
            rows = self.store.query("SELECT id, record FROM bridge_dead_letters WHERE action=? "
                                    "ORDER BY id", (action,))
        else:
            rows = []
            for chunk in _chunks(sorted(set(ids))):
                rows += self.store.query(
                    f"SELECT id, record FROM bridge_dead_letters WHERE action=? AND id IN "
                    f"({','.join('?' * len(chunk))}) ORDER BY id", (action, *chunk))
        return [(r[0], r[1]) for r in rows]

    def delete(self, action: str, ids: Sequence[int] | None = None) -> int:
        """Drop the given dead letters (all of them, and the drop count, with None)."""
        if ids is None:
            with self.store.transaction() as conn:
                conn.execute("DELETE FROM bridge_dead_letter_drops WHERE action=?", (action,))
                return conn.execute("DELETE FROM bridge_dead_letters WHERE action=?",
                                    (action,)).rowcount
        n = 0
        with self.store.transaction() as conn:
            for chunk in _chunks(sorted(set(ids))):
                n += conn.execute(f"DELETE FROM bridge_dead_letters WHERE action=? AND id IN "
                                  f"({','.join('?' * len(chunk))})", (action, *chunk)).rowcount
        return n


def _chunks(ids: list[int], size: int = 500):
    for i in range(0, len(ids), size):
        yield ids[i:i + size]
