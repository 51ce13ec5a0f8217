"""A small hook bus: features register callbacks on named points of the broker's life.

Points used by the broker: `client.connected(channel)`, `client.disconnected(channel, reason)`,
`session.subscribed(session, sub)`, `session.unsubscribed(session, filter)`,
`message.publish(msg)` (may return a replacement message or None to drop it),
`message.delivered`, `session.created(session)`, `session.resumed(session)` (a client took up
its stored session), `session.terminated(session, reason)`.
Callbacks run in registration order by priority (higher first).
"""
from __future__ import annotations

import logging

log = logging.getLogger("emqpy.hooks")


class Hooks:
    def __init__(self):
        self._points: dict[str, list[tuple[int, object]]] = {}

    def add(self, point: str, fn, priority: int = 0) -> None:
        lst = self._points.setdefault(point, [])
        lst.append((priority, fn))
        lst.sort(key=lambda t: -t[0])

    def remove(self, point: str, fn) -> None:
        lst = self._points.get(point, [])
        self._points[point] = [t for t in lst if t[1] is not fn]
        if not self._points[point]:
            del self._points[point]

    def has(self, point: str) -> bool:
        return point in self._points

    def run(self, point: str, *args) -> None:
        """Call every callback; one failing callback is logged and does not stop the others."""
        for _, fn in self._points.get(point, ()):
            try:
                fn(*args)
            except Exception:
                log.exception("hook %s failed", point)

    def fold(self, point: str, acc, *args):
        """Thread `acc` through the callbacks (each returns the new value); None stops."""
        for _, fn in self._points.get(point, ()):
            try:
                acc = fn(acc, *args)
            except Exception:
                log.exception("hook %s failed", point)
            if acc is None:
                break
        return acc
