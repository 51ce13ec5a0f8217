"""The retainer: stores the last retained message per topic and replays it to new subscribers.

In memory the messages live in a topic trie (`RetainedStore`); with a store attached
(`attach(store)` at broker start) every change is also written to SQLite by a writer thread and
the messages are loaded back at the next start, so they survive a restart or a crash.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time

from emqpy.config import parse_rate
from emqpy.retainer import persist
from emqpy.retainer.store import RetainedStore

log = logging.getLogger("emqpy.retainer")


class Retainer:
    def __init__(self, broker):
        self.broker = broker
        self.store = RetainedStore(on_expire=self._expired)
        self.writer: persist.Writer | None = None
        self._clear_handle = None
        self._hooked = False
        self._batch: dict = {}  # topic -> Message to store, or None to delete
        self._handoff_scheduled = False
        self._loop_thread = None
        self._rate = self._config_rate()  # messages per second; None: no limit
        self._tokens = float(self._rate or 0)
        self._tokens_at = time.monotonic()
        # fn(topic, msg or None) told of each retained message stored or deleted here by a
        # PUBLISH, the API or a backup's import (the cluster replicates them)
        self.on_change = None

    @property
    def config(self):
        return self.broker.config.retainer

    def __len__(self) -> int:
        return len(self.store)

    # -- lifecycle (see emqpy.retainer.setup/teardown) ----------------------------------------

    def attach(self, db) -> None:
        """Load the persisted messages from `db` (an emqpy.store.Store) and write through."""
        db.migrate("retainer")
        now_wall, now_mono = time.time(), time.monotonic()
        expired = []
        for r in persist.load_rows(db):
            if r["expire_at"] is not None and r["expire_at"] <= now_wall:
                expired.append(r["topic"])
                continue
            self.store.put(persist.from_row(r, now_wall, now_mono))
        self.writer = persist.Writer(db.path)
        if expired:
            self.writer.submit(dict.fromkeys(expired))
        if self.store:
            log.info("loaded %d retained message(s)", len(self.store))

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self.apply_config()

    async def stop(self) -> None:
        if self._clear_handle is not None:
            self._clear_handle.cancel()
            self._clear_handle = None
        if self._hooked:
            self.broker.hooks.remove("message.publish", self._publish_hook)
            self._hooked = False
        if self.writer is not None:
            self._handoff()
            writer, self.writer = self.writer, None
            await asyncio.get_running_loop().run_in_executor(None, writer.close)

    def apply_config(self) -> None:
        """(Re)arm what depends on the config: the purge timer, the clear-message hook."""
        cfg = self.config
        if self._clear_handle is not None:
            self._clear_handle.cancel()
            self._clear_handle = None
        if cfg.enable and cfg.msg_clear_interval and self.broker.loop is not None:
            self._clear_handle = self.broker.loop.call_later(cfg.msg_clear_interval,
                                                             self._clear_tick)
        self._rate = self._config_rate()
        if self._rate is not None:
            self._tokens = min(self._tokens, self._rate)
        want_hook = bool(cfg.enable and cfg.stop_publish_clear_msg)
        if want_hook and not self._hooked:
            self.broker.hooks.add("message.publish", self._publish_hook, priority=100)
            self._hooked = True
        elif not want_hook and self._hooked:
            self.broker.hooks.remove("message.publish", self._publish_hook)
            self._hooked = False

    def _config_rate(self) -> float | None:
        rate = parse_rate(self.config.delivery_rate)  # checked when the config was validated
        return None if rate is None else rate[0]

    def _clear_tick(self) -> None:
        self._clear_handle = None
        try:
            self.purge_expired()
        finally:
            self.apply_config()

    def sync(self, timeout: float | None = None) -> bool:
        """Wait until every change so far is committed (blocking; for tests and tools, from
        any thread)."""
        writer = self.writer
        if writer is None:
            return True
        loop = self.broker.loop
        if loop is not None and loop.is_running() and threading.get_ident() != self._loop_thread:
            async def handoff():
                self._handoff()
            asyncio.run_coroutine_threadsafe(handoff(), loop).result(timeout)
        else:
            self._handoff()
        return writer.sync(timeout)

    # -- write-through: the loop's batch, handed to the writer once per iteration ---------------

    def _persist(self, topic: str, msg) -> None:
        if self.writer is None:
            return
        self._batch[topic] = msg
        if not self._handoff_scheduled:
            self._handoff_scheduled = True
            self.broker.loop.call_soon(self._handoff)

    def _handoff(self) -> None:
        self._handoff_scheduled = False
        if self._batch and self.writer is not None:
            batch, self._batch = self._batch, {}
            self.writer.submit(batch)

    # -- the broker's calls ---------------------------------------------------------------------

    def _publish_hook(self, msg):
        # stop_publish_clear_msg: a retained PUBLISH with an empty payload only clears.
        if msg.retain and not msg.payload:
            self.on_publish(msg)
            return None
        return msg

    def on_publish(self, msg) -> None:
        """Called for each PUBLISH with the retain flag set."""
        cfg = self.config
        if not cfg.enable:
            return
        topic = msg.topic
        if not msg.payload:
            self.delete(topic)
            return
        if cfg.max_payload_size and len(msg.payload) > cfg.max_payload_size:
            log.error("retain_failed_for_payload_size_exceeded_limit: topic=%s payload_size=%d "
                      "limit=%d", topic, len(msg.payload), cfg.max_payload_size)
            return
        limit = cfg.backend.max_retained_messages
        if limit and len(self.store) >= limit and self.store.get(topic) is None:
            log.warning("retained_message_dropped: the table is full (%d); topic=%s",
                        limit, topic)
            return
        if cfg.msg_expiry_interval and msg.expire_at is None:
            msg = msg.copy()  # the live delivery keeps its own (absent) expiry
            msg.expire_at = time.monotonic() + cfg.msg_expiry_interval
        self.put(msg)

    def match(self, flt: str) -> list:
        if not self.config.enable:
            return []
        return self.store.match(flt)

    def dispatch(self, sess, sub, msgs: list) -> int:
        """Deliver retained messages to a new subscription within `delivery_rate` (a node-wide
        token bucket holding one second's worth); the rest follows as tokens refill. The broker
        calls this instead of delivering `match()`'s result itself."""
        rate = self._rate
        if rate is None:
            for m in msgs:
                sess.deliver(m, sub, None, True)
            return len(msgs)
        now = time.monotonic()
        self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        n = min(len(msgs), int(self._tokens))
        self._tokens -= n
        for m in msgs[:n]:
            sess.deliver(m, sub, None, True)
        rest = msgs[n:]
        if rest:
            delay = max(1.0, min(len(rest), rate) - self._tokens) / rate
            self.broker.loop.call_later(delay, self._resume, sess, sub, rest)
        return n

    def _resume(self, sess, sub, msgs: list) -> None:
        # Only while that very subscription still exists (not unsubscribed nor replaced).
        if sess.subscriptions.get(sub.topic_filter) is sub and \
                self.broker.sessions.get(sess.clientid) is sess:
            self.dispatch(sess, sub, msgs)

    # -- management -----------------------------------------------------------------------------

    def lookup(self, flt: str) -> list:
        """Messages matching a filter, whether or not the retainer is enabled (for the API)."""
        return self.store.match(flt)

    def all(self) -> list:
        self.purge_expired()
        return list(self.store.messages())

    def put(self, msg) -> None:
        """Store a retained message as it is (a PUBLISH's once checked, a restored backup's,
        another node's), replacing the topic's; `on_change` is told (the cluster's replica
        ignores what it applies itself)."""
        _ = msg.id  # fixed now: the writer thread reads it
        self.store.put(msg)
        self._persist(msg.topic, msg)
        if self.on_change is not None:
            self.on_change(msg.topic, msg)

    def delete(self, topic: str) -> bool:
        if self.store.delete(topic):
            self._persist(topic, None)
            if self.on_change is not None:
                self.on_change(topic, None)
            return True
        return False

    def delete_matching(self, flt: str) -> int:
        msgs = self.store.match(flt)
        for m in msgs:
            self.delete(m.topic)
        return len(msgs)

    def clear(self) -> None:
        if self.on_change is not None:
            for m in self.store.messages():
                self.on_change(m.topic, None)
        self.store.clear()
        self._batch.clear()
        if self.writer is not None:
            self.writer.clear()

    def purge_expired(self) -> int:
        return len(self.store.purge_expired())

    def _expired(self, topic: str) -> None:
        self._persist(topic, None)
