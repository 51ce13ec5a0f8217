"""The retainer: stores the last retained message per topic and replays it to new subscribers."""
from __future__ import annotations

import time

from emqpy.retainer.store import RetainedStore


class Retainer:
    def __init__(self, broker):
        self.broker = broker
        self.store = RetainedStore()

    @property
    def config(self):
        return self.broker.config.retainer

    def __len__(self) -> int:
        return len(self.store)

    def on_publish(self, msg) -> None:
        """Called for each PUBLISH with the retain flag set."""
        cfg = self.config
        if not cfg.enable:
            return
        if not msg.payload:
            self.store.delete(msg.topic)
            return
        if cfg.max_payload_size and len(msg.payload) > cfg.max_payload_size:
            return
        limit = cfg.backend.max_retained_messages
        if limit and len(self.store) >= limit and self.store.get(msg.topic) is None:
            return
        if cfg.msg_expiry_interval and msg.expire_at is None:
            msg = msg.copy()  # the live delivery keeps its own (absent) expiry
            msg.expire_at = time.monotonic() + cfg.msg_expiry_interval
        self.store.put(msg)

    def match(self, flt: str) -> list:
        if not self.config.enable:
            return []
        return self.store.match(flt)
