"""Clustering over NATS (EMQX's cluster, built on an existing engine instead of a home-made
protocol): the nodes of a cluster route messages to each other's subscribers.

A node is clustered when ``cluster.discovery_strategy = static`` with ``cluster.static.seeds``
(EMQX's keys: the node names of the cluster, e.g. ``["emqx1@10.0.0.1", "emqx2@10.0.0.2"]``),
when it joined a cluster through the API or ``emqpy ctl cluster join`` (remembered in the data
dir: membership.py), or when ``cluster.nats.servers`` names an existing NATS cluster to use
instead of the embedded one. Otherwise no NATS runs (only the small join listener waiting for an
invitation), and the broker's publish path pays one ``None`` check. See docs/cluster.md.
"""
from __future__ import annotations

import asyncio
import weakref
from pathlib import Path

from emqpy.feature import Feature


def clustered(config) -> bool:
    from emqpy.cluster import workers
    c = config.cluster
    return (bool(c.nats.servers) or (c.discovery_strategy == "static" and bool(c.static.seeds))
            or workers.count(config) > 1)


# broker -> fns(link) to call each time the broker's link to the cluster starts (at start, or
# later when the node joins a cluster)
_link_callbacks: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def on_link(broker, fn) -> None:
    """Call `fn(link)` now if the broker is clustered, and every time it becomes clustered
    again (a join after start, a rejoin after a leave): where features register their RPCs."""
    _link_callbacks.setdefault(broker, []).append(fn)
    if broker.cluster is not None:
        fn(broker.cluster)


def setup(broker):
    broker.cluster_nats = None
    if broker.config.cluster.nats.servers:
        return _start(broker)
    from emqpy.cluster.membership import Membership
    return Membership(broker).start()


async def _start(broker, routes: list[str] = (), nats_cluster: str = "") -> None:
    """Start the embedded NATS (routed to `routes`, NATS route URLs; its cluster name
    `nats_cluster`, default ``cluster.name``) unless ``cluster.nats.servers`` names one, and
    the link over it."""
    from emqpy.cluster import natsd, tls
    from emqpy.cluster.link import ClusterLink
    c = broker.config.cluster
    node = broker.node_name
    servers = list(c.nats.servers)
    broker.cluster_nats = None
    if not servers:
        offset = natsd.node_offset(node)
        data = Path(broker.config.node.data_dir)
        host = c.nats.host or natsd.node_host(node)
        secure = tls.enabled(broker.config)  # rpc.protocol = ssl: routes, public client port
        server = natsd.NatsServer(
            node_name=node, cluster_name=nats_cluster or c.name, host=host,
            client_port=c.nats.client_port or natsd.CLIENT_PORT_BASE + offset,
            cluster_port=c.nats.cluster_port or natsd.CLUSTER_PORT_BASE + offset,
            routes=list(routes),
            store_dir=data / "nats", log_file=data / "log" / "nats-server.log",
            cookie=broker.config.node.cookie,
            route_tls=tls.nats_server_block(broker.config) if secure else "",
            client_tls=tls.nats_server_block(broker.config)
            if secure and not tls.is_loopback(host) else "")
        await asyncio.to_thread(server.start)
        broker.cluster_nats = server
        servers = [server.connect_url]
    link = ClusterLink(broker, servers, c.name,
                       **tls.nats_connect_options(broker.config, servers, natsd.node_host(node)))
    try:
        await link.start()
    except BaseException:
        if broker.cluster_nats is not None:
            await asyncio.to_thread(broker.cluster_nats.stop)
            broker.cluster_nats = None
        raise
    if tls.enabled(broker.config):  # rpc.protocol = ssl: new certificates without a restart
        membership = getattr(broker, "cluster_membership", None)
        contexts = [] if membership is None else [membership.tls_server, membership.tls_client]
        if not c.nats.tls.enable and "tls" in link.connect_options:  # (the rpc.* files)
            contexts.append(link.connect_options["tls"])
        reloader = tls.CertReloader(broker.config, contexts,
                                    lambda: getattr(broker, "cluster_nats", None))
        link.add_task(reloader.run())
    from emqpy.cluster import mgmt
    mgmt.register(link)  # the management API's calls between nodes
    from emqpy.cluster.sessions import SessionRegistry
    link.sessions = SessionRegistry(link)
    await link.sessions.start()
    from emqpy.cluster.replica import Replica
    link.replica = Replica(link)
    link.replica.start()
    broker.cluster = link
    for fn in _link_callbacks.get(broker, ()):
        fn(link)


async def before_clients(broker) -> None:
    """A clustered node opens its listeners once it has caught up with the replicated state
    (bounded: replica.CATCH_UP_WAIT) and given up the restored sessions whose clients
    connected to another node while it was down (sessions.py)."""
    if broker.cluster is not None:
        await broker.cluster.replica.wait_caught_up()
        await broker.cluster.sessions.settle_restored()


async def teardown(broker) -> None:
    membership = getattr(broker, "cluster_membership", None)
    if membership is not None:
        await membership.stop()
    await _stop(broker)


async def _stop(broker) -> None:
    """Stop the link and the embedded NATS (the node is standalone again)."""
    link = broker.cluster
    if link is None:
        return
    broker.cluster = None
    await link.replica.stop()
    link.sessions.stop()
    await link.stop()
    server = getattr(broker, "cluster_nats", None)
    broker.cluster_nats = None
    if server is not None:
        await asyncio.to_thread(server.stop)


FEATURE = Feature("cluster", setup=setup, before_clients=before_clients, teardown=teardown,
                  routers=("emqpy.cluster.api",))
