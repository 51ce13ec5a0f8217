"""Clustering over NATS (EMQX's cluster, built on an existing engine instead of a home-made
protocol): the nodes of a cluster route messages to each other's subscribers.

A node is clustered when ``cluster.discovery_strategy = static`` with ``cluster.static.seeds``
(EMQX's keys: the node names of the cluster, e.g. ``["emqx1@10.0.0.1", "emqx2@10.0.0.2"]``),
or when ``cluster.nats.servers`` names an existing NATS cluster to use instead of the embedded
one. Otherwise nothing here runs: no NATS, and the broker's publish path pays one ``None``
check. See docs/cluster.md.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from emqpy.feature import Feature


def clustered(config) -> bool:
    c = config.cluster
    return bool(c.nats.servers) or (c.discovery_strategy == "static" and bool(c.static.seeds))


def setup(broker):
    if not clustered(broker.config):
        return None
    return _start(broker)


async def _start(broker) -> None:
    from emqpy.cluster import natsd
    from emqpy.cluster.link import ClusterLink
    c = broker.config.cluster
    node = broker.node_name
    servers = list(c.nats.servers)
    broker.cluster_nats = None
    if not servers:
        offset = natsd.node_offset(node)
        data = Path(broker.config.node.data_dir)
        server = natsd.NatsServer(
            node_name=node, cluster_name=c.name, host=c.nats.host or natsd.node_host(node),
            client_port=c.nats.client_port or natsd.CLIENT_PORT_BASE + offset,
            cluster_port=c.nats.cluster_port or natsd.CLUSTER_PORT_BASE + offset,
            routes=[natsd.route_url(seed) for seed in c.static.seeds],
            store_dir=data / "nats", log_file=data / "log" / "nats-server.log")
        await asyncio.to_thread(server.start)
        broker.cluster_nats = server
        servers = [server.client_url]
    link = ClusterLink(broker, servers, c.name)
    await link.start()
    from emqpy.cluster.sessions import SessionRegistry
    link.sessions = SessionRegistry(link)
    await link.sessions.start()
    from emqpy.cluster.replica import Replica
    link.replica = Replica(link)
    link.replica.start()
    broker.cluster = link


async def teardown(broker) -> None:
    link = broker.cluster
    if link is None:
        return
    broker.cluster = None
    await link.replica.stop()
    link.sessions.stop()
    await link.stop()
    server = getattr(broker, "cluster_nats", None)
    if server is not None:
        await asyncio.to_thread(server.stop)


FEATURE = Feature("cluster", setup=setup, teardown=teardown)
