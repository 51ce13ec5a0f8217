"""How fast an action's on-disk buffer takes and gives back messages (issue 15: enqueue
≥ 50,000 messages/s while the target is down; drain at the target's rate when it returns).

Runs emqpy's segment-file queue (emqpy.store.diskqueue) and, as the reference the issue asks
to measure against, the same work on SQLite in WAL mode (one transaction per loop iteration,
synchronous=NORMAL: also survives kill -9), side by side in one run:

    python bench/diskqueue.py [--messages 500000] [--size 200] [--per-iteration 1000]
"""
from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from emqpy.store.diskqueue import DiskQueue


async def segment_files(folder: Path, n: int, size: int, per_iter: int) -> tuple[float, float]:
    q = DiskQueue.open(folder, max_bytes=n * size * 2)
    payload = b"x" * size
    t0 = time.perf_counter()
    for i in range(0, n, per_iter):
        for _ in range(per_iter):
            q.append(payload)
        await asyncio.sleep(0)  # the iteration ends: its records are written
    enq = time.perf_counter() - t0
    await q.close()
    # the target came back after a restart: everything is read from the files
    q = DiskQueue.open(folder, max_bytes=n * size * 2)
    t0 = time.perf_counter()
    got = 0
    while q.queued:
        for seq, _ in q.take(per_iter):
            q.ack(seq)
            got += 1
        await asyncio.sleep(0)
    drain = time.perf_counter() - t0
    assert got == n, got
    await q.close()
    return n / enq, n / drain


async def sqlite_wal(folder: Path, n: int, size: int, per_iter: int) -> tuple[float, float]:
    db = sqlite3.connect(folder / "buffer.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE q (seq INTEGER PRIMARY KEY, data BLOB)")
    payload = b"x" * size
    t0 = time.perf_counter()
    for i in range(0, n, per_iter):
        db.execute("BEGIN")
        db.executemany("INSERT INTO q (data) VALUES (?)", ((payload,) for _ in range(per_iter)))
        db.execute("COMMIT")
        await asyncio.sleep(0)
    enq = time.perf_counter() - t0
    t0 = time.perf_counter()
    got, last = 0, 0
    while True:
        rows = db.execute("SELECT seq, data FROM q WHERE seq > ? ORDER BY seq LIMIT ?",
                          (last, per_iter)).fetchall()
        if not rows:
            break
        last = rows[-1][0]
        got += len(rows)
        db.execute("DELETE FROM q WHERE seq <= ?", (last,))
        await asyncio.sleep(0)
    drain = time.perf_counter() - t0
    assert got == n, got
    db.close()
    return n / enq, n / drain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=500_000)
    ap.add_argument("--size", type=int, default=200, help="bytes per message")
    ap.add_argument("--per-iteration", type=int, default=1000,
                    help="messages queued per event-loop iteration")
    args = ap.parse_args()
    print(f"{args.messages} messages of {args.size} bytes, {args.per_iteration} per loop "
          "iteration")
    print(f"{'buffer':<28}{'enqueue msg/s':>16}{'drain msg/s':>16}")
    for name, fn in (("emqpy segment files", segment_files), ("SQLite WAL (reference)", sqlite_wal)):
        with tempfile.TemporaryDirectory() as d:
            enq, drain = asyncio.run(fn(Path(d), args.messages, args.size, args.per_iteration))
        print(f"{name:<28}{enq:>16,.0f}{drain:>16,.0f}")


if __name__ == "__main__":
    main()
