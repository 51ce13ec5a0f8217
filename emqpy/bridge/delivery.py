"""The sending side of an action's worker: what runs where the connector's client lives (the
I/O loop thread, or the delivery process for HTTP actions, emqpy/bridge/process.py).

It gets each lane's records in batches (`deliver_batch`), makes one delivery per record and
reports every outcome through `report(lane, seq, counter, final, reason)`: `counter` is the
metric to count (or ""), `final` True/False once the record's outcome is final (success / given
up), None while it is being retried; `reason` says why a final failure failed. The retry rules are EMQX's (see emqpy/bridge/worker.py): a
recoverable failure blocks the lane, one message probes every `resume_interval` while the
others wait, a message older than `request_ttl` is dropped.
"""
from __future__ import annotations

import asyncio
import json
import logging
import pickle
import struct
import time
from typing import Awaitable, Callable

log = logging.getLogger("emqpy.bridge")

OK, RETRY, FAIL = 0, 1, 2  # a delivery's outcome: success, recoverable, final failure
_HEAD = struct.Struct("<d")  # a record: expiry (epoch seconds, 0 = never), then JSON
# send(selected, envelope, timeout) -> (OK | RETRY | FAIL, reason), run where the client lives
Send = Callable[[dict, dict, float], Awaitable[tuple[int, str]]]
Report = Callable[[int, int, str, "bool | None", str], None]

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
    orjson = None


def encode(selected: dict, envelope: dict, expire_at: float) -> bytes:
    """A buffer record: JSON (orjson) when it can be; a payload that is not UTF-8 (kept as
    surrogate escapes, which orjson refuses) is pickled: 2.5x cheaper than the standard
    library's JSON, which the broker's loop paid per message before."""
    body = None
    if orjson is not None:
        try:
            body = orjson.dumps([selected, envelope])
        except TypeError:
            pass
    if body is None:
        try:
            body = pickle.dumps((selected, envelope), protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError):  # not plain data
            body = json.dumps([selected, envelope], separators=(",", ":"),
                              default=str).encode()
    return _HEAD.pack(expire_at) + body


def decode(data: bytes) -> tuple[float, dict, dict]:
    (expire_at,) = _HEAD.unpack_from(data)
    body = data[_HEAD.size:]
    if body[:1] == b"\x80":  # a pickle (protocol 2+): only this module writes records
        selected, envelope = pickle.loads(body)
        return expire_at, selected, envelope
    if orjson is not None:
        try:
            selected, envelope = orjson.loads(body)
            return expire_at, selected, envelope
        except ValueError:  # json's escapes of surrogates, which orjson refuses
            pass
    selected, envelope = json.loads(body)
    return expire_at, selected, envelope


class _Lane:
    """A lane's sending state: the message whose recoverable failure blocks it (None: not
    blocked; it alone is retried until its outcome is final, the others wait)."""
    __slots__ = ("prober", "unblocked")

    def __init__(self):
        self.prober: int | None = None
        self.unblocked = asyncio.Event()
        self.unblocked.set()


class Delivery:
    """One action's deliveries, in the loop its connector's client runs in."""

    def __init__(self, name: str, send: Send, report: Report, *, lanes: int,
                 send_timeout: float, ttl: float, resume_interval: float, send_now=None):
        self.name = name  # the action's id, for the log
        self.send = send
        # send_now(selected, envelope, done) -> bool: the action's way to deliver without a
        # coroutine (emqpy/bridge/mqtt.py), False when it cannot at once; None: always `send`
        self.send_now = send_now
        self.report = report
        self.send_timeout = send_timeout  # a request's own limit (within request_ttl)
        self.ttl = ttl
        self.resume_interval = resume_interval
        self.lanes = [_Lane() for _ in range(lanes)]
        self._tasks: set[asyncio.Task] = set()

    def deliver_batch(self, i: int, batch: list) -> None:
        now = self.send_now is not None and self.lanes[i].prober is None
        for seq, data in batch:
            if not (now and self._now(i, seq, data)):
                self._start(i, seq, data)

    def _start(self, i: int, seq: int, data: bytes, first=None, decoded=None) -> None:
        task = asyncio.get_running_loop().create_task(
            self._deliver(i, seq, data, first, decoded))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _now(self, i: int, seq: int, data: bytes) -> bool:
        """Deliver with `send_now` (no task: a callback per message); False when the message
        needs the coroutine (expired, blocked lane, no room now). A recoverable failure goes
        on in the coroutine, which retries as EMQX does."""
        try:
            decoded = decode(data)
        except ValueError:
            return False
        expire_at, selected, envelope = decoded
        if expire_at and time.time() >= expire_at:
            self._start(i, seq, data, decoded=decoded)
            return True
        loop = asyncio.get_running_loop()
        timer = None

        def done(outcome: int, reason: str) -> None:
            nonlocal timer
            if timer is False:  # settled (timed out, then acknowledged)
                return
            if timer is not None:
                timer.cancel()
            timer = False
            if outcome == OK:
                if expire_at and time.time() >= expire_at:
                    self.report(i, seq, "late_reply", False, "")
                else:
                    self.report(i, seq, "success", True, "")
            elif outcome == FAIL:
                log.warning("%s: request failed: %s", self.name, reason)
                self.report(i, seq, "failed", False, reason)
            else:
                self._start(i, seq, data, (outcome, reason), decoded)

        try:
            taken = self.send_now(selected, envelope, done)
        except Exception:  # a bug in the connector: the coroutine logs it
            taken = False
        if not taken:  # the coroutine does it, without decoding the record again
            self._start(i, seq, data, decoded=decoded)
            return True
        if timer is None:  # waiting for an acknowledgement: bounded as `send` is
            limit = min(self.send_timeout, expire_at - time.time()) if expire_at else \
                self.send_timeout
            timer = loop.call_later(max(0.0, limit), done, RETRY, "timeout")
        return True

    async def cancel(self) -> None:
        """Stop every delivery under way (their records stay unacknowledged)."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver(self, i: int, seq: int, data: bytes, first=None, decoded=None) -> None:
        """Deliver one record; `first`: the outcome of an attempt already made (_now),
        `decoded`: the record already decoded."""
        lane = self.lanes[i]
        report = self.report
        try:
            expire_at, selected, envelope = decoded or decode(data)
        except ValueError:  # cannot happen for records this code wrote; never block on one
            log.error("%s: undecodable buffer record dropped", self.name)
            report(i, seq, "dropped.other", False, "undecodable record")
            return
        retried = False
        while True:
            if first is not None:
                (outcome, reason), first = first, None
            else:
                now = time.time()
                if expire_at and now >= expire_at:
                    if lane.prober == seq:
                        self._unblock(lane)
                    report(i, seq, "dropped.expired", False, "request_ttl expired")
                    return
                timeout = min(self.send_timeout, expire_at - now) if expire_at else \
                    self.send_timeout
                try:
                    outcome, reason = await self.send(selected, envelope, timeout)
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # a bug in the connector must not wedge the lane
                    log.exception("%s: sending failed", self.name)
                    outcome, reason = FAIL, str(e)
            if outcome == OK:
                self._unblock(lane)
                if expire_at and time.time() >= expire_at:
                    report(i, seq, "late_reply", False, "")
                else:
                    report(i, seq, "retried.success" if retried else "success", True, "")
                return
            if outcome == FAIL:
                log.warning("%s: request failed: %s", self.name, reason)
                self._unblock(lane)
                report(i, seq, "retried.failed" if retried else "failed", False, reason)
                return
            # recoverable: block the lane; one message probes every resume_interval
            retried = True
            report(i, seq, "retried", None, "")
            if lane.prober is None or lane.prober == seq:
                if lane.prober is None:
                    log.warning("%s: target unavailable (%s), retrying", self.name, reason)
                    lane.prober = seq
                    lane.unblocked.clear()
                await asyncio.sleep(self.resume_interval)
            else:
                wait = None if not expire_at else max(0.0, expire_at - time.time())
                try:
                    await asyncio.wait_for(lane.unblocked.wait(), wait)
                except asyncio.TimeoutError:
                    pass

    @staticmethod
    def _unblock(lane: _Lane) -> None:
        if lane.prober is not None:
            lane.prober = None
            lane.unblocked.set()
