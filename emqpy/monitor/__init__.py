"""Dashboard monitor (time series of the broker's figures) and this node's system readings.

The broker starts this feature through its manifest (``FEATURE``, listed in emqpy.features):
``setup(broker)`` at start (store open, loop running) starts the sampler; ``await
teardown(broker)`` at stop ends it.
"""
from __future__ import annotations

from emqpy.feature import Feature


def setup(broker) -> None:
    from emqpy.monitor import sampler, storage

    if broker.store is not None:
        broker.store.migrate(storage.COMPONENT)  # idempotent; a no-op once at the latest version
    sampler.get(broker).start()


async def teardown(broker) -> None:
    from emqpy.monitor import sampler

    await sampler.stop(broker)


FEATURE = Feature("monitor", setup=setup, teardown=teardown, routers=("emqpy.monitor.api",))
