"""The resource worker: what carries an action's messages from the rule to the target
(EMQX's emqx_resource_buffer_worker), with the buffer on disk.

An action has `worker_pool_size` lanes; a message goes to the lane its publisher's client id
hashes to (EMQX picks the buffer worker by the calling process), so one client's messages keep
their order. Each lane is a `DiskQueue` in ``<data_dir>/buffers/<type>:<name>/<lane>`` (together
bounded by `max_buffer_bytes`: the oldest queued messages are dropped first and counted as
`dropped.queue_full`) and has up to `inflight_window` messages out at once (1 in `sync` query
mode, and 1 means strict order). A message is acknowledged in its queue once its outcome is
final, so what was queued before a crash or kill -9 is sent after the restart (at least once).

Two loops share the work. The broker's loop queues messages, hands each lane's next records to
the I/O loop (emqpy/bridge/ioloop.py) in batches, and takes the outcomes back in batches
(acknowledgement, metrics, `on_result`). The I/O loop makes the requests.

Outcomes, as EMQX counts them: success (`success`, or `retried.success` after a retry); a final
failure (`failed` / `retried.failed`); a recoverable failure blocks the lane: `retried` is
counted and the message is tried again every `resume_interval` (EMQX: the smaller of the health
check interval and a third of `request_ttl`) while the lane's other messages wait; a message
older than `request_ttl` is dropped (`dropped.expired`), and a success that comes back after it
expired is a `late_reply`. `on_result(ok)` is called once per message when its outcome is final
(not for messages recovered from disk after a restart: their callers are gone).
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import shutil
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Awaitable, Callable

from emqpy.store.diskqueue import DiskQueue

log = logging.getLogger("emqpy.bridge")

OK, RETRY, FAIL = 0, 1, 2  # a delivery's outcome: success, recoverable, final failure
_HEAD = struct.Struct("<d")  # a record: expiry (epoch seconds, 0 = never), then JSON
# send(selected, envelope, timeout) -> (OK | RETRY | FAIL, reason), run in the I/O loop
Send = Callable[[dict, dict, float], Awaitable[tuple[int, str]]]
OnResult = Callable[[bool], None]


def encode(selected: dict, envelope: dict, expire_at: float) -> bytes:
    try:
        import orjson
        body = orjson.dumps([selected, envelope])
    except (ImportError, TypeError):  # surrogate-escaped payload bytes: json escapes them
        body = json.dumps([selected, envelope], separators=(",", ":")).encode()
    return _HEAD.pack(expire_at) + body


def decode(data: bytes) -> tuple[float, dict, dict]:
    (expire_at,) = _HEAD.unpack_from(data)
    try:
        import orjson
        selected, envelope = orjson.loads(data[_HEAD.size:])
    except (ImportError, ValueError):
        selected, envelope = json.loads(data[_HEAD.size:])
    return expire_at, selected, envelope


class _Lane:
    """A lane's state in the broker's loop."""
    __slots__ = ("queue", "window", "out", "callbacks", "room", "task")

    def __init__(self, queue: DiskQueue, window: int):
        self.queue = queue
        self.window = window
        self.out = 0  # records handed to the I/O loop, outcome not yet back
        self.callbacks: dict[int, OnResult] = {}  # seq -> on_result, in seq order
        self.room = asyncio.Event()
        self.task: asyncio.Task | None = None


class _Sender:
    """A lane's state in the I/O loop: the message whose recoverable failure blocks it (None:
    not blocked; it alone is retried until its outcome is final, the others wait)."""
    __slots__ = ("prober", "unblocked")

    def __init__(self):
        self.prober: int | None = None
        self.unblocked = asyncio.Event()
        self.unblocked.set()


class Worker:
    """One action's lanes. `open` recovers the buffer, `start` sends, `close` stops sending
    (what is left stays on disk), `destroy` also removes the buffer."""

    def __init__(self, folder: Path, opts, metrics, send: Send, io, send_timeout: float,
                 envelope_keys: frozenset = frozenset()):
        self.folder = folder
        self.opts = opts
        self.metrics = metrics
        self.send = send
        self.io = io  # emqpy.bridge.ioloop.IoLoop
        self.send_timeout = send_timeout  # a request's own limit (within request_ttl)
        # what is kept of a message's envelope: the columns the action's templates read and
        # the rule's output does not have (the rest would only make the buffer bigger)
        self.envelope_keys = envelope_keys
        self.ttl = opts.request_ttl if opts.request_ttl != math.inf else 0.0
        self.resume_interval = opts.resume_interval or max(
            0.001, min(opts.health_check_interval, self.ttl / 3 if self.ttl else math.inf))
        self.pool = opts.worker_pool_size
        self.lanes: list[_Lane] = []
        self.sending = False
        self.loop: asyncio.AbstractEventLoop | None = None
        # outcomes reported by the I/O loop, taken by the broker's loop in one go
        self._results: list[tuple[int, int, str, bool | None]] = []
        self._results_lock = threading.Lock()
        self._senders: list[_Sender] = []  # I/O loop side, one per lane
        self._tasks: set[asyncio.Task] = set()  # deliveries running in the I/O loop

    # -- lifecycle (broker's loop) -----------------------------------------------------------

    def open(self, pending: list[dict[int, OnResult]] = ()) -> None:
        """Open the lanes' queues; lanes left by a bigger pool are opened too, so what they
        hold is still sent. `pending`: what `close` returned for the same folder."""
        self.loop = asyncio.get_running_loop()
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = [int(p.name) for p in self.folder.iterdir() if p.name.isdigit()]
        n = max([self.pool, *(i + 1 for i in existing)])
        window = 1 if self.opts.query_mode == "sync" else self.opts.inflight_window
        per_lane = max(1, int(self.opts.max_buffer_bytes) // self.pool)
        self.lanes = [_Lane(DiskQueue.open(self.folder / str(i), max_bytes=per_lane), window)
                      for i in range(max(n, len(pending)))]
        for lane, callbacks in zip(self.lanes, pending):
            lane.callbacks = callbacks

    def start(self) -> None:
        if self.sending:
            return
        self.sending = True
        self.io.call(lambda: self._senders.extend(_Sender() for _ in self.lanes))
        for i, lane in enumerate(self.lanes):
            lane.task = self.loop.create_task(self._run(i, lane))

    async def stop(self) -> None:
        """Stop sending; messages out stay unacknowledged (sent again when reopened)."""
        if not self.sending:
            return
        self.sending = False
        tasks = [lane.task for lane in self.lanes if lane.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.io.run(self._cancel_deliveries())
        for lane in self.lanes:
            lane.task = None
            lane.out = 0

    async def _cancel_deliveries(self) -> None:  # in the I/O loop
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._senders.clear()

    async def close(self) -> list[dict[int, OnResult]]:
        """Stop and close the queues; returns each lane's `on_result`s still waiting (the
        messages stay on disk with the same seqs: hand them to the next `open`)."""
        await self.stop()
        with self._results_lock:
            self._results.clear()
        pending = []
        for lane in self.lanes:
            pending.append(lane.callbacks)
            lane.callbacks = {}
            await lane.queue.close()
        return pending

    async def destroy(self) -> None:
        """Close and remove the buffer: what it held is dropped, its callers told so."""
        for callbacks in await self.close():
            for cb in callbacks.values():
                notify(cb, False)
        await asyncio.to_thread(shutil.rmtree, self.folder, True)

    # -- gauges ------------------------------------------------------------------------------

    @property
    def queuing(self) -> int:
        return sum(lane.queue.queued for lane in self.lanes)

    @property
    def inflight(self) -> int:
        return sum(lane.out for lane in self.lanes)

    # -- producing (broker's loop) -----------------------------------------------------------

    def submit(self, selected: dict, envelope: dict, on_result: OnResult | None) -> None:
        """Queue one message (the rule's output and its event columns); counted `matched`."""
        self.metrics.inc("matched")
        key = envelope.get("clientid") or selected.get("clientid") or ""
        lane = self.lanes[zlib.crc32(str(key).encode()) % self.pool]
        expire_at = time.time() + self.ttl if self.ttl else 0.0
        kept = {k: envelope[k] for k in self.envelope_keys
                if k in envelope and k not in selected}
        q = lane.queue
        dropped, oldest = q.dropped, q.next_seq
        seq = q.append(encode(selected, kept, expire_at))
        if on_result is not None:
            lane.callbacks[seq] = on_result
        lost = q.dropped - dropped
        if lost:  # the queue was full: its oldest records not handed out went
            self.metrics.inc("dropped.queue_full", lost)
            for s in range(oldest, oldest + lost):
                cb = lane.callbacks.pop(s, None)
                if cb is not None:
                    notify(cb, False)

    async def _run(self, i: int, lane: _Lane) -> None:
        """Hand the lane's records to the I/O loop while its window has room."""
        while True:
            free = lane.window - lane.out
            if free <= 0:
                lane.room.clear()
                await lane.room.wait()
                continue
            batch = await lane.queue.get(free)
            lane.out += len(batch)
            self.io.loop.call_soon_threadsafe(self._deliver_batch, i, batch)

    def _take_results(self) -> None:
        """The outcomes the I/O loop reported (broker's loop)."""
        with self._results_lock:
            results, self._results = self._results, []
        if not self.sending:
            return
        m = self.metrics
        for i, seq, counter, ok in results:
            if counter:
                m.inc(counter)
            if ok is None:
                continue
            lane = self.lanes[i]
            lane.queue.ack(seq)
            lane.out -= 1
            lane.room.set()
            cb = lane.callbacks.pop(seq, None)
            if cb is not None:
                notify(cb, ok)

    # -- sending (I/O loop) ------------------------------------------------------------------

    def _report(self, i: int, seq: int, counter: str, ok: bool | None) -> None:
        with self._results_lock:
            first = not self._results
            self._results.append((i, seq, counter, ok))
        if first:
            self.loop.call_soon_threadsafe(self._take_results)

    def _deliver_batch(self, i: int, batch: list) -> None:
        for seq, data in batch:
            task = asyncio.get_running_loop().create_task(self._deliver(i, seq, data))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, i: int, seq: int, data: bytes) -> None:
        sender = self._senders[i]
        try:
            expire_at, selected, envelope = decode(data)
        except ValueError:  # cannot happen for records this code wrote; never block on one
            log.error("%s: undecodable buffer record dropped", self.folder.name)
            self._report(i, seq, "dropped.other", False)
            return
        retried = False
        while True:
            now = time.time()
            if expire_at and now >= expire_at:
                if sender.prober == seq:
                    self._unblock(sender)
                self._report(i, seq, "dropped.expired", False)
                return
            timeout = min(self.send_timeout, expire_at - now) if expire_at else \
                self.send_timeout
            try:
                outcome, reason = await self.send(selected, envelope, timeout)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug in the connector must not wedge the lane
                log.exception("%s: sending failed", self.folder.name)
                outcome, reason = FAIL, str(e)
            if outcome == OK:
                self._unblock(sender)
                if expire_at and time.time() >= expire_at:
                    self._report(i, seq, "late_reply", False)
                else:
                    self._report(i, seq, "retried.success" if retried else "success", True)
                return
            if outcome == FAIL:
                log.warning("%s: request failed: %s", self.folder.name, reason)
                self._unblock(sender)
                self._report(i, seq, "retried.failed" if retried else "failed", False)
                return
            # recoverable: block the lane; one message probes every resume_interval
            retried = True
            self._report(i, seq, "retried", None)
            if sender.prober is None or sender.prober == seq:
                if sender.prober is None:
                    log.warning("%s: target unavailable (%s), retrying", self.folder.name,
                                reason)
                    sender.prober = seq
                    sender.unblocked.clear()
                await asyncio.sleep(self.resume_interval)
            else:
                wait = None if not expire_at else max(0.0, expire_at - time.time())
                try:
                    await asyncio.wait_for(sender.unblocked.wait(), wait)
                except asyncio.TimeoutError:
                    pass

    @staticmethod
    def _unblock(sender: _Sender) -> None:
        if sender.prober is not None:
            sender.prober = None
            sender.unblocked.set()


def notify(cb: OnResult, ok: bool) -> None:
    """Tell a caller its message's outcome (its exceptions are logged, never raised)."""
    try:
        cb(ok)
    except Exception:  # the caller's bug must not stop the worker
        log.exception("action result callback failed")
