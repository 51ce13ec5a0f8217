"""A queue kept on disk: what a data-integration action holds while its target is slow or down.

EMQX keeps an action's buffer in memory (or in replayq files it drops at restart), so a crash
while the target is down loses what was queued. Here every record is in an append-only segment
file before the loop iteration that queued it ends, and a restart (or ``kill -9``) hands back
everything not yet acknowledged: delivery is at least once.

    q = DiskQueue.open(data_dir / "buffers" / "http:my_action", max_bytes=256 << 20)
    q.append(b"...")                       # cheap: one write(2) per loop iteration for all
    batch = await q.get(100)               # [(seq, data), ...] not handed out before
    q.ack(seq)                             # done with that record (any order)
    await q.close()

Files in the queue's folder: ``<first seq, 16 hex digits>.seg``, each a run of records
``[length u32][crc32 u32][data]`` (a torn or corrupt tail, from a crash mid-write, is cut off at
open), and ``head``: the first record not yet acknowledged, rewritten by rename at most every
``head_interval`` seconds (a crash redelivers at most what was acknowledged in that time).
Segments wholly before the head are deleted. Past ``max_bytes`` the oldest records that were
not handed out are dropped and counted (``dropped``), as EMQX drops from the front of its queue.
``fsync`` of the segment being written runs in a worker thread every ``fsync_interval``
seconds, for power loss; a process crash loses nothing that reached ``write``.
"""
from __future__ import annotations

import asyncio
import logging
import os
import struct
import threading
import zlib
from collections import OrderedDict, deque
from pathlib import Path

log = logging.getLogger("emqpy.store")

_REC = struct.Struct("<II")  # length, crc32
_SUFFIX = ".seg"
_READ_CHUNK = 1 << 20  # bytes read from a segment at a time (bounded work per call)
_MEM_BYTES = 8 << 20  # records kept in memory for the reader; beyond, it reads the files


class _Segment:
    __slots__ = ("first", "count", "size", "path")

    def __init__(self, first: int, path: Path, count: int = 0, size: int = 0):
        self.first, self.path, self.count, self.size = first, path, count, size


def frame(data: bytes) -> bytes:
    """A record as it is written: length and CRC-32, then the data (one format for every
    append-only file of emqpy's: these queues and emqpy.durable's journal)."""
    return _REC.pack(len(data), zlib.crc32(data)) + data


def records(buf: bytes, pos: int = 0):
    """(data, end offset) of each whole, intact record in ``buf`` from ``pos``: a torn or
    corrupt tail ends the iteration."""
    end = len(buf)
    while pos + 8 <= end:
        n, crc = _REC.unpack_from(buf, pos)
        stop = pos + 8 + n
        if stop > end:
            return
        data = buf[pos + 8:stop]
        if zlib.crc32(data) != crc:
            return
        yield data, stop
        pos = stop


class DiskQueue:
    def __init__(self, path: Path, *, max_bytes: int, segment_bytes: int,
                 fsync_interval: float, head_interval: float):
        self.path = path
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync_interval = fsync_interval
        self.head_interval = head_interval
        self.dropped = 0  # records dropped because the queue was full
        self._segments: list[_Segment] = []
        self._fd: int | None = None  # the last segment, open for appending
        self._head = 0  # first seq not acknowledged
        self._tail = 0  # next seq to append
        self._read = 0  # next seq to hand out
        self._queued_bytes = 0  # bytes of the records from _read to _tail
        # handed out and not acknowledged: seq -> size, in seq order (the head is the first)
        self._out: OrderedDict[int, int] = OrderedDict()
        self._out_bytes = 0
        self._pending: list[bytes] = []  # encoded records not yet written
        self._mem: deque[tuple[int, bytes]] = deque()  # records from _read kept in memory
        self._mem_bytes = 0
        self._mem_ok = True  # _mem holds every record from _read to _tail
        # where the reader is in the files: (segment index, offset in chunk, chunk, seq there)
        self._reader: tuple[int, int, bytes, int] | None = None
        self._chunk_base = 0  # file offset of the chunk
        self._ready = asyncio.Event()
        self._flush_scheduled = False
        self._head_dirty = False
        self._head_saving: asyncio.Future | None = None  # a head being written
        self._head_lock = threading.Lock()
        self._saved_head = -1
        self._unsynced = False
        self._timers: list[asyncio.TimerHandle] = []
        self._closed = False

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path, *, max_bytes: int = 256 << 20, segment_bytes: int = 16 << 20,
             fsync_interval: float = 0.1, head_interval: float = 0.2) -> "DiskQueue":
        """Open (or create) the queue in folder ``path``; records left by a previous run that
        were not acknowledged are handed out again first. Call from the event loop."""
        q = cls(Path(path), max_bytes=max_bytes, segment_bytes=segment_bytes,
                fsync_interval=fsync_interval, head_interval=head_interval)
        q.path.mkdir(parents=True, exist_ok=True)
        q._recover()
        loop = asyncio.get_running_loop()
        q._timers = [loop.call_later(fsync_interval, q._sync_tick),
                     loop.call_later(head_interval, q._head_tick)]
        return q

    def _recover(self) -> None:
        head = 0
        try:
            head = int((self.path / "head").read_text().strip() or 0)
        except (OSError, ValueError):
            pass
        files = sorted(self.path.glob("*" + _SUFFIX))
        for f in files:
            try:
                first = int(f.stem, 16)
            except ValueError:
                continue
            self._segments.append(_Segment(first, f))
        for i, seg in enumerate(self._segments):
            data = seg.path.read_bytes()
            good = 0
            for rec, end in records(data):
                if seg.first + seg.count >= head:
                    self._queued_bytes += len(rec)
                seg.count += 1
                good = end
            if good < len(data):  # a torn tail: keep what is whole, drop later segments
                with open(seg.path, "r+b") as fh:
                    fh.truncate(good)
                for later in self._segments[i + 1:]:
                    later.path.unlink(missing_ok=True)
                del self._segments[i + 1:]
            seg.size = good
            if good < len(data):
                break
        self._tail = (self._segments[-1].first + self._segments[-1].count
                      if self._segments else head)
        self._head = self._read = max(min(head, self._tail),
                                      self._segments[0].first if self._segments else head)
        self._mem_ok = self._read == self._tail
        self._drop_consumed_segments()
        if self._segments:
            self._fd = os.open(self._segments[-1].path, os.O_WRONLY | os.O_APPEND)

    # -- producing -------------------------------------------------------------------------

    def __len__(self) -> int:
        """Records not yet acknowledged (queued or handed out)."""
        return self._tail - self._read + len(self._out)

    @property
    def queued(self) -> int:
        """Records not yet handed out."""
        return self._tail - self._read

    @property
    def next_seq(self) -> int:
        """The seq ``get`` hands out next: those before it were handed out, or dropped
        (``append`` drops from here when the queue is full)."""
        return self._read

    @property
    def bytes(self) -> int:
        """Bytes of the records not yet acknowledged."""
        return self._queued_bytes + self._out_bytes

    def append(self, data: bytes) -> int:
        """Queue ``data``; returns its seq (what ``get`` hands out with it)."""
        if self._closed:
            raise RuntimeError("queue is closed")
        seq = self._tail
        self._tail = seq + 1
        self._pending.append(frame(data))
        self._queued_bytes += len(data)
        if self._mem_ok:
            if self._mem_bytes + len(data) <= _MEM_BYTES:
                self._mem.append((seq, data))
                self._mem_bytes += len(data)
            else:  # the reader is far behind: it reads the files until it catches up
                self._mem_ok = False
                self._mem.clear()
                self._mem_bytes = 0
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)
        if self._queued_bytes + self._out_bytes > self.max_bytes:
            self._drop_oldest()
        self._ready.set()
        return seq

    def flush(self) -> None:
        """Write the records appended since the last flush (runs once per loop iteration)."""
        self._flush_scheduled = False
        pending = self._pending
        if not pending:
            return
        self._pending = []
        first = self._tail - len(pending)
        seg = self._segments[-1] if self._segments else None
        if seg is None or seg.size >= self.segment_bytes:
            seg = self._new_segment(first)
        data = b"".join(pending)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        seg.count += len(pending)
        seg.size += len(data)
        self._unsynced = True

    def _new_segment(self, first: int) -> _Segment:
        if self._fd is not None:
            os.close(self._fd)
        path = self.path / f"{first:016x}{_SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        seg = _Segment(first, path)
        self._segments.append(seg)
        return seg

    def _drop_oldest(self) -> None:
        """Drop records not yet handed out, oldest first, until the queue fits."""
        while self._queued_bytes + self._out_bytes > self.max_bytes and self._read < self._tail:
            seq, _ = self._next()
            self.dropped += 1
            self.ack(seq)

    # -- consuming -------------------------------------------------------------------------

    async def get(self, max_items: int, timeout: float | None = None) -> list[tuple[int, bytes]]:
        """Up to ``max_items`` records not handed out before, waiting for at least one (at
        most ``timeout`` seconds, then ``[]``)."""
        while self._read >= self._tail:
            self._ready.clear()
            if timeout is None:
                await self._ready.wait()
            else:
                try:
                    await asyncio.wait_for(self._ready.wait(), timeout)
                except asyncio.TimeoutError:
                    return []
        return self.take(max_items)

    def take(self, max_items: int) -> list[tuple[int, bytes]]:
        """What ``get`` returns, without waiting (``[]`` when nothing is queued)."""
        out = []
        while len(out) < max_items and self._read < self._tail:
            out.append(self._next())
        return out

    def _next(self) -> tuple[int, bytes]:
        """Hand out the record at the read cursor."""
        seq = self._read
        if self._mem and self._mem[0][0] == seq:
            _, data = self._mem.popleft()
            self._mem_bytes -= len(data)
        else:
            data = self._read_disk(seq)
        self._read = seq + 1
        if self._read == self._tail and not self._mem_ok:  # caught up: memory serves again
            self._mem_ok = True
        n = len(data)
        self._queued_bytes -= n
        self._out[seq] = n
        self._out_bytes += n
        return seq, data

    def _read_disk(self, seq: int) -> bytes:
        if seq - self._tail + len(self._pending) >= 0:  # appended, not yet written
            self.flush()
        if self._reader is None or self._reader[3] != seq:
            self._seek(seq)
        idx, offset, chunk, at = self._reader
        for data, end in records(chunk, offset):
            self._reader = (idx, end, chunk, seq + 1)
            return data
        # the chunk is used up: read on from its end in the same or the next segment
        seg = self._segments[idx]
        base = self._chunk_base
        if base + offset >= seg.size:
            idx += 1
            self._load(idx, 0, seq)
        else:
            self._load(idx, base + offset, seq)
        return self._read_disk(seq)

    def _seek(self, seq: int) -> None:
        idx = next(i for i in range(len(self._segments) - 1, -1, -1)
                   if self._segments[i].first <= seq)
        seg = self._segments[idx]
        self._load(idx, 0, seg.first)
        while self._reader[3] < seq:  # walk to the record
            _, offset, chunk, at = self._reader
            rec = next(records(chunk, offset), None)
            if rec is None:
                self._load(idx, self._chunk_base + offset, at)
                continue
            self._reader = (idx, rec[1], chunk, at + 1)

    def _load(self, idx: int, file_offset: int, seq: int) -> None:
        seg = self._segments[idx]
        with open(seg.path, "rb") as fh:
            fh.seek(file_offset)
            chunk = fh.read(_READ_CHUNK)
            n, _ = _REC.unpack_from(chunk, 0) if len(chunk) >= 8 else (0, 0)
            if 8 + n > len(chunk):  # one record bigger than a chunk
                chunk += fh.read(8 + n - len(chunk))
        self._chunk_base = file_offset
        self._reader = (idx, 0, chunk, seq)

    def ack(self, seq: int) -> None:
        """The record ``seq`` (from ``get``) is done with: delivered, or given up on."""
        n = self._out.pop(seq, None)
        if n is None:
            return
        self._out_bytes -= n
        head = next(iter(self._out)) if self._out else self._read
        if head != self._head:
            self._head = head
            self._head_dirty = True
            if self._segments and len(self._segments) > 1 and \
                    self._segments[1].first <= head:
                self._drop_consumed_segments()

    def _drop_consumed_segments(self) -> None:
        segs = self._segments
        while len(segs) > 1 and segs[1].first <= self._head:
            segs.pop(0).path.unlink(missing_ok=True)
            if self._reader is not None:
                idx, offset, chunk, at = self._reader
                self._reader = (idx - 1, offset, chunk, at) if idx > 0 else None

    # -- durability ------------------------------------------------------------------------

    def _save_head(self, head: int) -> None:
        """Write ``head`` (in a worker thread: a rename costs the loop ~1 ms on some file
        systems); never goes back to an older head."""
        with self._head_lock:
            if head <= self._saved_head:
                return
            tmp = os.path.join(self.path, "head.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, str(head).encode())
            finally:
                os.close(fd)
            os.replace(tmp, os.path.join(self.path, "head"))
            self._saved_head = head

    def _head_tick(self) -> None:
        loop = asyncio.get_running_loop()
        if self._head_dirty and self._head_saving is None:
            self._head_dirty = False
            self._head_saving = loop.run_in_executor(None, self._save_head, self._head)
            self._head_saving.add_done_callback(self._head_saved)
        self._timers[1] = loop.call_later(self.head_interval, self._head_tick)

    def _head_saved(self, fut: asyncio.Future) -> None:
        self._head_saving = None
        if not fut.cancelled() and fut.exception() is not None:
            self._head_dirty = True  # tried again at the next tick
            log.error("disk queue %s: cannot save its head: %s", self.path, fut.exception())

    def _sync_tick(self) -> None:
        loop = asyncio.get_running_loop()
        if self._unsynced and self._fd is not None:
            self._unsynced = False
            fd = self._fd
            loop.run_in_executor(None, _fsync_quietly, fd)
        self._timers[0] = loop.call_later(self.fsync_interval, self._sync_tick)

    async def close(self) -> None:
        """Write and fsync everything, save the head; the queue can be opened again."""
        if self._closed:
            return
        self._closed = True
        for t in self._timers:
            t.cancel()
        self.flush()
        if self._fd is not None:
            await asyncio.to_thread(os.fsync, self._fd)
            os.close(self._fd)
            self._fd = None
        if self._head_saving is not None:
            await asyncio.gather(self._head_saving, return_exceptions=True)
        self._save_head(self._head)


def _fsync_quietly(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError:  # closed meanwhile (the segment rolled over or the queue closed)
        pass
