"""A session's message queue ordered by topic priority (`mqtt.mqueue_priorities`), as EMQX's
emqx_mqueue + emqx_pqueue order it.

Only used when priorities are configured: otherwise the session keeps a plain deque (FIFO).
Each priority has its own FIFO queue, limited to `max_len` entries on its own (when one is full
its oldest entry is dropped for the new one). Queues take turns: the queue at the head of the
rotation sends (priority + 1) x 10 messages, then moves to the end; a priority that appears
puts the rotation back in priority order (the highest first), as EMQX's sorted insert does.
Entries are the session's queue tuples, whose last field is the insertion time.
"""
from __future__ import annotations

from collections import deque
from heapq import merge

HIGHEST = float("inf")  # `mqueue_default_priority = highest` (EMQX's infinity)
_INFINITE_CREDITS = 1_000_000  # what EMQX counts the highest priority's turn as
_TS = 5  # an entry's insertion time (Session's queue entry layout)


def _entry_ts(entry) -> int:
    return entry[_TS]


class PriorityMqueue:
    """deque's interface as Session uses it (len, iteration, popleft) plus `push`."""
    __slots__ = ("table", "default", "max_len", "multiplier", "_queues", "_len", "_credit")

    def __init__(self, table: dict[str, int], default_highest: bool, max_len: int,
                 multiplier: int = 10):
        self.table = table  # topic -> priority (exact topic names, as EMQX)
        self.default = HIGHEST if default_highest else 0
        self.max_len = max_len  # per priority; 0: no limit
        self.multiplier = multiplier
        self._queues: list[list] = []  # [priority, deque] in turn order, none empty
        self._len = 0
        self._credit: int | None = None  # messages the head may still send; None: new turn

    def __len__(self) -> int:
        return self._len

    def __iter__(self):
        """Entries oldest first (insertion order: what the session journal replays)."""
        return merge(*(q for _p, q in self._queues), key=_entry_ts)

    def listed(self, after: tuple | None = None):
        """(entry, priority) as EMQX's emqx_mqueue:query lists them: the highest priority
        first, each oldest first. `after`: the position (inserted_at, priority) of the last
        one listed before: priorities above it are done, and the first priority left is taken
        from past that insertion time."""
        levels = sorted(self._queues, key=_listing)
        skip_ts = None
        if after is not None:
            ts, prio = after
            levels = [slot for slot in levels if not slot[0] > prio]
            skip_ts = ts
        for prio, q in levels:
            for entry in q:
                if skip_ts is not None and entry[_TS] <= skip_ts:
                    continue
                skip_ts = None
                yield entry, prio
            skip_ts = None

    def priority_of(self, topic: str):
        return self.table.get(topic, self.default)

    def push(self, entry, topic: str):
        """Queue `entry` of a message on `topic`; returns the entry dropped to make room (the
        oldest of the same priority) or None."""
        prio = self.table.get(topic, self.default)
        for slot in self._queues:
            if slot[0] == prio:
                q = slot[1]
                break
        else:
            self._add_queue(prio, deque((entry,)))
            self._len += 1
            return None
        if self.max_len and len(q) >= self.max_len:
            old = q.popleft()
            if not q:  # (a queue of one: EMQX removes it, and re-adding sorts the turn order)
                self._queues.remove(slot)
                self._add_queue(prio, deque((entry,)))
            else:
                q.append(entry)
            return old
        q.append(entry)
        self._len += 1
        return None

    def _add_queue(self, prio, q: deque) -> None:
        queues = self._queues
        if prio == HIGHEST:
            queues.insert(0, [prio, q])
        elif queues and queues[0][0] == HIGHEST:  # the highest keeps the head, the rest sort
            rest = sorted(queues[1:] + [[prio, q]], key=_descending)
            queues[1:] = rest
        else:  # (an infinite priority rotated away from the head sorts last, as in Erlang)
            queues.append([prio, q])
            queues.sort(key=_descending)

    def popleft(self):
        """The next entry to deliver (IndexError when empty)."""
        if not self._len:
            raise IndexError("pop from an empty queue")
        queues = self._queues
        credit = self._credit
        if credit == 0:  # the head's turn is over: it goes to the end
            queues.append(queues.pop(0))
            credit = None
        prio, q = queues[0]
        if credit is None:
            p = _INFINITE_CREDITS if prio == HIGHEST else prio
            credit = (p + 1) * self.multiplier - 1
        else:
            credit -= 1
        self._credit = credit
        entry = q.popleft()
        if not q:  # (the turn's credit is kept: the next queue spends what is left)
            del queues[0]
        self._len -= 1
        return entry


def _listing(slot) -> tuple:
    return (slot[0] != HIGHEST, -slot[0])


def _descending(slot) -> tuple:
    prio = slot[0]
    return (prio == HIGHEST, -prio)
