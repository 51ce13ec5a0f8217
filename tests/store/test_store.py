"""emqpy.store: WAL + synchronous FULL, versioned migrations, atomic transactions, durability
across kill -9 of the writing process."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from emqpy import store as store_mod
from emqpy.store import Store


@pytest.fixture
def registry():
    saved = dict(store_mod._MIGRATIONS)
    yield store_mod._MIGRATIONS
    store_mod._MIGRATIONS.clear()
    store_mod._MIGRATIONS.update(saved)


def test_open_sets_wal_and_full_sync(tmp_path):
    s = Store.open(tmp_path / "d")
    try:
        assert (tmp_path / "d" / "emqpy.db").is_file()
        assert s.query_one("PRAGMA journal_mode")[0] == "wal"
        assert s.query_one("PRAGMA synchronous")[0] == 2  # FULL
    finally:
        s.close()


def test_migrations_run_once_and_upgrade_in_place(tmp_path, registry):
    store_mod.register_migrations("t_feature", ["CREATE TABLE t (a INTEGER)"])
    s = Store.open(tmp_path)
    assert s.version("t_feature") == 1
    s.execute("INSERT INTO t(a) VALUES (1)")
    s.close()
    # A later release appends a step: the old database is upgraded, data kept.
    store_mod.register_migrations("t_feature", ["CREATE TABLE t (a INTEGER)",
                                                ["ALTER TABLE t ADD COLUMN b TEXT",
                                                 "UPDATE t SET b='x'"]])
    s = Store.open(tmp_path)
    assert s.version("t_feature") == 2
    assert [tuple(r) for r in s.query("SELECT a, b FROM t")] == [(1, "x")]
    s.close()


def test_migration_registered_after_open(tmp_path, registry):
    s = Store.open(tmp_path)
    store_mod.register_migrations("late", [lambda conn: conn.execute("CREATE TABLE late (x)")])
    assert s.migrate("late") == 1
    assert s.migrate("late") == 1  # idempotent
    s.execute("INSERT INTO late VALUES (1)")
    s.close()


def test_newer_schema_is_refused(tmp_path, registry):
    store_mod.register_migrations("t2", ["CREATE TABLE t2 (a)", "CREATE TABLE t2b (a)"])
    Store.open(tmp_path).close()
    store_mod.register_migrations("t2", ["CREATE TABLE t2 (a)"])
    with pytest.raises(RuntimeError, match="newer"):
        Store.open(tmp_path)


def test_failed_migration_step_rolls_back(tmp_path, registry):
    store_mod.register_migrations("bad", [["CREATE TABLE ok1 (a)", "NOT SQL"]])
    with pytest.raises(Exception):
        Store.open(tmp_path)
    store_mod._MIGRATIONS.pop("bad")
    s = Store.open(tmp_path)
    assert s.version("bad") == 0
    assert s.query_one("SELECT name FROM sqlite_master WHERE name='ok1'") is None
    s.close()


def test_transaction_is_atomic(tmp_path):
    s = Store.open(tmp_path)
    s.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)")
    with pytest.raises(ZeroDivisionError):
        with s.transaction() as conn:
            conn.execute("INSERT INTO kv VALUES ('a', '1')")
            1 / 0
    assert s.query("SELECT * FROM kv") == []
    s.set_meta("m", "1")
    assert s.get_meta("m") == "1" and s.get_meta("nope", "d") == "d"
    s.close()


def test_acknowledged_write_survives_kill_9(tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        from emqpy.store import Store
        s = Store.open({str(tmp_path)!r})
        s.execute("CREATE TABLE IF NOT EXISTS acked (n INTEGER)")
        for n in range(50):
            s.execute("INSERT INTO acked VALUES (?)", (n,))
        print("acked", flush=True)
        time.sleep(60)
    """)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "acked"
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait(10)
    s = Store.open(tmp_path)
    assert [r[0] for r in s.query("SELECT n FROM acked ORDER BY n")] == list(range(50))
    s.close()
