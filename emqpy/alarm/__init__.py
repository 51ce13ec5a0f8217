"""Alarms (EMQX's emqx_alarm): `broker.alarms.activate(name, details, message)` /
`deactivate(name)`, plus the broker's own monitors (memory, CPU, listener connections).

`setup(broker)` creates `broker.alarms`, loads the stored history and starts the monitors'
timers; `await teardown(broker)` stops them.
"""
from __future__ import annotations

from emqpy.feature import Feature


def setup(broker) -> None:
    from emqpy.alarm.alarms import Alarms

    alarms = broker.alarms
    if alarms is None:
        alarms = broker.alarms = Alarms(broker)
    if broker.store is not None:
        alarms.attach(broker.store)
    alarms.stop()
    alarms.start()


async def teardown(broker) -> None:
    alarms = broker.alarms
    if alarms is not None:
        alarms.stop()
        # EMQX deactivates its (ephemeral) alarms when the node stops.
        for name in list(alarms.active):
            alarms.deactivate(name)


FEATURE = Feature("alarm", setup=setup, teardown=teardown, routers=("emqpy.alarm.api",))
