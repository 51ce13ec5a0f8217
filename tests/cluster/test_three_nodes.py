"""Issue 17's acceptance test: three nodes, each a separate `python -m emqpy start` process
with its own data dir and ports, formed once by static seeds and once by invitations through
the first node's REST API, behave as one broker for MQTT clients (paho and mosquitto_pub/sub)
and for the management API, and survive the kill -9 of a node.

One cluster per way of forming (module-scoped fixture); the tests run in file order on it.
Nothing waits blindly: a route is known to have reached a node once a probe message published
there arrives (probes carry the payload PROBE and are left out of every count)."""
from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from support.mqttclient import MqttClient, client, props, uid
from support.process import Proc
from support.waiting import QUIET, wait_until

from cluster.conftest import _names, _proc, _statuses

PROBE = b"probe"


class Member:
    """One node of the cluster: its process, MQTT address and management API."""
    host = "127.0.0.1"

    def __init__(self, name: str, proc: Proc):
        self.name, self.proc = name, proc
        self.api = proc.api()
        self.clients: list[MqttClient] = []

    @property
    def port(self) -> int:
        return self.proc.mqtt_port

    def mqtt(self, cid: str | None = None, **kw) -> MqttClient:
        """An MQTT 5 paho client connected here (CONNACK checked by the caller)."""
        c = client(self, cid, v5=True, **kw)
        self.clients.append(c)
        return c

    def ok(self, method: str, path: str, status: int = 200, **kw):
        r = self.api.request(method, path, **kw)
        assert r.status_code == status, f"{self.name} {method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def close_clients(self) -> None:
        for c in self.clients:
            c.close()
        self.clients.clear()


@pytest.fixture(scope="module", params=["static seeds", "invite"])
def trio(request, tmp_path_factory):
    names = _names(3)
    seeds = names if request.param == "static seeds" else None
    root = tmp_path_factory.mktemp("three")
    members = [Member(name, _proc(root, name, seeds)) for name in names]
    a, b, c = members
    try:
        with ThreadPoolExecutor(3) as pool:  # the nodes start side by side
            for started in [pool.submit(m.proc.start) for m in members]:
                started.result()
        if seeds is None:  # manual: three standalone nodes, invited through a's API
            for other in (b, c):
                assert a.ok("PUT", f"/cluster/{other.name}/invite",
                            json={"timeout": 15000}) is None
        for m in members:
            wait_until(lambda m=m: _statuses(m.proc) == dict.fromkeys(names, "running"),
                       timeout=30, what=f"{m.name} sees three running nodes")
        yield members
    finally:
        for m in members:
            m.close_clients()
            m.api.close()
            m.proc.stop()


# -- helpers -------------------------------------------------------------------------------

def _payloads(c: MqttClient) -> list[bytes]:
    """What `c` received so far, probes left out."""
    return [m.payload for m in c.drain() if m.payload != PROBE]


def _route(pub: MqttClient, subs: list[MqttClient], topic: str, timeout: float = 20) -> None:
    """Publish probes on `topic` from `pub` until each of `subs` has received one: their
    subscriptions are then known on `pub`'s node. (What else they received meanwhile is
    dropped: call it before the messages a test counts.)"""
    got = [False] * len(subs)

    def arrived():
        pub.publish(topic, PROBE, qos=0)
        for i, s in enumerate(subs):
            try:
                while not got[i]:
                    got[i] = s.messages.get(timeout=0.2).payload == PROBE
            except queue.Empty:
                pass
        return all(got)
    wait_until(arrived, timeout=timeout, what=f"probes on {topic} reach every subscriber")


def _take(c: MqttClient, n: int) -> list:
    """The next `n` messages `c` receives, probes left out."""
    out = []
    while len(out) < n:
        m = c.get()
        if m.payload != PROBE:
            out.append(m)
    return out


def _retained_on(node: Member, topic: str):
    c = node.mqtt(uid("rs"))
    c.subscribe(topic, 1)
    try:
        return c.get(timeout=0.5)
    except AssertionError:
        return None
    finally:
        c.close()


# -- clients -------------------------------------------------------------------------------

def test_qos_0_1_2_both_ways_with_wildcards_and_mqtt5_properties(trio):
    a, b, c = trio
    p = uid("t3")
    on_a, on_c = a.mqtt(), c.mqtt()
    assert on_a.subscribe(f"{p}/+/x", 2) == [2]
    assert on_c.subscribe(f"{p}/#", 2) == [2]
    pub_a, pub_c = a.mqtt(), c.mqtt()
    _route(pub_c, [on_a], f"{p}/probe/x")
    _route(pub_a, [on_c], f"{p}/probe/x")
    sent = props(UserProperty=[("k", "v1"), ("k", "v2"), ("origin", "x")],
                 ContentType="text/plain", ResponseTopic=f"{p}/reply",
                 CorrelationData=b"\x00\x01\xff", PayloadFormatIndicator=1,
                 MessageExpiryInterval=300)
    for qos in (0, 1, 2):
        pub_c.publish(f"{p}/c{qos}/x", f"from c at {qos}", qos=qos, properties=sent)
        pub_a.publish(f"{p}/a{qos}/x", f"from a at {qos}", qos=qos, properties=sent)
    for sub, origin in ((on_a, "c"), (on_c, "a")):
        got = {m.topic: m for m in _take(sub, 6)}  # its own node's three and the other's
        for qos in (0, 1, 2):
            m = got[f"{p}/{origin}{qos}/x"]
            assert (m.payload, m.qos) == (f"from {origin} at {qos}".encode(), qos)
            mp = m.properties
            assert mp.UserProperty == [("k", "v1"), ("k", "v2"), ("origin", "x")]
            assert (mp.ContentType, mp.ResponseTopic, mp.CorrelationData,
                    mp.PayloadFormatIndicator) == ("text/plain", f"{p}/reply",
                                                   b"\x00\x01\xff", 1)
            assert 290 <= mp.MessageExpiryInterval <= 300
    on_a.expect_none()
    on_c.expect_none()
    # mosquitto_sub on b gets mosquitto_pub's QoS 2 message from c, properties intact
    sub = subprocess.Popen(["mosquitto_sub", "-h", b.host, "-p", str(b.port), "-V", "5",
                            "-q", "2", "-t", f"{p}/m/#", "-W", "60",
                            "-F", "%t|%q|%P|%p"], stdout=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in sub.stdout], daemon=True).start()
    try:
        def probed():
            pub_c.publish(f"{p}/m/probe", PROBE)
            try:
                return lines.get(timeout=0.2).endswith("|probe\n")
            except queue.Empty:
                return False
        wait_until(probed, timeout=20, what="mosquitto_sub's subscription known on c")
        subprocess.run(["mosquitto_pub", "-h", c.host, "-p", str(c.port), "-V", "5", "-q", "2",
                        "-t", f"{p}/m/q2", "-m", "from mosquitto", "-D", "publish",
                        "user-property", "via", "mosquitto"], check=True, timeout=30)
        while True:
            line = lines.get(timeout=10)
            if not line.endswith("|probe\n"):
                break
        assert line == f"{p}/m/q2|2|via:mosquitto|from mosquitto\n"
    finally:
        sub.terminate()
        sub.wait(10)


def test_a_shared_subscription_across_three_nodes_gets_each_message_once(trio):
    a, b, c = trio
    p = uid("sh")
    members = [n.mqtt() for n in trio]
    for m in members:
        assert m.subscribe(f"$share/g3/{p}/+", 1) == [1]
    pub = b.mqtt()
    # round robin over the nodes: once every member got a probe, b knows all three
    got = [False] * 3

    def all_members():
        pub.publish(f"{p}/probe", PROBE, qos=1)
        for i, m in enumerate(members):
            got[i] = got[i] or any(x.payload == PROBE for x in m.drain())
        return all(got)
    wait_until(all_members, timeout=20, what="b routes to the group's members on every node")
    for n in range(30):
        pub.publish(f"{p}/n", str(n), qos=1)
    received: list[list[int]] = [[], [], []]

    def all_arrived():
        for i, m in enumerate(members):
            received[i] += [int(x) for x in _payloads(m)]
        return sum(map(len, received)) >= 30
    wait_until(all_arrived, timeout=20, what="the 30 shared messages")
    listen_until = time.monotonic() + QUIET  # for a duplicate, which would come right behind
    while time.monotonic() < listen_until:
        all_arrived()
        time.sleep(0.05)
    assert sorted(sum(received, [])) == list(range(30))  # each message exactly once
    assert all(received), received  # and every node's member had its share


def test_retained_on_node_1_reaches_a_new_subscriber_on_node_3(trio):
    a, b, c = trio
    topic = f"{uid('ret')}/kept"
    a.mqtt().publish(topic, b"kept", qos=1, retain=True)
    m = wait_until(lambda: _retained_on(c, topic), timeout=20, what="the retained message on c")
    assert (m.payload, m.retain) == (b"kept", True)


def test_a_client_id_taken_over_on_node_2_keeps_its_session(trio):
    a, b, c = trio
    cid, topic = uid("tk"), f"{uid('tk')}/q"
    session = props("CONNECT", SessionExpiryInterval=300)
    first = a.mqtt(cid, clean=False, expiry=300)
    assert first.connack_rc == 0 and first.subscribe(topic, 1) == [1]
    pub = c.mqtt()
    _route(pub, [first], topic)
    first.disconnect()
    wait_until(lambda: not a.ok("GET", f"/clients/{cid}")["connected"],
               what="the session offline on a")
    for n in range(3):
        pub.publish(topic, f"queued {n}", qos=1)

    def queued_on_a() -> int:
        rows = c.ok("GET", f"/clients/{cid}/mqueue_messages", params={"payload": "plain"})
        return sum(r["payload"] != "probe" for r in rows["data"])
    wait_until(lambda: queued_on_a() == 3, what="three messages queued on a")
    # the client comes back on b: the session moves, with its queue, before the CONNACK
    second = MqttClient(b.host, b.port, cid, clean=False)
    b.clients.append(second)
    second.connect(properties=session)
    assert second.session_present is True
    back = _take(second, 3)
    assert [(m.payload, m.qos) for m in back] == [(b"queued 0", 1), (b"queued 1", 1),
                                                  (b"queued 2", 1)]
    assert b.ok("GET", f"/clients/{cid}")["node"] == b.name
    wait_until(lambda: a.ok("GET", f"/clients/{cid}/inflight_messages")["data"] == [],
               what="b has the PUBACKs")  # (else the next node rightly sends them again)
    # and a live connection is taken over too: the old one is told 0x8E (session taken over)
    third = MqttClient(c.host, c.port, cid, clean=False)
    c.clients.append(third)
    third.connect(properties=session)
    assert third.session_present is True
    assert second.wait_disconnected() == 0x8E
    pub.publish(topic, b"after", qos=1)
    assert [m.payload for m in _take(third, 1)] == [b"after"]


# -- the management API ----------------------------------------------------------------------

def _connack(node: Member, cid: str) -> int:
    c = MqttClient(node.host, node.port, cid)
    c.connect(expect_rc=None)
    c.close()
    return c.connack_rc


def _curl_login(node: Member, username: str, password: str) -> int:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
         "-H", "Content-Type: application/json",
         "-d", f'{{"username": "{username}", "password": "{password}"}}',
         f"http://127.0.0.1:{node.proc.http_port}/api/v5/login"],
        capture_output=True, text=True, timeout=30, check=True)
    return int(out.stdout)


def test_the_management_api_answers_for_the_whole_cluster_from_every_node(trio):
    a, b, c = trio
    tag = uid("api")
    conns = {m.name: m.mqtt(f"{tag}-{i}") for i, m in enumerate(trio)}
    topic_of = {name: f"{tag}/t{i}" for i, name in enumerate(conns)}
    for name, cl in conns.items():
        assert cl.subscribe(topic_of[name], 1) == [1]
    where = {cl.client_id: name for name, cl in conns.items()}
    for m in trio:
        nodes = m.ok("GET", "/nodes")
        assert sorted((n["node"], n["node_status"]) for n in nodes) == \
            sorted((x.name, "running") for x in trio)
        rows = m.ok("GET", "/clients", params={"like_clientid": tag, "limit": 100})["data"]
        assert {r["clientid"]: r["node"] for r in rows} == where
        rows = m.ok("GET", "/subscriptions", params={"limit": 1000})["data"]
        assert {(r["clientid"], r["topic"], r["node"]) for r in rows
                if r["topic"].startswith(tag)} == \
            {(cl.client_id, topic_of[name], name) for name, cl in conns.items()}
        rows = m.ok("GET", "/topics", params={"limit": 1000})["data"]
        assert {(r["topic"], r["node"]) for r in rows if r["topic"].startswith(tag)} == \
            {(t, name) for name, t in topic_of.items()}

    # /stats?aggregate=true is the sum of the per-node stats
    def summed() -> bool:
        per_node = a.ok("GET", "/stats")
        total = a.ok("GET", "/stats", params={"aggregate": "true"})
        assert sorted(s["node"] for s in per_node) == sorted(x.name for x in trio)
        assert all(s["connections.count"] >= 1 for s in per_node)
        return all(total[k] == sum(s[k] for s in per_node)
                   for k in ("connections.count", "live_connections.count",
                             "subscriptions.count", "sessions.count"))
    wait_until(summed, what="aggregated stats equal to the sum of the nodes'")
    # /publish on c reaches the subscriber on a
    _route(c.mqtt(), [conns[a.name]], topic_of[a.name])
    c.ok("POST", "/publish", json={"topic": topic_of[a.name], "payload": "via api", "qos": 1})
    assert [m.payload for m in _take(conns[a.name], 1)] == [b"via api"]
    # a client on c kicked through a's API
    kicked = conns[c.name]
    assert a.api.delete(f"/clients/{kicked.client_id}").status_code == 204
    assert kicked.wait_disconnected() == 0x98  # administrative action
    wait_until(lambda: b.api.get(f"/clients/{kicked.client_id}").status_code == 404,
               what="the kicked client gone from every node's view")
    # a ban made on b refuses the client id on c
    banned = uid("ban")
    b.ok("POST", "/banned", json={"as": "clientid", "who": banned})
    wait_until(lambda: _connack(c, banned) == 0x8A, timeout=20, what="c refuses b's ban")
    # an API key and a dashboard user made on a work on c
    key = a.ok("POST", "/api_key", json={"name": uid("key")})
    wait_until(lambda: httpx.get(f"http://127.0.0.1:{c.proc.http_port}/api/v5/nodes",
                                 auth=(key["api_key"], key["api_secret"])).status_code == 200,
               timeout=20, what="a's API key accepted on c")
    user = uid("user").replace("-", "_")
    a.ok("POST", "/users", json={"username": user, "password": "t3st-Passw0rd",
                                 "description": "made on a"})
    wait_until(lambda: _curl_login(c, user, "t3st-Passw0rd") == 200, timeout=20,
               what="a's dashboard user logs in on c")
    assert _curl_login(c, user, "wrong-Passw0rd") == 401


# -- the loss of a node ----------------------------------------------------------------------

def test_the_kill_of_a_node_loses_no_qos1_message_and_it_comes_back(trio):
    a, b, c = trio
    topic = f"{uid('run')}/n"
    on_b = b.mqtt()
    on_c = c.mqtt(uid("moving"), clean=False, expiry=300)  # a session kept on c's disk
    for s in (on_b, on_c):
        assert s.subscribe(topic, 1) == [1]
    pub = a.mqtt()
    _route(pub, [on_b, on_c], topic)
    # a numbered QoS 1 run from a to b, with c killed in the middle of it
    total, published, errors = 300, [], []

    def run():
        try:
            for n in range(total):
                pub.publish(topic, str(n), qos=1)
                published.append(n)
        except BaseException as e:  # (reported by the test's thread below)
            errors.append(e)
    runner = threading.Thread(target=run)
    runner.start()
    wait_until(lambda: len(published) >= total // 3 or errors, what="a third of the run")
    c.proc.proc.send_signal(signal.SIGKILL)
    c.proc.proc.wait(10)
    c.proc.proc = None
    killed_at = time.monotonic()
    runner.join(60)
    assert not errors and len(published) == total
    got: set[int] = set()

    def all_on_b():
        got.update(int(x) for x in _payloads(on_b))
        return len(got) == total
    wait_until(all_on_b, what="the whole numbered run on b")
    # c's client notices and reconnects to b (its session is on c's disk, out of reach), where
    # messages from a reach it
    on_c.wait_disconnected()
    moved = b.mqtt(on_c.client_id, clean=False, expiry=300)
    assert (moved.connack_rc, moved.session_present) == (0, False)
    assert moved.subscribe(topic, 1) == [1]
    _route(pub, [moved], topic)
    # the other two see c stopped within 30 s of its death
    for m in (a, b):
        wait_until(lambda m=m: _statuses(m.proc).get(c.name) == "stopped",
                   timeout=max(1.0, killed_at + 30 - time.monotonic()),
                   what=f"{m.name} sees {c.name} stopped")
    assert _statuses(a.proc).get(b.name) == "running"
    # changes made while c is down: a ban, a retained message
    banned = uid("ban")
    a.ok("POST", "/banned", json={"as": "clientid", "who": banned})
    wait_until(lambda: _connack(b, banned) == 0x8A, what="b refuses a's ban")
    retained = f"{topic}/retained"
    pub.publish(retained, b"while c was down", qos=1, retain=True)
    # c restarts on its data dir: it rejoins, routes again and has what changed meanwhile
    c.proc.start()
    # (usually at once: a node catches up before it opens its listeners, unless JetStream is
    # slow to answer, test_replica.py checks that wait)
    wait_until(lambda: _connack(c, banned) == 0x8A, what="c refuses the client banned on a")
    for m in trio:
        wait_until(lambda m=m: set(_statuses(m.proc).values()) == {"running"}
                   and len(_statuses(m.proc)) == 3, timeout=30,
                   what=f"{m.name} sees three running nodes again")
    m = wait_until(lambda: _retained_on(c, retained), what="the retained message on c")
    assert m.payload == b"while c was down"
    # the client that moved is on b only: c gave the session it restored from disk to b
    for m in trio:
        rows = m.ok("GET", "/clients", params={"clientid": moved.client_id})["data"]
        assert [(r["node"], r["connected"]) for r in rows] == [(b.name, True)], m.name
    back = c.mqtt()
    assert back.subscribe(topic, 1) == [1]
    _route(pub, [back], topic)  # a -> c
    on_a = a.mqtt()
    assert on_a.subscribe(f"{topic}/from_c", 1) == [1]
    _route(c.mqtt(), [on_a], f"{topic}/from_c")  # c -> a
