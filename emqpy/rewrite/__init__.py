"""Topic rewrite (EMQX's emqx_rewrite), config root `rewrite` (a list of rules).

`setup(broker)` registers the callbacks of the configured rules (none when there are none);
`config_changed(broker)` replaces them after a change of the root; `await teardown(broker)`
removes them. The running rules are `broker.rewrite` (rewrite.Rewriter, None without rules).
"""
from __future__ import annotations

from emqpy.feature import Feature


def setup(broker) -> None:
    config_changed(broker)


def config_changed(broker) -> None:
    from emqpy.rewrite.rewrite import Rewriter

    if broker.rewrite is not None:
        broker.rewrite.unregister()
        broker.rewrite = None
    rules = broker.config.rewrite
    if rules:
        broker.rewrite = Rewriter(broker, rules)
        broker.rewrite.register()


async def teardown(broker) -> None:
    if broker.rewrite is not None:
        broker.rewrite.unregister()
        broker.rewrite = None


FEATURE = Feature("rewrite", setup=setup, teardown=teardown, routers=("emqpy.rewrite.api",))
