"""Flapping detection (`flapping_detect`): a client disconnected more than `max_count` times
within `window_time` is banned by client id for `ban_time`, as EMQX does.

    from emqpy import flapping
    flapping.setup(broker)            # Broker.start, after emqpy.banned
    await flapping.teardown(broker)   # Broker.stop

Bans go to `broker.banned` (emqpy.banned: durable, shown in /banned, by "flapping detector");
a broker without that feature gets them in this module's own table, checked at CONNECT.
"""
from __future__ import annotations

from emqpy.feature import Feature

import logging
import time

from emqpy.mqtt import reason_codes as rc

log = logging.getLogger("emqpy.flapping")
BY = "flapping detector"
REASON = "flapping is detected"


class Flapping:
    def __init__(self, broker):
        self.broker = broker
        self.windows: dict[str, tuple[float, int]] = {}  # clientid -> (window start, count)
        self.bans: dict[str, dict] = {}  # clientid -> EMQX /banned record

    @property
    def cfg(self):
        return self.broker.config.flapping_detect

    def on_disconnected(self, ch, reason) -> None:
        cfg = self.cfg
        if not cfg.enable or not ch.clientid:
            return
        now = time.monotonic()
        start, n = self.windows.get(ch.clientid, (now, 0))
        if now - start > cfg.window_time:
            start, n = now, 0
        n += 1
        if n > cfg.max_count:
            self.windows.pop(ch.clientid, None)
            self._ban(ch.clientid, cfg.ban_time)
        else:
            self.windows[ch.clientid] = (start, n)
        if len(self.windows) > 100_000:  # forget finished windows so memory stays bounded
            self.windows = {k: v for k, v in self.windows.items()
                            if now - v[0] <= cfg.window_time}

    def _ban(self, clientid: str, seconds: float) -> None:
        now = time.time()
        banned = self.broker.banned
        if banned is not None:
            from emqpy.banned.banned import Ban
            try:
                banned.create(Ban("clientid", clientid, by=BY, reason=REASON, at=now,
                                  until=now + seconds))
            except KeyError:  # already banned (by an operator or an earlier detection)
                return
        else:
            self.bans[clientid] = {"as": "clientid", "who": clientid, "by": BY,
                                   "reason": REASON, "at": now, "until": now + seconds}
        log.warning("client %s is flapping: banned for %.0fs", clientid, seconds)

    def connect_check(self, ch, pkt) -> int:
        if not self.bans:
            return 0
        ban = self.bans.get(ch.clientid)
        if ban is None:
            return 0
        if ban["until"] <= time.time():
            del self.bans[ch.clientid]
            return 0
        return rc.BANNED


def setup(broker) -> Flapping:
    f = Flapping(broker)
    broker.flapping = f
    f._hook = f.on_disconnected
    broker.hooks.add("client.disconnected", f._hook)
    broker.add_connect_check(f.connect_check)
    return f


async def teardown(broker) -> None:
    f = broker.flapping
    if f is None:
        return
    broker.hooks.remove("client.disconnected", f._hook)
    if f.connect_check in broker._connect_checks:
        broker._connect_checks.remove(f.connect_check)
    broker.flapping = None


FEATURE = Feature("flapping", setup=setup, teardown=teardown)
