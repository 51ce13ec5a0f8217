"""Retained messages (EMQX's emqx_retainer), durable in the broker's SQLite store.

`setup(broker)` (at start, once the store is open, before the listeners) loads the persisted
messages and arms the purge timer; `await teardown(broker)` commits what is pending.
"""
from __future__ import annotations

from emqpy.feature import Feature


def setup(broker) -> None:
    ret = broker.retainer
    if broker.store is not None:
        ret.attach(broker.store)
    ret.start()


async def teardown(broker) -> None:
    await broker.retainer.stop()


FEATURE = Feature("retainer", setup=setup, teardown=teardown, routers=("emqpy.retainer.api",))
