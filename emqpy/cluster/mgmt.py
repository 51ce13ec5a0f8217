"""What this node answers to the others for the management API (EMQX's emqx_mgmt RPCs): a
page of its clients, subscriptions or topics, an operation on one of its clients, its monitor
figures. The mgmt and monitor features use them through ``ClusterLink.call``/``call_all``
(emqpy/mgmt/cluster_query.py, emqpy/monitor/api.py); the functions themselves are theirs.
"""
from __future__ import annotations


def register(link) -> None:
    from emqpy.mgmt import cluster_query
    from emqpy.monitor import api as monitor_api
    from emqpy.monitor import sampler

    broker = link.broker
    link.register(cluster_query.PAGE, lambda kind, query, offset, limit:
                  cluster_query.node_page(broker, kind, query, offset, limit))
    link.register(cluster_query.CLIENT, lambda op, clientid, args:
                  cluster_query.client_op(broker, op, clientid, args))
    link.register(cluster_query.SESSIONS, lambda: len(broker.sessions))
    link.register(monitor_api.SAMPLES, lambda latest:
                  sampler.get(broker).samples(latest, cluster=False))
    link.register(monitor_api.CURRENT, lambda with_cluster_figures:
                  sampler.get(broker).node_rate(with_cluster_figures))
