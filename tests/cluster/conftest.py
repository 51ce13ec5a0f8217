"""Fixtures of the multi-node tests: `cluster(n)` starts n real nodes (each its own broker
thread, data dir, ports and embedded nats-server) clustered by static seeds."""
from __future__ import annotations

import random
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from emqpy.cluster import natsd
from emqpy.cluster.membership import JOIN_PORT_BASE
from emqpy.testing import _merge
from support.mqttclient import client, uid
from support.node import Node
from support.process import Proc
from support.waiting import wait_until


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _offsets(n: int) -> list[int]:
    """Node-name numbers whose derived ports (NATS 4222+N and 6222+N, join 4370+N) are free
    here, all below the kernel's range of ephemeral ports (32768 and up, usually), so that no
    outgoing connection of another test takes one between this check and the node's bind."""
    while True:
        base = random.randrange(15000, 26000, 10)
        picked = [base + i for i in range(n)]
        ports = [p + o for o in picked
                 for p in (natsd.CLIENT_PORT_BASE, natsd.CLUSTER_PORT_BASE, JOIN_PORT_BASE)]
        if all(_free(p) for p in ports):
            return picked


def _names(n: int) -> list[str]:
    """Node names whose derived ports (NATS and join) are free here."""
    return [f"emqx{o}@127.0.0.1" for o in _offsets(n)]


def _proc(tmp_path, name: str, seeds: list[str] | None = None) -> Proc:
    d = tmp_path / name.partition("@")[0]
    d.mkdir()
    env = {"EMQX_NODE__NAME": name, "EMQX_NODE__COOKIE": "testcookie",
           "EMQX_CLUSTER__NAME": "testmb", "EMQX_CLUSTER__DISCOVERY_STRATEGY": "manual",
           # a killed node counts as stopped after 4 s of silence (default 10 s)
           "EMQX_CLUSTER__DOWN_AFTER": "4s"}
    if seeds:
        env["EMQX_CLUSTER__DISCOVERY_STRATEGY"] = "static"
        env["EMQX_CLUSTER__STATIC__SEEDS"] = "[" + ",".join(f'"{s}"' for s in seeds) + "]"
    return Proc(d, env=env)


def _statuses(p: Proc) -> dict:
    with p.api() as api:
        return {n["node"]: n["node_status"] for n in api.get("/nodes").json()}


@pytest.fixture
def cluster(make_mqtt_broker, tmp_path_factory):
    """cluster(n, config=None) -> n started Nodes named emqx<N>@127.0.0.1, seeds = all of
    them, with `config` (EMQX-shaped overrides) merged into each node's.

    The nodes start at the same time, as a cluster's nodes do when it is deployed: one at a
    time, each would wait for a JetStream that cannot answer before the next one is there
    (replica.REACH_WAIT)."""
    nodes: list[Node] = []

    def make(n: int, config: dict | None = None) -> list[Node]:
        names = [f"emqx{o}@127.0.0.1" for o in _offsets(n)]
        confs = [(_merge({"node": {"name": name},
                          "cluster": {"name": "testcl", "discovery_strategy": "static",
                                      "static": {"seeds": names}}}, config or {}),
                  tmp_path_factory.mktemp("emqpy-data")) for name in names]
        with ThreadPoolExecutor(n) as pool:
            started = [pool.submit(make_mqtt_broker, *conf) for conf in confs]
        nodes.extend(Node(f.result()) for f in started)
        links = [nd.broker.cluster for nd in nodes]
        wait_until(lambda: all(len(link.running_nodes()) == n for link in links), timeout=20,
                   what="every node sees every other")
        return nodes

    yield make
    for nd in nodes:
        nd.stop()


@pytest.fixture
def two(cluster):
    return cluster(2)


def offline_with_three_queued(node: Node, prefix: str, v5: bool = True) -> str:
    """A client that subscribed to `<prefix>/#` (QoS 1) on `node` with a persistent session
    and went away, with three QoS 1 messages (payloads 0, 1, 2) queued for it: its client id."""
    cid = uid(prefix.replace("/", "-"))
    expiry = 300 if v5 else None
    first = client(node, cid, v5=v5, clean=False, expiry=expiry)
    assert first.session_present is False
    first.subscribe(f"{prefix}/#", qos=1)
    first.disconnect()
    pub = client(node)
    for i in range(3):
        pub.publish(f"{prefix}/{i}", str(i), qos=1)
    wait_until(lambda: len(node.broker.sessions[cid].mqueue) == 3)
    pub.close()
    return cid
