"""Manual discovery: standalone nodes (no NATS) form a cluster through PUT /cluster/{node}/invite,
invite_async and `emqpy ctl cluster join`, leave it (leave, force_leave), remember it across a
restart, survive the kill -9 of a member, and a node whose nats-server dies raises an alarm,
keeps serving its own clients and routes again once its supervised server is back."""
from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from emqpy.cluster.membership import NATS_ALARM
from support.mqttclient import MqttClient, client, uid
from support.node import Node
from support.process import Proc
from support.waiting import wait_until

from cluster.conftest import _names, _proc, _statuses


def _conf(name: str, **cluster) -> dict:
    return {"node": {"name": name, "cookie": cluster.pop("cookie", "testcookie")},
            "cluster": {"name": "testmb", "discovery_strategy": "manual", **cluster}}


@pytest.fixture
def standalone(make_mqtt_broker):
    """standalone(n, **cluster) -> n started, unclustered Nodes in manual mode."""
    nodes: list[Node] = []

    def make(n: int, **cluster) -> list[Node]:
        made = [Node(make_mqtt_broker(_conf(name, **cluster))) for name in _names(n)]
        nodes.extend(made)
        return made

    yield make
    for nd in nodes:
        nd.stop()


def _running(node: Node) -> list[str]:
    return node.get("/cluster")["nodes"]


def _ctl(node: Node, *args: str) -> str:
    return node.ok("POST", "/emqpy/ctl", json={"args": list(args)})["output"]


def _routes(pub_node, sub_node, timeout: float = 20) -> None:
    """A message published on one node reaches a subscriber on the other."""
    topic = f"mb/{uid()}"
    sub = client(sub_node)
    sub.subscribe(topic, qos=1)
    pub = client(pub_node)
    got: list = []

    def arrived():
        pub.publish(topic, "hello", qos=1)
        got.extend(sub.drain())
        return got
    wait_until(arrived, timeout=timeout, what=f"{topic} routed")
    assert got[0].payload == b"hello"
    pub.close()
    sub.close()


def test_a_standalone_node_runs_no_nats_and_refuses_bad_invitations(standalone):
    (a,) = standalone(1)
    me = a.name
    assert a.broker.cluster is None and a.broker.cluster_nats is None
    assert a.broker.cluster_membership.server is not None  # invitable
    assert a.get("/cluster/topology") == [{"core_node": me, "replicant_nodes": []}]
    assert a.get("/cluster/invitation") == {"succeed": [], "in_progress": [], "failed": []}

    def bad(method, path, message, **kw):
        r = a.api.request(method, path, **kw)
        assert r.status_code == 400, r.text
        body = r.json()
        assert (body["code"], body["message"]) == ("BAD_REQUEST", message)

    bad("PUT", f"/cluster/{me}/invite", "Cannot invite self", json={})
    bad("PUT", f"/cluster/{me}/invite", "Cannot invite self")  # the body is optional
    bad("PUT", f"/cluster/{me}/invite_async", "Can't invite self")
    bad("DELETE", f"/cluster/{me}/force_leave", "Can't leave self")
    bad("DELETE", "/cluster/emqx9@127.0.0.1/force_leave", "node_not_in_cluster")
    bad("PUT", "/cluster/emqx9@127.0.0.1/invite", "timeout must be an integer",
        json={"timeout": "soon"})
    bad("PUT", "/cluster/emqx9@127.0.0.1/invite", "timeout cannot be less than 5000ms",
        json={"timeout": 3000})
    bad("PUT", "/cluster/nonode/invite", "node : Bad node name", json={})
    # nobody listens on the invited node's join port: it is down, and this node stays alone
    (ghost,) = _names(1)
    bad("PUT", f"/cluster/{ghost}/invite", f"{{node_down,'{ghost}'}}", json={"timeout": 5000})
    assert a.broker.cluster is None and a.broker.cluster_nats is None
    assert not (a.data_dir / "cluster" / "membership.json").exists()
    assert _ctl(a, "cluster", "status") == \
        f"Cluster status: #{{running_nodes => ['{me}'],stopped_nodes => []}}\n"
    assert _ctl(a, "cluster", "leave") == "Failed to leave the cluster: node_not_in_cluster\n"
    assert _ctl(a, "cluster", "force-leave", me) == "Ignore.\n"
    assert _ctl(a, "cluster", "join", me) == "Ignore.\n"
    assert _ctl(a, "cluster", "join", ghost) == \
        f"Failed to join the cluster: {{node_down,'{ghost}'}}\n"
    assert _ctl(a, "cluster", "bogus").startswith("cluster join <Node>")


def test_a_wrong_cookie_is_refused(standalone):
    (a,) = standalone(1)
    (b,) = standalone(1, cookie="another")
    r = a.api.put(f"/cluster/{b.name}/invite", json={"timeout": 5000})
    assert r.status_code == 400 and r.json()["message"] == "bad_cookie"
    assert a.broker.cluster is None and b.broker.cluster is None


def test_invitations_form_three_nodes_that_route_and_answer_for_each_other(standalone):
    a, b, c = standalone(3)
    names = sorted(n.name for n in (a, b, c))
    assert a.ok("PUT", f"/cluster/{b.name}/invite", json={"timeout": 15000}) is None
    assert sorted(_running(a)) == sorted([a.name, b.name])
    # the asynchronous invitation, watched through /cluster/invitation
    assert b.ok("PUT", f"/cluster/{c.name}/invite_async") is None
    r = b.api.put(f"/cluster/{c.name}/invite_async")
    assert r.status_code == 400 or b.get("/cluster/invitation")["succeed"]
    if r.status_code == 400:
        assert r.json()["message"] == "The invitation task already created for this node"
    wait_until(lambda: [i["node"] for i in b.get("/cluster/invitation")["succeed"]]
               == [c.name], timeout=20)
    status = b.get("/cluster/invitation")
    assert status["in_progress"] == [] and status["failed"] == []
    assert set(status["succeed"][0]) == {"node", "started_at", "finished_at"}
    for n in (a, b, c):
        wait_until(lambda n=n: sorted(_running(n)) == names, timeout=20)
    assert sorted(t["core_node"] for t in a.get("/cluster/topology")) == names
    # a node that joined after start answers the API for the others
    assert a.get(f"/nodes/{c.name}")["node_status"] == "running"
    r = a.api.put(f"/cluster/{c.name}/invite", json={})
    assert r.status_code == 400
    assert r.json()["message"] == f"{{already_in_cluster,'{a.name}'}}"
    _routes(a, c)
    _routes(c, b)
    for n in (a, b, c):
        assert (n.data_dir / "cluster" / "membership.json").is_file()
    # the NATS servers take only clients that know the cookie
    with pytest.raises(Exception, match="Authorization Violation"):
        asyncio.run(_nats_connect(a.broker.cluster_nats.client_url))


async def _nats_connect(url: str):
    import nats
    nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2,
                            max_reconnect_attempts=0)
    await nc.close()


def test_force_leave_leave_and_ctl_join(standalone):
    a, b, c = standalone(3)
    a.ok("PUT", f"/cluster/{b.name}/invite", json={})
    out = _ctl(c, "cluster", "join", a.name)
    assert out.startswith("Join the cluster successfully.\nCluster status: #{running_nodes => [")
    assert f"'{c.name}'" in out and f"'{a.name}'" in out
    wait_until(lambda: len(_running(b)) == 3, timeout=20)
    # force_leave: c is told and goes back to standalone; the others forget it
    a.ok("DELETE", f"/cluster/{c.name}/force_leave", status=204)
    wait_until(lambda: c.broker.cluster is None and c.broker.cluster_nats is None, timeout=10,
               what="c standalone again, its NATS stopped")
    assert not (c.data_dir / "cluster" / "membership.json").exists()
    wait_until(lambda: sorted(_running(b)) == sorted([a.name, b.name]), timeout=10)
    assert sorted(_running(a)) == sorted([a.name, b.name])
    _routes(b, a)
    assert _ctl(a, "cluster", "force-leave", c.name) == \
        "Failed to remove the node from cluster: node_not_in_cluster\n"
    # leave: b goes back to standalone
    out = _ctl(b, "cluster", "leave")
    assert out == ("Leave the cluster successfully.\n"
                   f"Cluster status: #{{running_nodes => ['{b.name}'],stopped_nodes => []}}\n")
    assert b.broker.cluster is None and b.broker.cluster_nats is None
    wait_until(lambda: _running(a) == [a.name], timeout=10)
    # and can be invited again
    c.ok("PUT", f"/cluster/{b.name}/invite", json={})
    assert sorted(_running(b)) == sorted([b.name, c.name])
    _routes(c, b)


def test_a_node_removed_while_down_leaves_when_it_comes_back(standalone):
    a, b, c = standalone(3)
    for other in (b, c):
        a.ok("PUT", f"/cluster/{other.name}/invite", json={})
    c.stop()  # a clean stop: c still remembers the cluster
    a.ok("DELETE", f"/cluster/{c.name}/force_leave", status=204)
    assert sorted(_running(a)) == sorted([a.name, b.name])
    c.start()  # rejoins from its data dir, hears it was removed, and leaves
    wait_until(lambda: c.broker.cluster is None, timeout=20, what="c standalone")
    assert not (c.data_dir / "cluster" / "membership.json").exists()
    assert sorted(_running(a)) == sorted([a.name, b.name])
    assert sorted(_running(b)) == sorted([a.name, b.name])


def test_nats_outage_raises_an_alarm_and_routing_resumes(standalone):
    a, b = standalone(2)
    a.ok("PUT", f"/cluster/{b.name}/invite", json={})
    _routes(a, b)
    local_sub, local_pub = client(a), client(a)
    local_sub.subscribe("mb/local", qos=1)
    a.broker.cluster_nats.proc.kill()  # the embedded nats-server dies

    def alarmed():
        return any(x["name"] == NATS_ALARM for x in a.get("/alarms?activated=true")["data"])
    wait_until(alarmed, timeout=10, what="the NATS alarm")
    local_pub.publish("mb/local", "still here", qos=1)  # its own clients still served
    assert local_sub.get().payload == b"still here"
    # the supervisor restarted the server: the alarm clears and routing resumes
    wait_until(lambda: not alarmed(), timeout=20, what="the NATS alarm cleared")
    assert a.broker.cluster_nats.alive()
    _routes(b, a)
    _routes(a, b)
    assert any(x["name"] == NATS_ALARM for x in a.get("/alarms?activated=false")["data"])
    local_sub.close()
    local_pub.close()


# -- nodes as processes: restart and kill -9 -------------------------------------------------

def _proc_routes(pub: Proc, sub: Proc, timeout: float = 30) -> None:
    topic = f"mb/{uid()}"
    s = MqttClient("127.0.0.1", sub.mqtt_port)
    s.connect()
    s.subscribe(topic, 1)
    p = MqttClient("127.0.0.1", pub.mqtt_port)
    p.connect()
    got: list = []

    def arrived():
        p.publish(topic, "x", qos=1)
        got.extend(s.drain())
        return got
    wait_until(arrived, timeout=timeout, what=f"{topic} routed between processes")
    s.close()
    p.close()


@pytest.mark.parametrize("formed_by", ["invite", "static seeds"])
def test_members_survive_kill9_and_rejoin_after_restart(tmp_path, formed_by):
    names = _names(3)
    seeds = names if formed_by == "static seeds" else None
    a, b, c = procs = [_proc(tmp_path, n, seeds) for n in names]
    try:
        # started together, as a cluster is deployed (and three starts cost one)
        with ThreadPoolExecutor(len(procs)) as pool:
            list(pool.map(Proc.start, procs))
        if not seeds:
            with a.api() as api:
                for other in (b, c):
                    r = api.put(f"/cluster/{other.env['EMQX_NODE__NAME']}/invite", json={})
                    assert r.status_code == 200, r.text
        wait_until(lambda: set(_statuses(c).values()) == {"running"}
                   and len(_statuses(c)) == 3, timeout=30)
        _proc_routes(a, c)
        c.proc.send_signal(signal.SIGKILL)
        c.proc.wait(10)
        c.proc = None
        # the others keep routing between themselves; c is stopped within 30 s
        _proc_routes(a, b)
        wait_until(lambda: _statuses(a).get(names[2]) == "stopped", timeout=30)
        assert _statuses(b).get(names[2]) == "stopped"
        # and the membership (heartbeats) says so too, once it was silent for down_after
        wait_until(lambda: f"stopped_nodes => ['{names[2]}']" in b.out("cluster", "status"),
                   timeout=30)
        # restarted on its data dir, c rejoins by itself and routes again
        c.start()
        wait_until(lambda: set(_statuses(a).values()) == {"running"}, timeout=30)
        assert "Cluster status: #{running_nodes => [" in c.out("cluster", "status")
        _proc_routes(c, a)
        _proc_routes(b, c)
    finally:
        for p in procs:
            p.stop()
