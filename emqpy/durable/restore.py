"""At start: read the newest journal, put its sessions back into the broker, and begin the
next generation with a snapshot of them (the old file, torn tail and all, is then deleted)."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from emqpy.broker.router import Subscription
from emqpy.broker.session import Session
from emqpy.durable import expiry_left, records, will_due
from emqpy.durable.journal import Journal, message_from

log = logging.getLogger("emqpy.durable")


def open_journal(broker, folder: Path) -> Journal:
    folder.mkdir(parents=True, exist_ok=True)
    for tmp in folder.glob(records.PREFIX + "*.tmp"):  # a snapshot a crash cut short
        tmp.unlink(missing_ok=True)
    gens = records.generations(folder)
    gen = gens[-1][0] if gens else 0
    journal = Journal(broker, folder, gen)
    if gens:
        path = gens[-1][1]
        saved, _good, torn = records.replay(path)
        if torn:
            log.warning("session journal %s ends in a torn record (a crash mid-write): "
                        "the intact part is used", path)
        # a session whose client was connected when the node went down: disconnected then,
        # which the last write to the journal tells best
        restore(broker, journal, saved, crashed_at=path.stat().st_mtime)
        log.info("restored %d persistent session(s) from %s", len(broker.sessions), folder)
    journal.compact()  # (writes generation gen + 1, deletes gen)
    for _gen, older in gens[:-1]:
        older.unlink(missing_ok=True)
    return journal


def restore(broker, journal: Journal, saved: dict, crashed_at: float) -> None:
    now = time.time()
    for cid, s in saved.items():
        try:
            _restore_one(broker, journal, cid, s, crashed_at, now)
        except Exception:  # (one unreadable session must not keep the node from starting)
            log.exception("persistent session %r could not be restored", cid)
            sess = broker.sessions.get(cid)
            if sess is not None:  # (unrouted again)
                broker.discard_session(sess, "terminated")


def _restore_one(broker, journal: Journal, cid: str, s, crashed_at: float, now: float) -> None:
    loop = broker.loop
    expiry, created, gone, subs, awaiting, will, will_at = s.state
    if gone is None:
        gone = crashed_at
    will_msg = None if will is None else message_from(will)
    left = expiry_left(expiry, gone, now)
    if left is not None and left <= 0:  # expired while the node was down
        if will_msg is not None:  # (a session's end sends a will still waiting)
            loop.call_soon(broker.publish, will_msg)
        return
    sess = Session(broker, cid, expiry)
    sess.created_at = created
    broker.sessions[cid] = sess
    for flt, real, group, qos, nl, rap, rh, sub_id, excl in subs:
        broker.restore_subscription(
            sess, Subscription(sess, flt, real, group, qos, nl, rap, rh, sub_id, excl))
    for fields, qos, retain, sub_ids, group, inserted_at in s.queue:
        sess.restore_queued(message_from(fields), qos, retain, sub_ids,
                            _shared_group(broker, group), inserted_at)
    for pid, (fields, qos, retain, sub_ids, group) in s.inflight.items():
        sess.restore_inflight(pid, None if fields is None else message_from(fields), qos,
                              retain, sub_ids, _shared_group(broker, group))
    mono = time.monotonic()
    sess.awaiting_rel = {pid: mono for pid in awaiting}
    journal.gone_at[cid] = gone
    if left is not None:
        sess.expiry_handle = loop.call_later(left, broker._expire_session, sess)
    if will_msg is not None:
        due = will_at if will_at is not None else now
        sess.pending_will = will_msg
        sess.will_handle = loop.call_later(max(0.0, due - now), will_due, broker, sess)
        journal.will_at[cid] = due
    sess.journal = journal


def _shared_group(broker, group):
    if group is None:
        return None
    name, flt = group
    route = broker.router.route_for(flt, create=False)
    return None if route is None else route.groups.get(name)
