"""EMQX's management endpoints (emqx_management): clients, topics, publish, nodes, listeners, configs.

`service.py` holds the operations the REST API, `emqpy ctl` and embedding programs share. As a
feature it tracks what the clients API needs from the start: the last connection of each
offline session.
"""
from emqpy.feature import Feature


def setup(broker) -> None:
    from emqpy.mgmt import service

    service.track_clients(broker)
    from emqpy.cluster import on_link
    from emqpy.monitor import node as nodeinfo

    def register(link):  # let the other nodes ask this one (nodes_api answers for all)
        for fn in (nodeinfo.node_info, nodeinfo.node_metrics, nodeinfo.per_node_stats):
            link.register(fn.__name__, lambda fn=fn: fn(broker))
    on_link(broker, register)  # now if clustered, and whenever the node joins a cluster


FEATURE = Feature("mgmt", setup=setup, routers=(
    "emqpy.mgmt.clients_api",
    "emqpy.mgmt.topics_api",
    "emqpy.mgmt.publish_api",
    "emqpy.mgmt.nodes_api",
    "emqpy.mgmt.stats_api",
    "emqpy.mgmt.listeners_api",
    "emqpy.mgmt.configs_api",
    "emqpy.mgmt.ctl_api",
))
