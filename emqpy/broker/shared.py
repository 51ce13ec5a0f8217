"""Shared subscriptions: one group of subscribers per (group name, filter), one member per message."""
from __future__ import annotations

import random
import zlib

STRATEGIES = ("random", "round_robin", "round_robin_per_group", "sticky", "local", "hash_topic",
              "hash_clientid")


class SharedGroup:
    __slots__ = ("name", "filter", "members", "strategy", "_rr", "_rr_by_sender", "_sticky",
                 "initial_pick")

    def __init__(self, name: str, flt: str, strategy: str, initial_pick: str = "random"):
        self.name = name
        self.filter = flt
        self.members: list = []  # Subscriptions, in join order
        self.strategy = strategy
        self.initial_pick = initial_pick
        self._rr = 0
        self._rr_by_sender: dict[str, int] = {}
        self._sticky = None

    def add(self, sub) -> None:
        for i, m in enumerate(self.members):
            if m.session is sub.session:
                self.members[i] = sub
                return
        self.members.append(sub)

    def remove(self, session) -> None:
        self.members = [m for m in self.members if m.session is not session]
        if self._sticky is not None and self._sticky.session is session:
            self._sticky = None

    def _pick(self, msg, members: list):
        n = len(members)
        if n == 1:
            return members[0]
        s = self.strategy
        if s == "round_robin":
            # EMQX keeps round-robin state per publisher; round_robin_per_group per group.
            i = self._rr_by_sender.get(msg.sender, -1) + 1
            if len(self._rr_by_sender) > 10000:
                self._rr_by_sender.clear()
            self._rr_by_sender[msg.sender] = i
            return members[i % n]
        if s == "round_robin_per_group":
            self._rr += 1
            return members[self._rr % n]
        if s == "sticky":
            cur = self._sticky
            if cur is None or cur not in members:
                cur = self._sticky = self._initial(msg, members)
            return cur
        if s == "hash_topic":
            return members[zlib.crc32(msg.topic.encode()) % n]
        if s == "hash_clientid":
            return members[zlib.crc32(msg.sender.encode()) % n]
        return random.choice(members)  # random; local is random on a single node

    def _initial(self, msg, members):
        p = self.initial_pick
        if p == "hash_topic":
            return members[zlib.crc32(msg.topic.encode()) % len(members)]
        if p == "hash_clientid":
            return members[zlib.crc32(msg.sender.encode()) % len(members)]
        return random.choice(members)

    def dispatch(self, msg, exclude=None, publisher=None) -> int:
        """Deliver `msg` to one member (preferring connected ones); returns deliveries made.
        `publisher`: the Channel it came from, if any (see Session.deliver)."""
        members = self.members
        if exclude is not None:
            members = [m for m in members if m.session is not exclude]
        if not members:
            return 0
        online = [m for m in members if m.session.channel is not None]
        if online and len(online) != len(members):
            members = online
        sub = self._pick(msg, members)
        return sub.session.deliver(msg, sub, self, False, publisher)
