"""EMQX's management endpoints (emqx_management): clients, topics, publish, nodes, listeners, configs.

`service.py` holds the operations the REST API, `emqpy ctl` and embedding programs share. As a
feature it tracks what the clients API needs from the start: the last connection of each
offline session.
"""


def setup(broker) -> None:
    from emqpy.mgmt import service

    service.track_clients(broker)


async def teardown(broker) -> None:
    pass
