"""The resource worker: what carries an action's messages from the rule to the target
(EMQX's emqx_resource_buffer_worker), with the buffer on disk.

An action has `worker_pool_size` lanes; a message goes to the lane its publisher's client id
hashes to (EMQX picks the buffer worker by the calling process), so one client's messages keep
their order. Each lane is a `DiskQueue` in ``<data_dir>/buffers/<type>:<name>/<lane>`` (together
bounded by `max_buffer_bytes`: the oldest queued messages are dropped first and counted as
`dropped.queue_full`) and has up to `inflight_window` messages out at once (1 in `sync` query
mode, and 1 means strict order). A message is acknowledged in its queue once its outcome is
final, so what was queued before a crash or kill -9 is sent after the restart (at least once).

Two sides share the work. The broker's loop (here) queues messages, hands each lane's next
records to the sending side (emqpy/bridge/delivery.py) in batches, and takes the outcomes back
in batches (acknowledgement, metrics, `on_result`). The sending side makes the requests where
the connector's client lives: in the delivery process for HTTP actions
(emqpy/bridge/process.py, `ProcessLink`), in the I/O loop thread (emqpy/bridge/ioloop.py,
`ThreadLink`) for the others.

Outcomes, as EMQX counts them: success (`success`, or `retried.success` after a retry); a final
failure (`failed` / `retried.failed`); a recoverable failure blocks the lane: `retried` is
counted and the message is tried again every `resume_interval` (EMQX: the smaller of the health
check interval and a third of `request_ttl`) while the lane's other messages wait; a message
older than `request_ttl` is dropped (`dropped.expired`), and a success that comes back after it
expired is a `late_reply`. `on_result(ok)` is called once per message when its outcome is final
(not for messages recovered from disk after a restart: their callers are gone). A final failure
or an expiry also becomes a dead letter (emqpy/bridge/dead_letters.py), and its record is
acknowledged only once that is committed.
"""
from __future__ import annotations

import asyncio
import logging
import math
import shutil
import threading
import time
import zlib
from pathlib import Path
from typing import Callable

from emqpy.store.diskqueue import DiskQueue

from .dead_letters import KINDS
from .delivery import FAIL, OK, RETRY, Delivery, decode, encode

__all__ = ["FAIL", "OK", "RETRY", "ThreadLink", "Worker", "decode", "encode", "notify"]

log = logging.getLogger("emqpy.bridge")

OnResult = Callable[[bool], None]
# what the sending side reports: (lane, seq, counter, final, reason), see delivery.py
Result = tuple[int, int, str, "bool | None", str]


class _Lane:
    """A lane's state in the broker's loop."""
    __slots__ = ("queue", "window", "out", "records", "callbacks", "room", "task")

    def __init__(self, queue: DiskQueue, window: int):
        self.queue = queue
        self.window = window
        self.out = 0  # records handed to the sending side, outcome not yet acknowledged
        self.records: dict[int, bytes] = {}  # those records (kept for dead letters)
        self.callbacks: dict[int, OnResult] = {}  # seq -> on_result, in seq order
        self.room = asyncio.Event()
        self.task: asyncio.Task | None = None


class ThreadLink:
    """The sending side in the I/O loop thread: batches go there with call_soon_threadsafe,
    outcomes come back in one call per broker loop iteration."""

    def __init__(self, io, impl):
        self.io = io  # emqpy.bridge.ioloop.IoLoop
        self.impl = impl  # what the action sends with (`send`, maybe `send_now`)
        self.delivery: Delivery | None = None
        self._results: list[Result] = []
        self._lock = threading.Lock()
        self._worker = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the broker's

    def open(self, worker: "Worker", lanes: int, ttl: float, resume_interval: float) -> None:
        self._worker = worker
        self._loop = asyncio.get_running_loop()

        def make():
            impl = self.impl
            self.delivery = Delivery(worker.name, impl.send, self._report, lanes=lanes,
                                     send_timeout=impl.request_timeout, ttl=ttl,
                                     resume_interval=resume_interval,
                                     send_now=getattr(impl, "send_now", None))
        self.io.call(make)

    def deliver(self, i: int, batch: list) -> None:
        self.io.loop.call_soon_threadsafe(self.delivery.deliver_batch, i, batch)

    async def close(self) -> None:
        if self.delivery is not None:
            delivery, self.delivery = self.delivery, None
            await self.io.run(delivery.cancel())
        with self._lock:
            self._results.clear()

    def _report(self, *result) -> None:  # in the I/O loop
        with self._lock:
            first = not self._results
            self._results.append(result)
        if first:
            self._loop.call_soon_threadsafe(self._take)

    def _take(self) -> None:  # in the broker's loop
        with self._lock:
            results, self._results = self._results, []
        if self._worker is not None:
            self._worker.on_results(results)


class Worker:
    """One action's lanes. `open` recovers the buffer, `start` sends, `close` stops sending
    (what is left stays on disk), `destroy` also removes the buffer. `link` is the sending
    side (`ThreadLink`, or emqpy/bridge/process.py's `ProcessLink`)."""

    def __init__(self, folder: Path, opts, metrics, link, envelope_keys: frozenset = frozenset(),
                 dead_letters=None):
        self.folder = folder
        self.name = folder.name  # the action's id
        self.opts = opts
        self.metrics = metrics
        self.link = link
        self.dead_letters = dead_letters  # emqpy/bridge/dead_letters.py (None: not kept)
        # what is kept of a message's envelope: the columns the action's templates read and
        # the rule's output does not have (the rest would only make the buffer bigger)
        self.envelope_keys = envelope_keys
        self.ttl = opts.request_ttl if opts.request_ttl != math.inf else 0.0
        self.resume_interval = opts.resume_interval or max(
            0.001, min(opts.health_check_interval, self.ttl / 3 if self.ttl else math.inf))
        self.pool = opts.worker_pool_size
        self.lanes: list[_Lane] = []
        self.sending = False
        self.closed = False  # closed by its owner (not to be reopened by `relaunch`)
        self.loop: asyncio.AbstractEventLoop | None = None

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
        self.link.open(self, len(self.lanes), self.ttl, self.resume_interval)
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
        await self.link.close()
        for lane in self.lanes:
            lane.task = None
            lane.out = 0
            lane.records.clear()

    async def close(self, *, reopening: bool = False) -> list[dict[int, OnResult]]:
        """Stop and close the queues; returns each lane's `on_result`s still waiting (the
        messages stay on disk with the same seqs: hand them to the next `open`)."""
        if not reopening:
            self.closed = True
        await self.stop()
        pending = []
        for lane in self.lanes:
            pending.append(lane.callbacks)
            lane.callbacks = {}
            await lane.queue.close()
        return pending

    async def relaunch(self) -> None:
        """The sending side was lost (its process died): reopen the buffer, so what was out
        is sent again."""
        if not self.sending or self.closed:
            return
        pending = await self.close(reopening=True)
        if self.closed:  # closed by its owner meanwhile: it stays closed
            return
        self.open(pending)
        self.start()

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
        """Hand the lane's records to the sending side while its window has room."""
        while True:
            free = lane.window - lane.out
            if free <= 0:
                lane.room.clear()
                await lane.room.wait()
                continue
            batch = await lane.queue.get(free)
            lane.out += len(batch)
            if self.dead_letters is not None:
                lane.records.update(batch)
            self.link.deliver(i, batch)

    def on_results(self, results: list[Result]) -> None:
        """Outcomes the sending side reported (broker's loop)."""
        if not self.sending:
            return
        m = self.metrics
        keep = self.dead_letters is not None
        dead: list[tuple[int, int]] = []
        letters = []
        for i, seq, counter, ok, reason in results:
            if counter:
                m.inc(counter)
            if ok is None:
                continue
            lane = self.lanes[i]
            record = lane.records.pop(seq, None) if keep else None
            if record is not None and counter in KINDS:
                dead.append((i, seq))  # acknowledged once its dead letter is kept
                letters.append((counter, reason, record))
            else:
                self._ack(lane, seq)
            cb = lane.callbacks.pop(seq, None)
            if cb is not None:
                notify(cb, ok)
        if dead:
            lanes = self.lanes
            self.dead_letters.add(self.name, letters, lambda kept: self._dead_kept(lanes, dead, kept))

    @staticmethod
    def _ack(lane: _Lane, seq: int) -> None:
        lane.queue.ack(seq)
        lane.out -= 1
        lane.room.set()

    def _dead_kept(self, lanes: list[_Lane], dead: list[tuple[int, int]], kept: bool) -> None:
        """Their dead letters are committed: the records are done with, unless the lanes were
        closed meanwhile (then they are sent again when reopened)."""
        if lanes is not self.lanes or not self.sending or not kept:
            return  # not kept (logged): it stays in the buffer, sent again at the next open
        for i, seq in dead:
            self._ack(lanes[i], seq)


def notify(cb: OnResult, ok: bool) -> None:
    """Tell a caller its message's outcome (its exceptions are logged, never raised)."""
    try:
        cb(ok)
    except Exception:  # the caller's bug must not stop the worker
        log.exception("action result callback failed")
