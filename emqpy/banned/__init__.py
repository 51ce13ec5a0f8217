"""Banned clients (EMQX's emqx_banned), durable in the broker's SQLite store.

`setup(broker)` (at start, once the store is open, before the listeners) loads the bans,
installs the CONNECT check and the expiry purge; `await teardown(broker)` stops the purge.
The ban list is `broker.banned`.
"""
from __future__ import annotations

from emqpy.banned import backup
from emqpy.feature import BackupTable, Feature


def setup(broker) -> None:
    from emqpy.banned.banned import Banned

    banned = broker.banned
    if banned is None:
        banned = broker.banned = Banned(broker)
        if broker.store is not None:
            banned.attach(broker.store)
        broker.add_connect_check(banned.check)
    elif broker.store is not None:  # a restart of the same Broker object: reload
        banned.exact = {k: {} for k in banned.exact}
        banned.rules = {}
        banned.attach(broker.store)
    banned.stop()
    banned._arm()


def banned_count(broker) -> int:
    """Live bans on exact client ids, usernames and addresses (EMQX's emqx_banned table, the
    count /prometheus/auth shows; pattern and network bans are a table of their own)."""
    banned = broker.banned
    if banned is None:
        return 0
    from emqpy.banned.banned import EXACT
    return sum(1 for b in banned.all() if b.kind in EXACT)


async def teardown(broker) -> None:
    banned = broker.banned
    if banned is not None:
        banned.stop()


FEATURE = Feature("banned", setup=setup, teardown=teardown, routers=("emqpy.banned.api",),
                  backup_tables=(BackupTable(
                      "banned", "banned", backup.export, backup.restore,
                      emqx_tables={"emqx_banned": backup.from_emqx,
                                   "emqx_banned_rules": backup.from_emqx}),))
