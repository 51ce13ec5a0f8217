"""The resource worker: what carries an action's messages from the rule to the target
(EMQX's emqx_resource_buffer_worker), with the buffer on disk.

An action has `worker_pool_size` lanes; a message goes to the lane its publisher's client id
hashes to (EMQX picks the buffer worker by the calling process), so one client's messages keep
their order. Each lane is a `DiskQueue` in ``<data_dir>/buffers/<type>:<name>/<lane>`` (together
bounded by `max_buffer_bytes`: the oldest queued messages are dropped first and counted as
`dropped.queue_full`) and sends up to `inflight_window` messages at once (1 in `sync` query
mode, and 1 means strict order). A message is acknowledged in its queue once its outcome is
final, so what was queued before a crash or kill -9 is sent after the restart (at least once).

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
import time
import zlib
from pathlib import Path
from typing import Awaitable, Callable

from emqpy.store.diskqueue import DiskQueue

log = logging.getLogger("emqpy.bridge")

OK, RETRY, FAIL = 0, 1, 2  # a delivery's outcome: success, recoverable, final failure
_HEAD = struct.Struct("<d")  # a record: expiry (epoch seconds, 0 = never), then JSON
# send(selected, envelope, timeout) -> (OK | RETRY | FAIL, reason)
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
    __slots__ = ("queue", "window", "inflight", "callbacks", "prober", "unblocked", "task")

    def __init__(self, queue: DiskQueue, window: int):
        self.queue = queue
        self.window = window
        self.inflight: dict[int, asyncio.Task] = {}  # seq -> its delivery
        self.callbacks: dict[int, OnResult] = {}  # seq -> on_result, in seq order
        # the message whose recoverable failure blocks the lane (None: not blocked): it alone
        # is retried until its outcome is final; the others wait
        self.prober: int | None = None
        self.unblocked = asyncio.Event()
        self.unblocked.set()
        self.task: asyncio.Task | None = None


class Worker:
    """One action's lanes. `open` recovers the buffer, `start` sends, `close` stops sending
    (what is left stays on disk), `destroy` also removes the buffer."""

    def __init__(self, folder: Path, opts, metrics, send: Send, send_timeout: float,
                 envelope_keys: frozenset = frozenset()):
        self.folder = folder
        # what is kept of a message's envelope: the columns the action's templates read and
        # the rule's output does not have (the rest would only make the buffer bigger)
        self.envelope_keys = envelope_keys
        self.send_timeout = send_timeout  # a request's own limit (within request_ttl)
        self.opts = opts
        self.metrics = metrics
        self.send = send
        self.ttl = opts.request_ttl if opts.request_ttl != math.inf else 0.0
        self.resume_interval = max(0.001, min(opts.health_check_interval,
                                              self.ttl / 3 if self.ttl else math.inf))
        self.pool = opts.worker_pool_size
        self.lanes: list[_Lane] = []
        self.sending = False

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Open the lanes' queues (call in the event loop); lanes left by a bigger pool are
        opened too, so what they hold is still sent."""
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = [int(p.name) for p in self.folder.iterdir() if p.name.isdigit()]
        n = max([self.pool, *(i + 1 for i in existing)])
        window = 1 if self.opts.query_mode == "sync" else self.opts.inflight_window
        per_lane = max(1, int(self.opts.max_buffer_bytes) // self.pool)
        self.lanes = [_Lane(DiskQueue.open(self.folder / str(i), max_bytes=per_lane), window)
                      for i in range(n)]

    def start(self) -> None:
        if self.sending:
            return
        self.sending = True
        for lane in self.lanes:
            lane.task = asyncio.get_running_loop().create_task(self._run(lane))

    async def stop(self) -> None:
        """Stop sending; messages in flight stay unacknowledged (sent again later)."""
        self.sending = False
        tasks = []
        for lane in self.lanes:
            if lane.task is not None:
                lane.task.cancel()
                tasks.append(lane.task)
                lane.task = None
            tasks.extend(lane.inflight.values())
            for t in lane.inflight.values():
                t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self.stop()
        for lane in self.lanes:
            for cb in lane.callbacks.values():
                _call(cb, False)
            lane.callbacks.clear()
            await lane.queue.close()

    async def destroy(self) -> None:
        await self.close()
        await asyncio.to_thread(shutil.rmtree, self.folder, True)

    # -- gauges ----------------------------------------------------------------------------

    @property
    def queuing(self) -> int:
        return sum(lane.queue.queued for lane in self.lanes)

    @property
    def inflight(self) -> int:
        return sum(len(lane.inflight) for lane in self.lanes)

    # -- producing -------------------------------------------------------------------------

    def submit(self, selected: dict, envelope: dict, on_result: OnResult | None) -> None:
        """Queue one message (the rule's output and its event columns); counted `matched`."""
        self.metrics.inc("matched")
        key = envelope.get("clientid") or selected.get("clientid") or ""
        lane = self.lanes[zlib.crc32(str(key).encode()) % self.pool]
        expire_at = time.time() + self.ttl if self.ttl else 0.0
        kept = {k: envelope[k] for k in self.envelope_keys
                if k in envelope and k not in selected}
        q = lane.queue
        dropped = q.dropped
        seq = q.append(encode(selected, kept, expire_at))
        if on_result is not None:
            lane.callbacks[seq] = on_result
        lost = q.dropped - dropped
        if lost:  # the queue was full: its oldest queued records went
            self.metrics.inc("dropped.queue_full", lost)
            for s in list(lane.callbacks)[:lost]:
                if s not in lane.inflight:
                    _call(lane.callbacks.pop(s), False)

    # -- sending ---------------------------------------------------------------------------

    async def _run(self, lane: _Lane) -> None:
        room = asyncio.Event()
        room.set()
        while True:
            await lane.unblocked.wait()
            free = lane.window - len(lane.inflight)
            if free <= 0:
                room.clear()
                await room.wait()
                continue
            for seq, data in await lane.queue.get(free):
                task = asyncio.get_running_loop().create_task(self._deliver(lane, seq, data))
                lane.inflight[seq] = task
                task.add_done_callback(lambda _t, s=seq: (lane.inflight.pop(s, None),
                                                          room.set()))

    async def _deliver(self, lane: _Lane, seq: int, data: bytes) -> None:
        m = self.metrics
        try:
            expire_at, selected, envelope = decode(data)
        except ValueError:  # cannot happen for records this code wrote; never block on one
            log.error("%s: undecodable buffer record dropped", self.folder.name)
            self._finish(lane, seq, False)
            m.inc("dropped.other")
            return
        retried = False
        while True:
            now = time.time()
            if expire_at and now >= expire_at:
                m.inc("dropped.expired")
                self._finish(lane, seq, False)
                if lane.prober == seq:
                    self._unblock(lane)
                return
            timeout = self._timeout(expire_at, now)
            outcome, reason = await self.send(selected, envelope, timeout)
            if outcome == OK:
                if expire_at and time.time() >= expire_at:
                    m.inc("late_reply")
                    self._finish(lane, seq, False)
                else:
                    m.inc("retried.success" if retried else "success")
                    self._finish(lane, seq, True)
                self._unblock(lane)
                return
            if outcome == FAIL:
                log.warning("%s: request failed: %s", self.folder.name, reason)
                m.inc("retried.failed" if retried else "failed")
                self._finish(lane, seq, False)
                self._unblock(lane)
                return
            # recoverable: block the lane; one message probes every resume_interval
            retried = True
            m.inc("retried")
            if lane.prober is None or lane.prober == seq:
                if lane.prober is None:
                    log.warning("%s: target unavailable (%s), retrying", self.folder.name,
                                reason)
                    lane.prober = seq
                    lane.unblocked.clear()
                await asyncio.sleep(self.resume_interval)
            else:
                wait = None if not expire_at else max(0.0, expire_at - time.time())
                try:
                    await asyncio.wait_for(lane.unblocked.wait(), wait)
                except asyncio.TimeoutError:
                    pass

    def _timeout(self, expire_at: float, now: float) -> float:
        return min(self.send_timeout, expire_at - now) if expire_at else self.send_timeout

    @staticmethod
    def _unblock(lane: _Lane) -> None:
        if lane.prober is not None:
            lane.prober = None
            lane.unblocked.set()

    def _finish(self, lane: _Lane, seq: int, ok: bool) -> None:
        lane.queue.ack(seq)
        cb = lane.callbacks.pop(seq, None)
        if cb is not None:
            _call(cb, ok)


def _call(cb: OnResult, ok: bool) -> None:
    try:
        cb(ok)
    except Exception:  # the caller's bug must not stop the worker
        log.exception("action result callback failed")
