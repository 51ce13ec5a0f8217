"""A feature's manifest: what a package under emqpy/ plugs into a node.

Each feature package's ``__init__`` exposes ``FEATURE = Feature(...)``; the one list of feature
packages is ``emqpy.features.FEATURES``. The broker runs ``setup``/``teardown`` in that order
(teardown in reverse), the API app mounts ``routers`` in that order. Nothing else registers a
feature.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable


@dataclass(frozen=True)
class Feature:
    name: str
    # setup(broker): at broker start, once the store is open and before the listeners; sync,
    # or it returns an awaitable that the node awaits before the next feature (I/O at start).
    setup: Callable[[Any], Any] | None = None
    # await teardown(broker): at broker stop, before the store closes.
    teardown: Callable[[Any], Awaitable[None]] | None = None
    # Modules whose ``router`` (paths relative to /api/v5) and ``root_router`` (paths outside
    # it) the API app mounts. Names, not modules: a broker without the API never imports FastAPI.
    routers: tuple[str, ...] = ()
