"""Persistent sessions that survive a restart and kill -9 (config root ``durable_sessions``).

A session that outlives its connection (MQTT 5 Session Expiry > 0, MQTT 3.1.1 clean session
0) is kept in ``<data_dir>/sessions``: its subscriptions, its queued and unacknowledged QoS 1/2
messages, the QoS 2 packet ids awaiting PUBREL from its client and its pending will. Every
change is on disk before the packet that acknowledges it leaves (journal.py). At start the
sessions come back with their expiry counted from when their connection ended, across the
downtime; a client that reconnects with clean start 0 finds its session (session present 1)
and gets what it was owed, unacknowledged messages again with DUP. Clean sessions and QoS 0
messages are not written.

EMQX keeps such sessions in memory unless its (experimental) durable storage is on; emqpy
keeps them by default. ``durable_sessions.enable = false``, read at start, gives the
in-memory behaviour.
"""
from __future__ import annotations

import logging
import math
import time

from emqpy.feature import Feature

log = logging.getLogger("emqpy.durable")

FOLDER = "sessions"


def setup(broker) -> None:
    if not broker.config.durable_sessions.enable:
        return
    from emqpy.durable.journal import Journal
    from emqpy.durable.restore import open_journal

    journal: Journal = open_journal(broker, broker.data_dir / FOLDER)
    hooks = _Hooks(broker, journal)
    journal.hooks = hooks
    broker.durable = journal
    hooks.register()


async def teardown(broker) -> None:
    journal = broker.durable
    if journal is None:
        return
    journal.hooks.unregister()
    broker.durable = None
    await journal.close()


class _Hooks:
    """The session events that decide what is kept."""

    def __init__(self, broker, journal):
        self.broker = broker
        self.journal = journal
        self.points = (
            ("session.created", self.created), ("session.resumed", self.resumed),
            ("session.subscribed", self.changed), ("session.unsubscribed", self.changed),
            ("session.discarded", self.ended), ("session.terminated", self.ended),
            ("client.disconnected", self.disconnected))

    def register(self) -> None:
        for point, fn in self.points:
            self.broker.hooks.add(point, fn)

    def unregister(self) -> None:
        for point, fn in self.points:
            self.broker.hooks.remove(point, fn)

    def created(self, sess) -> None:
        if sess.expiry_interval:
            self.journal.track(sess)

    def resumed(self, sess) -> None:
        j = self.journal
        if sess.journal is j:
            j.will_at.pop(sess.clientid, None)  # (attach cancelled a pending will)
            j.gone_at.pop(sess.clientid, None)
            j.touch(sess)  # (expiry 0 now: dropped at the commit)
        elif sess.expiry_interval:
            j.track(sess)

    def changed(self, sess, _what) -> None:
        if sess.journal is self.journal:
            self.journal.touch(sess)

    def ended(self, sess, _reason=None) -> None:
        if sess.journal is self.journal:
            self.journal.forget(sess)

    def disconnected(self, ch, _reason) -> None:
        sess = ch.session
        j = self.journal
        if sess is None or sess.journal is not j or sess.channel is not None:
            return
        cid = sess.clientid
        j.gone_at[cid] = ch.disconnected_at or time.time()
        if sess.will_handle is not None:  # a will delay: kept, and its firing written down
            loop = self.broker.loop
            delay = max(0.0, sess.will_handle.when() - loop.time())
            sess.will_handle.cancel()
            sess.will_handle = loop.call_later(delay, will_due, self.broker, sess)
            j.will_at[cid] = time.time() + delay
        j.touch(sess)


def will_due(broker, sess) -> None:
    """A kept session's will delay ran out: publish it, and remember that it was."""
    broker._publish_will(sess)
    j = sess.journal
    if j is not None:
        j.will_at.pop(sess.clientid, None)
        j.touch(sess)


def expiry_left(expiry: float, gone_at: float, now: float) -> float | None:
    """Seconds a disconnected session has left (None: it never expires)."""
    if expiry == math.inf or expiry >= 0xFFFFFFFF:
        return None
    return expiry - (now - gone_at)


FEATURE = Feature("durable", setup=setup, teardown=teardown)
