"""Slow subscriptions (EMQX's emqx_slow_subs), config root `slow_subs` (off by default).

`setup(broker)` creates `broker.slow_subs` (ranking.SlowSubs) and, when `slow_subs.enable` is
on, registers its `delivery.completed` callback and the expiry timer; `config_changed(broker)`
follows the root; `await teardown(broker)` removes them.
"""
from __future__ import annotations

from emqpy.feature import Feature


def setup(broker) -> None:
    from emqpy.slow_subs.ranking import SlowSubs

    if broker.slow_subs is None:
        broker.slow_subs = SlowSubs(broker)
    broker.slow_subs.apply_config()


def config_changed(broker) -> None:
    if broker.slow_subs is not None:
        broker.slow_subs.apply_config()


async def teardown(broker) -> None:
    if broker.slow_subs is not None:
        broker.slow_subs.unload()


FEATURE = Feature("slow_subs", setup=setup, teardown=teardown, routers=("emqpy.slow_subs.api",))
