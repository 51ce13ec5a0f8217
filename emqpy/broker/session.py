"""An MQTT session: subscriptions, the inflight window, the message queue and QoS 2 state.

A session outlives its connection when its expiry interval is non-zero. Delivery goes straight to
the connection's output when the window has room, and to the bounded message queue otherwise
(or when offline); the queue drains as acknowledgements free the window.
"""
from __future__ import annotations

import time
from bisect import bisect_right
from collections import deque
from itertools import islice
from time import time_ns

from emqpy.broker.mqueue import PriorityMqueue
from emqpy.mqtt import reason_codes as rc

# inflight entry fields (a list, mutated in place); a queue entry is a tuple of the first five
# and the insertion time. Insertion times (wall clock, ns, as EMQX's inserted_at) are strictly
# increasing within a session, so the API can page both collections by them.
_MSG, _QOS, _RETAIN, _SUBIDS, _GROUP, _STATE, _INFLIGHT_TS = range(7)
_QUEUED_TS = 5
WAIT_ACK, WAIT_COMP = 0, 1


class Session:
    __slots__ = ("broker", "clientid", "channel", "subscriptions", "inflight", "_mq",
                 "awaiting_rel", "next_pid", "window", "expiry_interval", "created_at",
                 "expiry_handle", "will_handle", "pending_will", "max_mqueue_len", "store_qos0", "upgrade_qos",
                 "ignore_loop", "drops", "max_inflight", "_last_ts", "journal")

    def __init__(self, broker, clientid: str, expiry_interval: float):
        self.broker = broker
        self.clientid = clientid
        self.channel = None
        self.subscriptions: dict = {}  # topic filter as subscribed -> Subscription
        self.inflight: dict[int, list] = {}
        # created on first use (an empty deque costs 760 bytes): a deque, or a PriorityMqueue
        # when mqtt.mqueue_priorities is set
        self._mq: deque | PriorityMqueue | None = None
        self.awaiting_rel: dict[int, float] = {}  # incoming QoS 2 packet id -> monotonic time
        self.next_pid = 1
        (self.max_inflight, self.max_mqueue_len, self.store_qos0, self.upgrade_qos,
         self.ignore_loop) = broker.session_defaults
        self.window = self.max_inflight
        self.expiry_interval = expiry_interval
        self.created_at = time.time()
        self.expiry_handle = None
        self.will_handle = None
        self.pending_will = None  # a will message waiting for its delay
        self.drops: dict[str, int] | None = None  # reason -> messages dropped (see count_drop)
        self._last_ts = 0  # the latest insertion time handed out (see _stamp)
        # emqpy.durable's journal while this session is kept in the data dir (None: memory
        # only): told of every change to the QoS 1/2 queue and window (queued, popped, sent,
        # released, acked) and of other changes through touch()
        self.journal = None

    @property
    def mqueue(self):
        """The queued messages, (msg, qos, retain, sub_ids, group, inserted_at) each, oldest
        first (with priorities: in insertion order too, not in delivery order)."""
        return self._mq if self._mq is not None else ()

    def _stamp(self) -> int:
        """An insertion time: time.time_ns(), but always above the previous one."""
        t = time_ns()
        if t <= self._last_ts:
            t = self._last_ts + 1
        self._last_ts = t
        return t

    def queued_after(self, after: int | None):
        """(msg, qos, inserted_at) of the queued messages inserted after `after` (ns; None: all),
        oldest first. Finding the start is a bisection: insertion times increase along the
        queue."""
        q = self._mq
        if not q:
            return iter(())
        if q.__class__ is not deque:  # (PriorityMqueue: not indexable, iterated by time)
            return ((e[_MSG], e[_QOS], e[_QUEUED_TS]) for e in q
                    if after is None or e[_QUEUED_TS] > after)
        start = 0 if after is None else bisect_right(q, after, key=_queued_ts)
        return ((e[_MSG], e[_QOS], e[_QUEUED_TS]) for e in islice(q, start, None))

    def inflight_after(self, after: int | None):
        """(msg, qos, inserted_at) of the unacknowledged messages inserted in the window after
        `after` (ns; None: all), oldest first; QoS 2 messages whose PUBREC came back no longer
        hold the message and are left out."""
        entries = list(self.inflight.values())  # in insertion order, so by insertion time
        start = 0 if after is None else bisect_right(entries, after, key=_inflight_ts)
        return ((e[_MSG], e[_QOS], e[_INFLIGHT_TS]) for e in islice(entries, start, None)
                if e[_MSG] is not None)

    def queued_listing(self, after: tuple | None):
        """(msg, qos, inserted_at, priority) of the queued messages in the order EMQX lists
        them (with priorities: the highest first, each oldest first; EMQX's infinity is
        float("inf")), from past the position `after`, (inserted_at, priority) or None."""
        q = self._mq
        if q is not None and q.__class__ is not deque:
            return ((e[_MSG], e[_QOS], e[_QUEUED_TS], p) for e, p in q.listed(after))
        if after is not None and after[1] < 0:  # (one queue, of priority 0: done)
            return iter(())
        return ((m, qos, ts, 0) for m, qos, ts in
                self.queued_after(None if after is None else after[0]))

    def clear_queue(self) -> None:
        self._mq = None

    @property
    def dropped(self) -> int:
        """Messages the full queue dropped (EMQX's mqueue_dropped)."""
        return self.drops.get("queue_full", 0) if self.drops else 0

    def count_drop(self, reason: str, n: int = 1, msg=None) -> None:
        """Count `n` messages dropped for this client: a delivery dropped (EMQX's reasons
        queue_full, expired, too_large, qos0_msg), or incoming QoS 2 flows forgotten after
        await_rel_timeout ("await_pubrel_timeout"). Node metrics and the session's own tally
        (its clients' send_msg.dropped.* / recv_msg.dropped.* counters). With the dropped
        delivery's `msg`, `delivery.dropped` runs."""
        broker = self.broker
        if msg is not None and "delivery.dropped" in broker.hooks._points:
            broker.hooks.run("delivery.dropped", self, msg, reason)
        c = broker.metrics.c
        if reason == "await_pubrel_timeout":
            c["messages.dropped.await_pubrel_timeout"] += n
        else:
            c["delivery.dropped." + reason] += n
            c["delivery.dropped"] += n
        drops = self.drops
        if drops is None:
            drops = self.drops = {}  # (created on first use: most sessions never drop)
        drops[reason] = drops.get(reason, 0) + n

    def drop_no_local(self, msg) -> None:
        """A message not delivered back to its publisher (No Local): counted in the node's
        metrics and reported to `delivery.dropped`, as EMQX does (not in the client's own
        drop counters)."""
        broker = self.broker
        c = broker.metrics.c
        c["delivery.dropped"] += 1
        c["delivery.dropped.no_local"] += 1
        if "delivery.dropped" in broker.hooks._points:
            broker.hooks.run("delivery.dropped", self, msg, "no_local")

    # -- delivery -------------------------------------------------------------------------

    def deliver(self, msg, sub, group=None, retained: bool = False, publisher=None) -> int:
        """Deliver `msg` through subscription `sub`; returns 1 if delivered or queued.
        `publisher`: the Channel it came from, if any (held back while ours is congested)."""
        if (sub.no_local or self.ignore_loop) and msg.sender == self.clientid and not retained:
            if sub.no_local:
                self.drop_no_local(msg)
            return 0
        mq = msg.qos
        sq = sub.qos
        qos = (mq if mq > sq else sq) if self.upgrade_qos else (mq if mq < sq else sq)
        retain = retained or (msg.retain and sub.retain_as_published)
        ch = self.channel
        if qos == 0:
            if ch is not None:
                return ch.send_publish(msg, 0, retain, sub.sub_ids, 0, False, publisher)
            if self.store_qos0:
                self._enqueue(msg, 0, retain, sub.sub_ids, group)
                return 1
            self.count_drop("qos0_msg", msg=msg)
            return 0
        if ch is not None and len(self.inflight) < self.window and not self._mq:
            self._send_new(ch, msg, qos, retain, sub.sub_ids, group, publisher)
        else:
            self._enqueue(msg, qos, retain, sub.sub_ids, group)
        return 1

    def _enqueue(self, msg, qos, retain, sub_ids, group, ts: int = 0) -> None:
        q = self._mq
        if q is None:
            prio = self.broker.mqueue_priorities
            q = self._mq = deque() if prio is None else PriorityMqueue(
                prio, self.broker.mqueue_default_highest, self.max_mqueue_len)
        ts = ts or self._stamp()
        if q.__class__ is not deque:
            old = q.push((msg, qos, retain, sub_ids, group, ts), msg.topic)
            if old is not None:
                if old[_QOS] and self.journal is not None:
                    self.journal.removed(self, old[_QUEUED_TS])
                self.count_drop("queue_full", msg=old[_MSG])
        else:
            if self.max_mqueue_len and len(q) >= self.max_mqueue_len:
                old = q.popleft()
                if old[_QOS] and self.journal is not None:
                    self.journal.popped(self)
                self.count_drop("queue_full", msg=old[_MSG])
            q.append((msg, qos, retain, sub_ids, group, ts))
        if qos and self.journal is not None:
            self.journal.queued(self, msg, qos, retain, sub_ids, group, ts)

    def _send_new(self, ch, msg, qos, retain, sub_ids, group, publisher=None) -> None:
        # (every QoS 1/2 delivery passes here: packet id allocation and _stamp are inlined)
        if self.broker.delivered_hooked:  # (may hand this client a changed copy)
            msg = self.broker.hooks.fold("message.delivered", msg, ch) or msg
        pid = self.next_pid
        inflight = self.inflight
        while pid in inflight:
            pid = pid + 1 if pid < 65535 else 1
        self.next_pid = pid + 1 if pid < 65535 else 1
        t = time_ns()
        if t <= self._last_ts:
            t = self._last_ts + 1
        self._last_ts = t
        inflight[pid] = [msg, qos, retain, sub_ids, group, WAIT_ACK, t]
        if not ch.send_publish(msg, qos, retain, sub_ids, pid, False, publisher):
            del inflight[pid]  # too large for the client: dropped and counted by the channel
        elif self.journal is not None:
            self.journal.sent(self, pid, msg, qos, retain, sub_ids, group)

    def drain(self) -> None:
        """Move queued messages into the window while there is room."""
        ch = self.channel
        q = self._mq
        if ch is None or not q:
            return
        now = time.monotonic()
        inflight = self.inflight
        while q and len(inflight) < self.window:
            msg, qos, retain, sub_ids, group, ts = q.popleft()
            if qos and self.journal is not None:
                if q.__class__ is deque:
                    self.journal.popped(self)
                else:  # (not necessarily the oldest)
                    self.journal.removed(self, ts)
            if msg.expire_at is not None and now >= msg.expire_at:
                self.count_drop("expired", msg=msg)
                continue
            if qos == 0:
                ch.send_publish(msg, 0, retain, sub_ids, 0)
            else:
                self._send_new(ch, msg, qos, retain, sub_ids, group)
            if self.channel is None:
                return

    # -- acknowledgements from the client --------------------------------------------------

    def on_puback(self, pid: int) -> bool:
        entry = self.inflight.get(pid)
        if entry is None or entry[_QOS] != 1:
            return False
        del self.inflight[pid]
        if self.journal is not None:
            self.journal.acked(self, pid)
        broker = self.broker
        broker.metrics.c["messages.acked"] += 1
        if broker.acked_hooked:
            broker.hooks.run("message.acked", entry[_MSG], self.channel)
        if self._mq:
            self.drain()
        return True

    def on_pubrec(self, pid: int, reason: int) -> int:
        """Returns the reason code for our PUBREL (0, or 0x92 when the id is unknown)."""
        entry = self.inflight.get(pid)
        if entry is None or entry[_QOS] != 2:
            return rc.PACKET_IDENTIFIER_NOT_FOUND
        if reason >= 0x80:  # the receiver refused the message: the flow ends here
            del self.inflight[pid]
            if self.journal is not None:
                self.journal.acked(self, pid)
            if self._mq:
                self.drain()
            return -1
        entry[_STATE] = WAIT_COMP
        if self.journal is not None:  # (on disk before our PUBREL ends the receiver's part)
            self.journal.released(self, pid)
        if self.broker.acked_hooked:  # (as EMQX: a QoS 2 message is acked by PUBREC)
            self.broker.hooks.run("message.acked", entry[_MSG], self.channel)
        entry[_MSG] = None  # the payload is no longer needed
        return 0

    def on_pubcomp(self, pid: int) -> bool:
        entry = self.inflight.get(pid)
        if entry is None or entry[_STATE] != WAIT_COMP:
            return False
        del self.inflight[pid]
        if self.journal is not None:
            self.journal.acked(self, pid)
        self.broker.metrics.c["messages.acked"] += 1
        if self._mq:
            self.drain()
        return True

    # -- connection lifecycle --------------------------------------------------------------

    def attach(self, channel, receive_maximum: int) -> None:
        self.channel = channel
        self.window = min(self.max_inflight, receive_maximum)
        # ignore_loop_deliver is for MQTT 3 clients; MQTT 5 clients choose with No Local.
        self.ignore_loop = self.broker.session_defaults[4] and channel.version != 5
        if self.expiry_handle is not None:
            self.expiry_handle.cancel()
            self.expiry_handle = None
        if self.will_handle is not None:  # reconnected within the will delay: no will
            self.will_handle.cancel()
            self.will_handle = None
            self.pending_will = None

    def redeliver(self) -> None:
        """Resend unacknowledged messages (DUP set) and PUBRELs, then drain the queue."""
        ch = self.channel
        now = time.monotonic()
        for pid, entry in list(self.inflight.items()):
            if entry[_STATE] == WAIT_COMP:
                ch.send_pubrel(pid)
                continue
            msg = entry[_MSG]
            if msg.expire_at is not None and now >= msg.expire_at:
                del self.inflight[pid]
                if self.journal is not None:
                    self.journal.acked(self, pid)
                self.count_drop("expired", msg=msg)
                continue
            ch.send_publish(msg, entry[_QOS], entry[_RETAIN], entry[_SUBIDS], pid, dup=True)
        self.drain()

    def detach(self) -> None:
        self.channel = None

    # -- put back what a feature kept (emqpy.durable, at start) ----------------------------

    def restore_queued(self, msg, qos: int, retain: bool, sub_ids, group,
                       inserted_at: int | None = None) -> None:
        """A queued message, oldest first; `inserted_at` as the journal recorded it (kept, so
        that later journal records can name the entry)."""
        if inserted_at and inserted_at > self._last_ts:
            self._last_ts = inserted_at
        self._enqueue(msg, qos, retain, sub_ids, group, inserted_at or 0)

    def restore_inflight(self, pid: int, msg, qos: int, retain: bool, sub_ids, group) -> None:
        """An unacknowledged message (redelivered with DUP on reconnect); `msg` None: a QoS 2
        flow awaiting PUBCOMP (PUBREL is sent again)."""
        self.inflight[pid] = [msg, qos, retain, sub_ids, group,
                              WAIT_ACK if msg is not None else WAIT_COMP, self._stamp()]
        self.next_pid = pid + 1 if pid < 65535 else 1

    def pending_shared(self):
        """Messages received through shared subscriptions and not yet acknowledged."""
        for entry in self.inflight.values():
            if entry[_GROUP] is not None and entry[_MSG] is not None:
                yield entry[_MSG], entry[_GROUP]
        for msg, _qos, _r, _s, group, _ts in self.mqueue:
            if group is not None and msg.qos:
                yield msg, group


def _queued_ts(entry) -> int:
    return entry[_QUEUED_TS]


def _inflight_ts(entry) -> int:
    return entry[_INFLIGHT_TS]
