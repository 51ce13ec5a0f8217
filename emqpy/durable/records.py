"""The session journal's file format, and what reading one back gives.

A journal is one file, ``<data_dir>/sessions/journal.<generation>``: a run of records
``[length u32][crc32 u32][marshal data]``, each the list of operations one commit wrote. A
torn or corrupt tail (a crash mid-write) ends the file: it is cut off at open. A new generation
starts with a snapshot (the operations that recreate every kept session) written to
``journal.<gen>.tmp``, fsynced and renamed; the older generation is deleted after that.

Operations (tuples; ``cid`` a client id, ``ref`` a message defined earlier in the same record):

    ("m", ref, fields)            a message (see message_fields)
    ("s", cid, state)             a session's small state (see Saved.state); creates it
    ("x", cid)                    the session ended
    ("q", cid, ref, qos, retain, sub_ids, group, inserted_at)  queued (QoS 1/2 only;
                                  inserted_at, ns, absent in journals of older versions)
    ("p", cid)                    the oldest queued message left the queue
    ("d", cid, inserted_at)       the queued message inserted then left the queue (queues
                                  ordered by priority, mqtt.mqueue_priorities)
    ("i", cid, pid, ref, qos, retain, sub_ids, group) sent, awaiting PUBACK/PUBREC;
                                  ref None: a QoS 2 message awaiting PUBCOMP
    ("c", cid, pid)               PUBREC came: awaiting PUBCOMP (the message is dropped)
    ("a", cid, pid)               the flow ended (PUBACK, PUBCOMP, refused, expired)

``group`` is (share name, filter) for a message from a shared subscription, else None.
marshal (not pickle): only plain data can come back out of a file.
"""
from __future__ import annotations

import marshal
import os
from collections import deque
from pathlib import Path

from emqpy.store.diskqueue import frame, records

FORMAT = 4  # marshal format version written
PREFIX = "journal."


def encode(ops: list) -> bytes:
    return frame(marshal.dumps(ops, FORMAT))


def decode_all(buf: bytes):
    """(ops, end offset) of each whole, intact record in ``buf``."""
    for data, stop in records(buf):
        try:
            ops = marshal.loads(data)
        except (ValueError, EOFError, TypeError):
            return
        yield ops, stop


def generations(folder: Path) -> list[tuple[int, Path]]:
    """The complete journal files in ``folder``, oldest first (``.tmp`` ones are not)."""
    out = []
    for f in folder.glob(PREFIX + "*"):
        tail = f.name[len(PREFIX):]
        if tail.isdigit():
            out.append((int(tail), f))
    return sorted(out)


def path_of(folder: Path, gen: int) -> Path:
    return folder / f"{PREFIX}{gen:08d}"


class Saved:
    """One session as the journal left it. ``state``: (expiry interval, created_at,
    disconnected_at (wall clock, None: it was connected), subscriptions, awaiting-PUBREL packet
    ids, pending will (message fields or None), will due (wall clock)); a subscription is
    (topic filter, real filter, share group, qos, no local, retain as published, retain
    handling, subscription id, exclusive). ``queue``: (fields, qos, retain, sub_ids, group,
    inserted_at or None), oldest first;
    ``inflight``: pid -> [fields or None, qos, retain, sub_ids, group]."""
    __slots__ = ("state", "queue", "inflight")

    def __init__(self, state):
        self.state = state
        self.queue: deque = deque()
        self.inflight: dict[int, list] = {}


def replay(path: Path) -> tuple[dict[str, Saved], int, bool]:
    """Read a journal: the sessions it holds, the length of its intact part, and whether a
    torn tail followed it."""
    buf = path.read_bytes()
    sessions: dict[str, Saved] = {}
    good = 0
    for ops, end in decode_all(buf):
        try:
            _apply(sessions, ops)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            break  # (intact but not ours to read: the journal ends before it)
        good = end
    return sessions, good, good < len(buf)


def _apply(sessions: dict[str, Saved], ops: list) -> None:
    msgs = {}
    for op in ops:
        kind = op[0]
        if kind == "m":
            msgs[op[1]] = op[2]
        elif kind == "s":
            s = sessions.get(op[1])
            if s is None:
                sessions[op[1]] = Saved(op[2])
            else:
                s.state = op[2]
        elif kind == "x":
            sessions.pop(op[1], None)
        else:
            s = sessions.get(op[1])
            if s is None:  # (cannot happen in a journal we wrote: skip rather than fail)
                continue
            if kind == "q":
                s.queue.append((msgs[op[2]], op[3], op[4], op[5], op[6],
                                op[7] if len(op) > 7 else None))
            elif kind == "p":
                if s.queue:
                    s.queue.popleft()
            elif kind == "d":
                _remove_queued(s.queue, op[2])
            elif kind == "i":
                ref = op[3]
                s.inflight[op[2]] = [None if ref is None else msgs[ref], op[4], op[5], op[6],
                                     op[7]]
            elif kind == "c":
                entry = s.inflight.get(op[2])
                if entry is not None:
                    entry[0] = None
            elif kind == "a":
                s.inflight.pop(op[2], None)


def _remove_queued(queue: deque, inserted_at: int) -> None:
    # (the oldest of its priority: usually near the front)
    for i, entry in enumerate(queue):
        if entry[5] == inserted_at:
            del queue[i]
            return


def write_file(path: Path, records: list[bytes]) -> None:
    """Write a new journal file whole and durably: tmp file, fsync, rename, fsync the
    folder."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for rec in records:
            view = memoryview(rec)
            while view:
                view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    sync_dir(path.parent)


def sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
