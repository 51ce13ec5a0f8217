"""EMQX's management endpoints (emqx_management): clients, topics, publish, nodes, listeners, configs.

As a feature it tracks what the clients API needs from the start: the last connection of each
offline session.
"""


def setup(broker) -> None:
    from emqpy.mgmt import clients_api

    clients_api.setup(broker)


async def teardown(broker) -> None:
    pass
