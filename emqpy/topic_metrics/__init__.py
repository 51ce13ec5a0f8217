"""Topic metrics (EMQX's emqx_topic_metrics), config root `topic_metrics` (a list of topics).

`setup(broker)` creates `broker.topic_metrics` (metrics.TopicMetrics) for the configured topics;
`config_changed(broker)` follows the root (counters of topics still listed are kept);
`await teardown(broker)` removes the callbacks and the timer.
"""
from __future__ import annotations

from emqpy.feature import Feature


def setup(broker) -> None:
    from emqpy.topic_metrics.metrics import TopicMetrics

    if broker.topic_metrics is None:
        broker.topic_metrics = TopicMetrics(broker)
    config_changed(broker)


def config_changed(broker) -> None:
    if broker.topic_metrics is not None:
        broker.topic_metrics.sync([t.topic for t in broker.config.topic_metrics])


async def teardown(broker) -> None:
    if broker.topic_metrics is not None:
        broker.topic_metrics.stop()


FEATURE = Feature("topic_metrics", setup=setup, teardown=teardown,
                  routers=("emqpy.topic_metrics.api",))
