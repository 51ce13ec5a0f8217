"""Prometheus metrics of the broker in EMQX's names (GET /api/v5/prometheus/stats)."""
from emqpy.feature import Feature


def setup(broker) -> None:
    from emqpy.prometheus import push

    push.setup(broker)


async def teardown(broker) -> None:
    from emqpy.prometheus import push

    await push.teardown(broker)


FEATURE = Feature("prometheus", setup=setup, teardown=teardown, routers=("emqpy.prometheus.api",))
