"""The session journal: every change to a kept session, on disk before the packet that
acknowledges it goes out.

Sessions tell the journal what changes (Session.journal: queued, popped, sent, released,
acked; touch() for the rest, whose state is written whole at the commit). The changes of one
loop iteration are one record. The broker's flush is where they meet the output:

1. while the journal has unwritten changes or a commit is being synced (`holding`), each
   connection's output of the iteration is handed to `hold` instead of the socket
   (Output.flush);
2. after the flush, `commit` writes the record (one write(2)) and fdatasyncs it in a worker
   thread, the loop running on meanwhile (up to MAX_SYNCS commits in flight);
3. once it is on disk, the output held for it (and for the commits before it) is written
   (`write_held`), in order.

So a PUBACK, PUBREC, PUBREL, PUBCOMP or SUBACK never leaves before what it acknowledges is in
the data dir; output of iterations that changed nothing kept waits only while a commit is in
flight, to stay in order. Past `compact_bytes` the journal starts a new generation with a
snapshot of the kept sessions (records.py).
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path

from emqpy.broker.message import Message
from emqpy.durable import records

log = logging.getLogger("emqpy.durable")

COMPACT_BYTES = 64 << 20  # journal size that starts a new generation (at least)
# fdatasyncs in flight at once: a commit need not wait for the one before it to be on disk
# (whichever completes releases the output of every commit up to it)
MAX_SYNCS = 4
_SNAPSHOT_OPS = 2000  # operations per snapshot record


def message_fields(msg) -> tuple:
    """A message as plain data (expiry as a wall-clock deadline: it counts across a restart)."""
    exp = None if msg.expire_at is None else time.time() + (msg.expire_at - time.monotonic())
    payload = msg.payload
    if payload.__class__ is not bytes:
        payload = bytes(payload)
    return (msg.topic, payload, msg.qos, msg.retain, msg.props, msg.sender, msg.username,
            msg.peerhost, msg.timestamp, exp, msg.flags, msg._id)


def message_from(fields) -> Message:
    (topic, payload, qos, retain, props, sender, username, peerhost, ts, exp, flags,
     mid) = fields
    msg = Message(topic, payload, qos, retain, props, sender, username, peerhost, now=ts)
    msg.expire_at = None if exp is None else time.monotonic() + (exp - time.time())
    msg.flags = flags
    msg._id = mid
    return msg


def _group(group):
    return None if group is None else (group.name, group.filter)


class _Refs:
    """Message references of one record: a message delivered to several kept sessions in a row
    (a fan-out) is written once; one that comes back later in the record is written again."""
    __slots__ = ("ops", "last", "last_ref", "n")

    def __init__(self, ops: list):
        self.ops = ops
        self.last = None  # the message written last (kept alive while its ref is in use)
        self.last_ref = -1
        self.n = 0

    def ref(self, msg) -> int:
        if msg is self.last:
            return self.last_ref
        ref = self.n
        self.n = ref + 1
        self.last = msg
        self.last_ref = ref
        self.ops.append(("m", ref, message_fields(msg)))
        return ref


class Journal:
    def __init__(self, broker, folder: Path, gen: int):
        self.broker = broker
        self.folder = folder
        self.gen = gen
        self.min_compact_bytes = COMPACT_BYTES
        self.compact_bytes = COMPACT_BYTES  # the size that starts the next generation
        self.size = 0
        self._fd: int | None = None
        self.holding = False  # read by Output.flush and Broker.flush
        self._ops: list = []
        self._refs = _Refs(self._ops)
        self._touched: dict = {}  # clientid -> session whose small state is to be written
        self._group: list = []  # (channel, chunks) held for the next commit
        # the commits being synced, oldest first: [fdatasync future, its held output]
        self._syncs: deque = deque()
        self._holders: dict = {}  # channel -> its entries in _group and _syncs
        self._closed = False
        self.gone_at: dict[str, float] = {}  # clientid -> when its connection ended (wall)
        self.will_at: dict[str, float] = {}  # clientid -> when its pending will is due (wall)
        self._subs: dict[str, int] = {}  # clientid -> subscriptions, as last written
        self.subscription_count = 0  # of kept sessions (/stats durable_subscriptions.count)
        self.commits = self.syncs = 0
        self.hooks = None  # the session events it listens to (emqpy.durable._Hooks)

    # -- what sessions tell (the hot path: append and return) -------------------------------

    def _start(self) -> None:
        self.holding = True
        broker = self.broker
        if not broker.flush_scheduled:
            broker.schedule_flush()  # (its end commits)

    def queued(self, sess, msg, qos, retain, sub_ids, group, inserted_at: int) -> None:
        self._ops.append(("q", sess.clientid, self._refs.ref(msg), qos, retain, sub_ids,
                          None if group is None else _group(group), inserted_at))
        if not self.holding:
            self._start()

    def removed(self, sess, inserted_at: int) -> None:
        """The queued message inserted at `inserted_at` left the queue (a queue ordered by
        priority: not necessarily the oldest)."""
        self._ops.append(("d", sess.clientid, inserted_at))
        if not self.holding:
            self._start()

    def popped(self, sess) -> None:
        self._ops.append(("p", sess.clientid))
        if not self.holding:
            self._start()

    def sent(self, sess, pid, msg, qos, retain, sub_ids, group) -> None:
        self._ops.append(("i", sess.clientid, pid, self._refs.ref(msg), qos, retain, sub_ids,
                          None if group is None else _group(group)))
        if not self.holding:
            self._start()

    def released(self, sess, pid) -> None:
        self._ops.append(("c", sess.clientid, pid))
        if not self.holding:
            self._start()

    def acked(self, sess, pid) -> None:
        self._ops.append(("a", sess.clientid, pid))
        if not self.holding:
            self._start()

    def touch(self, sess) -> None:
        """Something else changed (subscriptions, awaiting PUBREL, expiry, will, connection):
        the session's small state is written at the commit."""
        self._touched[sess.clientid] = sess
        if not self.holding:
            self._start()

    # -- sessions coming and going ------------------------------------------------------------

    def track(self, sess) -> None:
        """Keep `sess` from now on: written whole (replacing any older one of that id)."""
        sess.journal = self
        self._ops.append(("x", sess.clientid))
        self._session_ops(sess, self._ops, self._refs)
        self._touched.pop(sess.clientid, None)
        if not self.holding:
            self._start()

    def forget(self, sess) -> None:
        """`sess` ended (or no longer outlives its connection): off the disk."""
        cid = sess.clientid
        sess.journal = None
        self._ops.append(("x", cid))
        self._touched.pop(cid, None)
        self.gone_at.pop(cid, None)
        self.will_at.pop(cid, None)
        self.subscription_count -= self._subs.pop(cid, 0)
        if not self.holding:
            self._start()

    def state(self, sess) -> tuple:
        cid = sess.clientid
        subs = [(s.topic_filter, s.real_filter, s.group, s.qos, s.no_local,
                 s.retain_as_published, s.retain_handling, s.sub_id, s.exclusive)
                for s in sess.subscriptions.values()]
        self.subscription_count += len(subs) - self._subs.get(cid, 0)
        self._subs[cid] = len(subs)
        will = sess.pending_will
        # (None: connected, or not yet attached; a restart counts from the crash then)
        gone = None if sess.channel is not None else self.gone_at.get(cid)
        # (plain numbers: the config's durations are float subclasses, which marshal refuses)
        expiry = sess.expiry_interval
        expiry = 0xFFFFFFFF if expiry >= 0xFFFFFFFF else float(expiry)
        return (expiry, sess.created_at, gone, subs, list(sess.awaiting_rel),
                None if will is None else message_fields(will),
                None if will is None else self.will_at.get(cid))

    def _session_ops(self, sess, ops: list, refs: _Refs) -> None:
        cid = sess.clientid
        ops.append(("s", cid, self.state(sess)))
        for msg, qos, retain, sub_ids, group, ts in sess.mqueue:
            if qos:
                ops.append(("q", cid, refs.ref(msg), qos, retain, sub_ids, _group(group), ts))
        for pid, (msg, qos, retain, sub_ids, group, _state, _ts) in sess.inflight.items():
            ops.append(("i", cid, pid, None if msg is None else refs.ref(msg), qos, retain,
                        sub_ids, _group(group)))

    # -- output held back -----------------------------------------------------------------------

    def hold(self, ch, chunks: list) -> None:
        """Output.flush while holding: written once the changes made so far are on disk."""
        self._group.append((ch, chunks))
        self._holders[ch] = self._holders.get(ch, 0) + 1

    def _release(self, group: list) -> None:
        holders = self._holders
        for ch, chunks in group:
            n = holders.pop(ch, 1) - 1
            if n > 0:
                holders[ch] = n
            try:
                ch.write_held(chunks)
            except Exception:  # (one connection's failure must not hold the others)
                log.exception("writing held output failed")

    def release_now(self, ch) -> None:
        """`ch` is about to close (Output.flush_final): if output of it is held, sync now, in
        the loop, and release everything held, so that what it was owed (and a DISCONNECT)
        goes out before the close."""
        if ch not in self._holders or self._closed:
            return
        try:
            ops = self._take_ops()
            if ops:
                self._write(ops)
            os.fdatasync(self._fd)  # (also covers a commit whose fsync is in flight)
        except Exception:
            log.exception("syncing the session journal failed")
        syncs, self._syncs = self._syncs, deque()
        for _fut, group in syncs:
            self._release(group)
        group, self._group = self._group, []
        self._release(group)
        self.holding = False

    # -- commits ----------------------------------------------------------------------------------

    def _take_ops(self) -> list:
        """The operations since the last commit, with the state of the touched sessions."""
        touched = self._touched
        if touched:
            self._touched = {}
            ops = self._ops
            for cid, sess in touched.items():
                if sess.journal is not self:
                    continue
                if not sess.expiry_interval:  # it ends with its connection now
                    self.forget(sess)
                else:
                    ops.append(("s", cid, self.state(sess)))
        ops = self._ops
        self._ops = []
        self._refs = _Refs(self._ops)
        return ops

    def _write(self, ops: list) -> None:
        data = records.encode(ops)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        self.size += len(data)

    def commit(self) -> None:
        """Write what changed since the last commit and fdatasync it in a worker thread; the
        output held meanwhile goes out when that is done. Runs at the end of Broker.flush."""
        if self._closed or self._syncs and (len(self._syncs) >= MAX_SYNCS or
                                            self.size > self.compact_bytes):
            return  # (_synced commits the rest; a new generation once none is in flight)
        ops = self._take_ops()
        group, self._group = self._group, []
        if not ops:
            if self._syncs:  # (after the output of the commits in flight)
                self._syncs[-1][1].extend(group)
            else:
                self.holding = False
                self._release(group)
            return
        self.commits += 1
        try:
            if self.size > self.compact_bytes:
                self.compact()  # (a snapshot of the sessions as they are, ops included)
                self.holding = False
                self._release(group)
                return
            self._write(ops)
        except Exception:
            log.exception("writing the session journal failed")
            self.holding = bool(self._syncs)
            self._release(group)
            return
        fut = self.broker.loop.run_in_executor(None, os.fdatasync, self._fd)
        self._syncs.append((fut, group))
        fut.add_done_callback(self._synced)

    def _synced(self, fut) -> None:
        self.syncs += 1
        if not fut.cancelled() and fut.exception() is not None:
            log.error("fdatasync of the session journal failed: %s", fut.exception())
        syncs = self._syncs
        if not any(f is fut for f, _g in syncs):
            return  # (released already: release_now, close)
        while syncs:  # what was written before this sync began is on disk too
            f, group = syncs.popleft()
            self._release(group)
            if f is fut:
                break
        if self._closed:
            return
        if self._ops or self._touched or self._group:
            self.commit()
        elif not syncs:
            self.holding = False

    # -- generations --------------------------------------------------------------------------------

    def snapshot(self) -> list[bytes]:
        """The records that recreate every kept session as it is now."""
        out = []
        ops: list = []
        refs = _Refs(ops)
        for sess in list(self.broker.sessions.values()):
            if sess.journal is not self:
                continue
            self._session_ops(sess, ops, refs)
            if len(ops) >= _SNAPSHOT_OPS:
                out.append(records.encode(ops))
                ops = []
                refs = _Refs(ops)
        if ops:
            out.append(records.encode(ops))
        return out

    def compact(self) -> None:
        """Start the next generation with a snapshot; the older one is deleted."""
        snap = self.snapshot()
        new = records.path_of(self.folder, self.gen + 1)
        records.write_file(new, snap)
        old = records.path_of(self.folder, self.gen)
        if self._fd is not None:
            os.close(self._fd)
        self.gen += 1
        self._fd = os.open(new, os.O_WRONLY | os.O_APPEND)
        self.size = sum(len(r) for r in snap)
        # a big state is not rewritten over and over: the next generation waits for as much
        self.compact_bytes = max(self.min_compact_bytes, 2 * self.size)
        old.unlink(missing_ok=True)

    async def close(self) -> None:
        """Let the commit in flight finish, write the final state as a new generation."""
        self._closed = True  # (no further commits: the final snapshot holds every change)
        log.info("session journal: %d commits, %d fdatasyncs", self.commits, self.syncs)
        for fut, _group in list(self._syncs):
            try:
                await fut
            except OSError:
                pass
        self._ops = []
        self._refs = _Refs(self._ops)
        self._touched = {}
        try:
            self.compact()
        finally:
            self.holding = False
            group, self._group = self._group, []
            self._release(group)
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def open_file(self) -> None:
        path = records.path_of(self.folder, self.gen)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.size = path.stat().st_size
