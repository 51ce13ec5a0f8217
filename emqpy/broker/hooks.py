"""The hook bus: features and embedding programs register callbacks on the broker's named
points (EMQX's hook point names). docs/hooks.md lists every point, its arguments, when it runs
and whether it may change or stop what is happening.

Callbacks run by priority (higher first), then in registration order. The broker looks a point
up in `_points` before building arguments, so a point nobody registered costs one dict lookup.
"""
from __future__ import annotations

import logging

log = logging.getLogger("emqpy.hooks")


class Hooks:
    def __init__(self, on_change=None):
        self._points: dict[str, list[tuple[int, object]]] = {}
        # called after every add/remove: the broker derives its hot-path flags from the points
        self._on_change = on_change

    def add(self, point: str, fn, priority: int = 0) -> None:
        lst = self._points.setdefault(point, [])
        lst.append((priority, fn))
        lst.sort(key=lambda t: -t[0])  # (stable: equal priorities keep registration order)
        if self._on_change is not None:
            self._on_change()

    def remove(self, point: str, fn) -> None:
        # `!=`, not `is not`: each `obj.method` access makes a new bound method, equal to the
        # one registered but not identical to it.
        lst = [t for t in self._points.get(point, ()) if t[1] != fn]
        if lst:
            self._points[point] = lst
        else:
            self._points.pop(point, None)
        if self._on_change is not None:
            self._on_change()

    def run(self, point: str, *args) -> None:
        """Call every callback; one failing callback is logged and does not stop the others."""
        for _, fn in self._points.get(point, ()):
            try:
                fn(*args)
            except Exception:
                log.exception("hook %s failed", point)

    def fold(self, point: str, acc, *args):
        """Thread `acc` through the callbacks (each returns the new value); None stops. A
        failing callback is logged and leaves `acc` as it was."""
        for _, fn in self._points.get(point, ()):
            try:
                acc = fn(acc, *args)
            except Exception:
                log.exception("hook %s failed", point)
            if acc is None:
                break
        return acc

    def first(self, point: str, *args):
        """The first callback's answer that is not None (None: no callback had one). Errors
        propagate: a decision must not be taken by a callback that failed."""
        for _, fn in self._points.get(point, ()):
            res = fn(*args)
            if res is not None:
                return res
        return None
