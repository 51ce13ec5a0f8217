"""Retained messages (EMQX's emqx_retainer), durable in the broker's SQLite store.

`setup(broker)` (at start, once the store is open, before the listeners) fills the broker's
`retainer` slot — the broker hands it retained PUBLISHes and asks it for matches after a
SUBACK — loads the persisted messages and arms the purge timer; `await teardown(broker)`
commits what is pending and empties the slot.
"""
from __future__ import annotations

from emqpy.feature import BackupTable, Feature
from emqpy.retainer import backup


def setup(broker) -> None:
    from emqpy.retainer.retainer import Retainer

    ret = broker.retainer = Retainer(broker)
    if broker.store is not None:
        ret.attach(broker.store)
    ret.start()


async def teardown(broker) -> None:
    ret, broker.retainer = broker.retainer, None
    await ret.stop()


FEATURE = Feature("retainer", setup=setup, teardown=teardown, routers=("emqpy.retainer.api",),
                  backup_tables=(BackupTable(
                      "retained_messages", "builtin_retainer", backup.export, backup.restore,
                      emqx_tables={"emqx_retainer_message": backup.from_emqx}),))
