"""Slow subscriptions (EMQX's emqx_slow_subs): the top `top_k_num` (client id, topic) pairs by
the latency of their QoS 1/2 deliveries, taken from `delivery.completed`.

Latency (`stats_type`): `whole` from the message's arrival to its last acknowledgement,
`internal` from its arrival to when it was written to the subscriber, `response` from then to
the last acknowledgement; in milliseconds. As EMQX: a latency at or under `threshold` is not
recorded, a pair keeps its highest latency, a full ranking takes a pair only if it is slower
than the fastest one in it (which then leaves), messages older than the subscriber's session
are ignored, and a record not updated for `expire_interval` is removed (checked every 10 s).
"""
from __future__ import annotations

import time

EXPIRE_CHECK = 10.0  # seconds (EMQX's ?EXPIRE_CHECK_INTERVAL)
PRIORITY = 880  # EMQX's HP_SLOW_SUB


class SlowSubs:
    def __init__(self, broker):
        self.broker = broker
        # (clientid, topic) -> [timespan ms, last update ms]
        self.records: dict[tuple[str, str], list[int]] = {}
        self._timer = None
        self.loaded = False
        self.threshold_ms = 0
        self.max_size = 0
        self.stats_type = "whole"

    def apply_config(self) -> None:
        cfg = self.broker.config.slow_subs
        self.unload()
        if cfg.enable:
            self.threshold_ms = int(cfg.threshold * 1000)
            self.max_size = cfg.top_k_num
            self.stats_type = cfg.stats_type
            self.broker.hooks.add("delivery.completed", self.on_completed, PRIORITY)
            self.loaded = True
            self._arm()

    def unload(self) -> None:
        if self.loaded:
            self.broker.hooks.remove("delivery.completed", self.on_completed)
            self.loaded = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        loop = self.broker.loop
        if loop is not None:
            self._timer = loop.call_later(EXPIRE_CHECK, self._expire_tick)

    def _expire_tick(self) -> None:
        self._timer = None
        self.expire()
        if self.loaded:
            self._arm()

    def expire(self) -> None:
        now = int(time.time() * 1000)
        interval = self.broker.config.slow_subs.expire_interval * 1000
        for key in [k for k, (_, at) in self.records.items() if now - at >= interval]:
            del self.records[key]

    # -- the delivery.completed callback ------------------------------------------------------

    def on_completed(self, msg, ch, sent_at: float) -> None:
        sess = ch.session
        if sess is not None and msg.timestamp <= sess.created_at:
            return
        now = time.time()
        if self.stats_type == "whole":
            span = now - msg.timestamp
        elif self.stats_type == "internal":
            span = sent_at - msg.timestamp
        else:
            span = now - sent_at
        span = int(span * 1000)
        if span <= self.threshold_ms:
            return
        key = (ch.clientid, msg.topic)
        records = self.records
        old = records.get(key)
        if old is not None and span <= old[0]:
            return
        now_ms = int(now * 1000)
        if old is None and len(records) >= self.max_size:
            slowest_out = min(records, key=lambda k: (records[k][0], k))
            if span <= records[slowest_out][0]:
                return
            del records[slowest_out]
        records[key] = [span, now_ms]

    def ranking(self) -> list[dict]:
        node = self.broker.node_name
        rows = sorted(self.records.items(), key=lambda kv: -kv[1][0])
        return [{"clientid": cid, "node": node, "topic": topic, "timespan": span,
                 "last_update_time": at} for (cid, topic), (span, at) in rows]

    def clear(self) -> None:
        self.records.clear()
