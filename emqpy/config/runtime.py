"""Changing a running node's config, the one way every API does it.

    async with config_lock(node):
        new = update_root(node.config, "mqtt", {"max_inflight": 64})  # validate (ConfigError)
        ...                                 # root-specific work (restart listeners, ...)
        commit(node, new)                   # make it current and apply it
        await persist(node, "mqtt")         # save it for the next start (cluster.hocon)

``node`` is anything holding ``config``, ``data_dir`` and ``apply_config()`` (the Broker).
"""
from __future__ import annotations

import asyncio
import weakref
from typing import Any

from .loader import save_cluster_override
from .schema import EmqxConfig

_locks: "weakref.WeakKeyDictionary[Any, asyncio.Lock]" = weakref.WeakKeyDictionary()


def config_lock(node) -> asyncio.Lock:
    """One lock per node serialises runtime config changes (handlers interleave at awaits)."""
    lock = _locks.get(node)
    if lock is None:
        lock = _locks[node] = asyncio.Lock()
    return lock


def commit(node, new: EmqxConfig) -> None:
    """Make ``new`` the running config; the node re-reads what it caches from it."""
    node.config = new
    node.apply_config()


async def persist(node, *roots: str) -> None:
    """Save ``roots`` of the running config to ``<data_dir>/configs/cluster.hocon`` (in a
    thread: the write is fsynced), so the next start uses them."""
    config = node.config
    for root in roots:
        await asyncio.to_thread(save_cluster_override, node.data_dir, root,
                                config.dump(root, hidden=True))
