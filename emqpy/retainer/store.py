"""Retained messages kept in a topic trie, so a wildcard subscribe walks only matching branches.

Expiry deadlines are `time.monotonic()` values on the messages (`msg.expire_at`); the store
keeps the topics that have one in `expiring`, so a periodic purge looks at those only.
`on_expire(topic)` is called for every message the store drops as expired (the retainer uses
it to delete the persisted copy).
"""
from __future__ import annotations

import time


class _Node:
    __slots__ = ("children", "msg")

    def __init__(self):
        self.children: dict[str, _Node] = {}
        self.msg = None


class RetainedStore:
    def __init__(self, on_expire=None):
        self._root = _Node()
        self._by_topic: dict[str, object] = {}
        self.expiring: dict[str, float] = {}  # topic -> monotonic deadline
        self.on_expire = on_expire

    def __len__(self) -> int:
        return len(self._by_topic)

    def get(self, topic: str):
        return self._by_topic.get(topic)

    def put(self, msg) -> None:
        node = self._root
        for level in msg.topic.split("/"):
            child = node.children.get(level)
            if child is None:
                child = node.children[level] = _Node()
            node = child
        node.msg = msg
        self._by_topic[msg.topic] = msg
        if msg.expire_at is not None:
            self.expiring[msg.topic] = msg.expire_at
        else:
            self.expiring.pop(msg.topic, None)

    def delete(self, topic: str) -> bool:
        if self._by_topic.pop(topic, None) is None:
            return False
        self.expiring.pop(topic, None)
        levels = topic.split("/")
        path = [self._root]
        for level in levels:
            path.append(path[-1].children[level])
        path[-1].msg = None
        for i in range(len(levels), 0, -1):
            node = path[i]
            if node.msg is None and not node.children:
                del path[i - 1].children[levels[i - 1]]
            else:
                break
        return True

    def clear(self) -> None:
        self._root = _Node()
        self._by_topic.clear()
        self.expiring.clear()

    def topics(self):
        return self._by_topic.keys()

    def messages(self):
        return self._by_topic.values()

    def purge_expired(self, now: float | None = None) -> list[str]:
        """Drop every expired message; returns their topics."""
        now = time.monotonic() if now is None else now
        gone = [t for t, deadline in self.expiring.items() if deadline <= now]
        for topic in gone:
            self.delete(topic)
            if self.on_expire is not None:
                self.on_expire(topic)
        return gone

    def match(self, flt: str) -> list:
        """Retained messages matching a topic filter; expired ones are removed on the way."""
        out: list = []
        if "+" not in flt and "#" not in flt:
            m = self._by_topic.get(flt)
            if m is not None:
                out.append(m)
        else:
            self._walk(self._root, flt.split("/"), 0, out)
        if not self.expiring:
            return out
        now = time.monotonic()
        live = [m for m in out if m.expire_at is None or m.expire_at > now]
        if len(live) != len(out):
            for m in out:
                if m.expire_at is not None and m.expire_at <= now:
                    self.delete(m.topic)
                    if self.on_expire is not None:
                        self.on_expire(m.topic)
        return live

    def _walk(self, node: _Node, levels: list, i: int, out: list) -> None:
        if i == len(levels):
            if node.msg is not None:
                out.append(node.msg)
            return
        level = levels[i]
        if level == "#":
            self._collect(node, out, skip_dollar=(i == 0))
            return
        if level == "+":
            for name, child in node.children.items():
                if i == 0 and name.startswith("$"):
                    continue
                self._walk(child, levels, i + 1, out)
            return
        child = node.children.get(level)
        if child is not None:
            self._walk(child, levels, i + 1, out)

    def _collect(self, node: _Node, out: list, skip_dollar: bool) -> None:
        if node.msg is not None and not skip_dollar:
            out.append(node.msg)  # 'a/#' matches 'a' itself
        stack = [(n, c) for n, c in node.children.items()
                 if not (skip_dollar and n.startswith("$"))]
        while stack:
            _, n = stack.pop()
            if n.msg is not None:
                out.append(n.msg)
            stack.extend(n.children.items())
