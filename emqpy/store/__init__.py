"""Embedded SQLite store for management state (dashboard users, API keys, tokens, and later
every other feature's tables).

One file, ``<data_dir>/emqpy.db``, in WAL mode with ``synchronous=FULL``: a write is fsynced to
the WAL before :meth:`Store.execute` returns, so anything an API call acknowledged survives
``kill -9`` and power loss.

Features add their tables by registering migrations under their own component name::

    from emqpy.store import register_migrations
    register_migrations("retainer", [
        "CREATE TABLE retained (topic TEXT PRIMARY KEY, payload BLOB, ...)",   # version 1
        "ALTER TABLE retained ADD COLUMN expiry REAL",                         # version 2
    ])

A step is one SQL statement, a list of statements, or a callable ``fn(conn)``; step N brings the component to version N. Never
edit a released step, only append. Migrations registered before :meth:`Store.open` run at open;
later ones run with ``store.migrate("retainer")`` (idempotent). The ``schema_version`` table
records each component's version, so a newer release upgrades an older database in place.
"""
from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, Union

DB_FILE = "emqpy.db"

Step = Union[str, Sequence[str], Callable[[sqlite3.Connection], None]]
_MIGRATIONS: dict[str, list[Step]] = {}


def register_migrations(component: str, steps: Sequence[Step]) -> None:
    """Register (or extend) the ordered migration steps of a component."""
    _MIGRATIONS[component] = list(steps)


class Store:
    """A small synchronous wrapper around one SQLite connection, safe to share between threads."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self._conn = conn
        self._lock = threading.RLock()

    @classmethod
    def open(cls, data_dir: Path | str) -> "Store":
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / DB_FILE
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so every statement outside a
        # transaction() block commits (and fsyncs) on its own.
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                               timeout=10.0)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")  # `emqpy ctl` may write from another process
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                     "component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        store = cls(path, conn)
        for component in list(_MIGRATIONS):
            store.migrate(component)
        return store

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    # -- schema -------------------------------------------------------------------------------

    def version(self, component: str) -> int:
        row = self.query_one("SELECT version FROM schema_version WHERE component=?", (component,))
        return row["version"] if row else 0

    def migrate(self, component: str) -> int:
        """Bring ``component`` up to its latest registered version; returns that version."""
        steps = _MIGRATIONS.get(component, [])
        with self.transaction() as conn:
            row = conn.execute("SELECT version FROM schema_version WHERE component=?",
                               (component,)).fetchone()
            current = row["version"] if row else 0
            if current > len(steps):
                raise RuntimeError(
                    f"database {self.path} has {component} schema v{current}, newer than this "
                    f"emqpy knows (v{len(steps)}); upgrade emqpy")
            for step in steps[current:]:
                if callable(step):
                    step(conn)
                else:  # one statement, or a list of statements making one version
                    for sql in ([step] if isinstance(step, str) else step):
                        conn.execute(sql)
            if len(steps) != current:
                conn.execute("INSERT INTO schema_version(component, version) VALUES (?, ?) "
                             "ON CONFLICT(component) DO UPDATE SET version=excluded.version",
                             (component, len(steps)))
        return len(steps)

    # -- data ---------------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement (committed and durable on return); returns rows changed."""
        with self._lock:
            cur = self._conn.execute(sql, params)
            return cur.rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Several statements atomically: ``with store.transaction() as conn: conn.execute(...)``."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- whole tables (data backup) -------------------------------------------------------

    def dump_rows(self, table: str, columns: Sequence[str], where: str = "1",
                  order: str = "rowid") -> list[dict]:
        """Every row of ``table`` (that ``where`` keeps) as a dict of ``columns``."""
        rows = self.query(f"SELECT {', '.join(columns)} FROM {table} WHERE {where} "
                          f"ORDER BY {order}")
        return [dict(r) for r in rows]

    def replace_rows(self, table: str, columns: Sequence[str], rows: Sequence[Any], *,
                     required: Sequence[str] = (), defaults: dict | None = None) -> int:
        """Write dict ``rows`` into ``table`` in one transaction, a row with the key of an
        existing one replacing it; ValueError naming the first row that is not a dict or
        lacks a ``required`` column (then nothing is written). Returns the rows written."""
        values = []
        for i, row in enumerate(rows, 1):
            if not isinstance(row, dict):
                raise ValueError(f"{table} row {i}: an object is expected")
            row = {**(defaults or {}), **row}
            missing = [c for c in required if row.get(c) is None]
            if missing:
                raise ValueError(f"{table} row {i}: missing {', '.join(missing)}")
            values.append(tuple(row.get(c) for c in columns))
        with self.transaction() as conn:
            conn.executemany(f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) "
                             f"VALUES ({', '.join('?' * len(columns))})", values)
        return len(values)

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.query_one("SELECT value FROM meta WHERE key=?", (key,))
        return row["value"] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))


__all__ = ["Store", "register_migrations", "DB_FILE"]
