"""The on-disk queue: order, acknowledgement in any order, bounds, and what survives a reopen,
a torn write and kill -9 of the process holding it."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from emqpy.store import diskqueue
from emqpy.store.diskqueue import DiskQueue


def run(coro):
    return asyncio.run(coro)


def test_records_come_out_in_order_and_acked_ones_do_not_come_back(tmp_path):
    async def first():
        q = DiskQueue.open(tmp_path)
        for i in range(10):
            q.append(b"m%d" % i)
        got = await q.get(4)
        assert [d for _, d in got] == [b"m0", b"m1", b"m2", b"m3"]
        assert (len(q), q.queued) == (10, 6)
        for seq, _ in got[:3]:
            q.ack(seq)
        assert len(q) == 7
        await q.close()

    async def second():
        q = DiskQueue.open(tmp_path)
        # m3 was handed out but not acknowledged: it comes back, first
        got = q.take(100)
        assert [d for _, d in got] == [b"m%d" % i for i in range(3, 10)]
        await q.close()

    run(first())
    run(second())


def test_the_head_waits_for_the_oldest_outstanding_record(tmp_path):
    async def first():
        q = DiskQueue.open(tmp_path)
        for i in range(5):
            q.append(b"%d" % i)
        got = q.take(5)
        for seq, _ in got[1:]:  # everything but the first
            q.ack(seq)
        assert len(q) == 1 and q.bytes == 1
        await q.close()

    async def second():
        q = DiskQueue.open(tmp_path)
        # at least once: the head could not pass record 0, so 1..4 come again too
        assert [d for _, d in q.take(10)] == [b"0", b"1", b"2", b"3", b"4"]
        await q.close()

    run(first())
    run(second())


def test_get_waits_for_an_append_and_times_out_empty(tmp_path):
    async def main():
        q = DiskQueue.open(tmp_path)
        assert await q.get(1, timeout=0.05) == []
        waiter = asyncio.ensure_future(q.get(10))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        q.append(b"x")
        assert [d for _, d in await waiter] == [b"x"]
        await q.close()

    run(main())


def test_full_queue_drops_the_oldest_queued_records_and_counts_them(tmp_path):
    async def main():
        q = DiskQueue.open(tmp_path, max_bytes=100)
        out = q.take(1)  # nothing yet
        assert out == []
        for i in range(30):
            q.append(b"%09d" % i)  # 10 records of 9 bytes fit in 100
        assert q.dropped == 19 and q.bytes <= 100
        got = [d for _, d in q.take(100)]
        assert got == [b"%09d" % i for i in range(19, 30)]
        await q.close()

    run(main())


def test_a_record_handed_out_is_not_dropped_for_space(tmp_path):
    async def main():
        q = DiskQueue.open(tmp_path, max_bytes=20)
        q.append(b"a" * 10)
        (seq, _), = q.take(1)  # in flight to the target
        for _ in range(5):
            q.append(b"b" * 10)
        assert q.dropped == 4 and len(q) == 2
        q.ack(seq)
        assert [d for _, d in q.take(10)] == [b"b" * 10]
        await q.close()

    run(main())


def test_segments_roll_over_and_are_deleted_once_consumed(tmp_path, monkeypatch):
    monkeypatch.setattr(diskqueue, "_MEM_BYTES", 64)  # the reader must go to the files

    async def main():
        q = DiskQueue.open(tmp_path, segment_bytes=200)
        for i in range(100):
            q.append(b"record-%03d" % i)
            if i % 7 == 0:
                await asyncio.sleep(0)  # several flushes, several segments
        await asyncio.sleep(0)
        assert len(list(tmp_path.glob("*.seg"))) > 3
        seen = []
        while q.queued:
            for seq, data in q.take(9):
                seen.append(data)
                q.ack(seq)
        assert seen == [b"record-%03d" % i for i in range(100)]
        assert len(list(tmp_path.glob("*.seg"))) == 1  # the one being written
        assert len(q) == 0 and q.bytes == 0
        await q.close()

    run(main())


def test_a_torn_tail_is_cut_off_and_the_whole_records_kept(tmp_path):
    async def first():
        q = DiskQueue.open(tmp_path)
        for i in range(3):
            q.append(b"ok%d" % i)
        await q.close()

    run(first())
    seg, = tmp_path.glob("*.seg")
    with open(seg, "ab") as fh:
        fh.write(b"\x20\x00\x00\x00\x00\x00\x00\x00half a rec")  # says 32 bytes, has 10

    async def second():
        q = DiskQueue.open(tmp_path)
        q.append(b"after")
        assert [d for _, d in q.take(10)] == [b"ok0", b"ok1", b"ok2", b"after"]
        await q.close()

    run(second())
    run(_reopen_count(tmp_path, 4))  # handed out, never acknowledged: all four again


async def _reopen_count(path, n):
    q = DiskQueue.open(path)
    assert len(q) == n
    await q.close()


def test_a_corrupt_record_ends_the_readable_queue(tmp_path):
    async def first():
        q = DiskQueue.open(tmp_path)
        for i in range(3):
            q.append(b"rec%d" % i)
        await q.close()

    run(first())
    seg, = tmp_path.glob("*.seg")
    raw = bytearray(seg.read_bytes())
    raw[8 + 4 + 8 + 2] ^= 0xFF  # a byte of the second record's data
    seg.write_bytes(bytes(raw))

    async def second():
        q = DiskQueue.open(tmp_path)
        assert [d for _, d in q.take(10)] == [b"rec0"]
        await q.close()

    run(second())


PRODUCER = textwrap.dedent("""
    import asyncio, sys
    from emqpy.store.diskqueue import DiskQueue

    async def main():
        q = DiskQueue.open(sys.argv[1])
        i = 0
        while True:
            for _ in range(500):
                q.append(b"%08d" % i)
                i += 1
            await asyncio.sleep(0)  # the iteration ends: its records are written
            await asyncio.sleep(0)
            print(i, flush=True)  # everything below i was queued in an ended iteration

    asyncio.run(main())
""")


def test_kill_9_loses_nothing_that_was_queued(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", PRODUCER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    reported = 0
    try:
        for line in proc.stdout:
            reported = int(line)
            if reported >= 200_000:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert reported >= 200_000

    async def check():
        q = DiskQueue.open(tmp_path)
        n = len(q)
        assert n >= reported
        got = q.take(n)
        assert [d for _, d in got[:reported]] == [b"%08d" % i for i in range(reported)]
        await q.close()

    run(check())


def test_append_after_close_is_refused(tmp_path):
    async def main():
        q = DiskQueue.open(tmp_path)
        await q.close()
        with pytest.raises(RuntimeError):
            q.append(b"late")

    run(main())


def test_append_gives_the_seq_and_drops_start_at_next_seq(tmp_path):
    async def main():
        q = DiskQueue.open(tmp_path, max_bytes=30)
        seqs = [q.append(b"%09d" % i) for i in range(3)]
        assert seqs == [0, 1, 2] and q.next_seq == 0
        (seq, _), = q.take(1)
        assert seq == 0 and q.next_seq == 1
        oldest, dropped = q.next_seq, q.dropped
        assert q.append(b"%09d" % 3) == 3
        # full: the oldest record not handed out (seq 1) went, seq 0 is still out
        assert q.dropped - dropped == 1 and q.next_seq == oldest + 1
        assert [s for s, _ in q.take(10)] == [2, 3]
        await q.close()

    run(main())
