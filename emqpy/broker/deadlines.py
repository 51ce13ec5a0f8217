"""Handshake and keep-alive deadlines for every connection, on one event-loop timer.

A TimerHandle per connection costs about 600 bytes and a microsecond or two to create under
uvloop, and neither deadline needs better than one-second resolution. A channel is filed under
the first whole second (of loop.time()) at or after its deadline; when that second has come the
wheel calls `channel.on_deadline(second)`. A channel that moves or drops its deadline takes
itself out of the old second's bucket (`discard`), so nothing holds on to closed connections.
"""
from __future__ import annotations

import logging
import math

log = logging.getLogger("emqpy.deadlines")


class DeadlineWheel:
    __slots__ = ("loop", "_buckets", "_cursor", "_handle")

    def __init__(self, loop):
        self.loop = loop
        self._buckets: dict[int, dict] = {}  # second -> {obj: None}, in filing order
        self._cursor = int(loop.time())  # the earliest second that may still hold a bucket
        self._handle = None

    def add(self, obj, delay: float) -> int:
        """File `obj` for `delay` seconds from now (never earlier); returns its second."""
        now = self.loop.time()
        due = math.ceil(now + delay)
        if due < self._cursor:  # (only while a tick is running, for delay 0)
            due = self._cursor
        bucket = self._buckets.get(due)
        if bucket is None:
            self._buckets[due] = {obj: None}
        else:
            bucket[obj] = None
        if self._handle is None:  # idle until now: nothing is filed before this second
            self._cursor = max(self._cursor, int(now))
            self._handle = self.loop.call_at(self._cursor + 1, self._tick)
        return due

    def discard(self, obj, second: int) -> None:
        """Take `obj` out of the bucket of `second` (what `add` returned), if still there."""
        bucket = self._buckets.get(second)
        if bucket is not None:
            bucket.pop(obj, None)
            if not bucket:
                del self._buckets[second]

    def _tick(self) -> None:
        now = self.loop.time()
        buckets = self._buckets
        while self._cursor <= now:
            second = self._cursor
            self._cursor += 1
            for obj in buckets.pop(second, ()):
                try:
                    obj.on_deadline(second)
                except Exception:
                    log.exception("deadline handler failed")
        self._handle = self.loop.call_at(self._cursor, self._tick) if buckets else None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._buckets.clear()

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())
