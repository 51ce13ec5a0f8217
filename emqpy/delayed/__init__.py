"""Delayed publish (EMQX's emqx_delayed): `$delayed/{seconds}/{topic}`, config root `delayed`.

`setup(broker)` creates `broker.delayed` (delayed.Delayed), loads the stored messages and, when
`delayed.enable` is on, fills the broker's `delay_publish` slot and arms the timer;
`config_changed(broker)` follows a change of the root; `await teardown(broker)` stops the timer
(the messages stay stored for the next start).
"""
from __future__ import annotations

from emqpy.feature import Feature


def setup(broker) -> None:
    from emqpy.delayed.delayed import Delayed

    delayed = broker.delayed
    if delayed is None:
        delayed = broker.delayed = Delayed(broker)
    if broker.store is not None:
        delayed.attach(broker.store)
    config_changed(broker)


def config_changed(broker) -> None:
    delayed = broker.delayed
    if delayed is None:
        return
    if broker.config.delayed.enable:
        delayed.load()
    else:
        delayed.unload()


async def teardown(broker) -> None:
    if broker.delayed is not None:
        broker.delayed.stop()


FEATURE = Feature("delayed", setup=setup, teardown=teardown, routers=("emqpy.delayed.api",))
