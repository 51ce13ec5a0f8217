"""Replicated state (emqpy/cluster/replica.py): retained messages, bans, API keys, built-in
authn users, config changes and rules made on one node apply on the others, survive a restart
of a node, and reach a node that was down when they were made."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx

from emqpy.cluster import replica as replica_module

from support.mqttclient import props, uid
from support.waiting import wait_until

BUILTIN = "password_based:built_in_database"
RULES = "/authorization/sources/built_in_database/rules"


def _caught_up(*nodes) -> None:
    wait_until(lambda: all(n.broker.cluster is not None and
                           n.broker.cluster.replica.caught_up.is_set() for n in nodes),
               timeout=20, what="the replicated store followed")


def _retained(node, topic: str, timeout: float = 5.0, **login):
    """Subscribe on `node` and return the retained message's payload (None: none came)."""
    c = node.mqtt(uid("rs"), **login)
    c.subscribe(topic, 1)
    try:
        return c.get(timeout=timeout).payload
    except AssertionError:
        return None
    finally:
        c.close()


def _key_works(node, key: dict) -> bool:
    r = httpx.get(node.api_url + "/nodes", auth=(key["api_key"], key["api_secret"]), timeout=10)
    return r.status_code == 200


def _login(node, username: str, password: str) -> int:
    with node.client() as c:
        return c.post("/api/v5/login", json={"username": username,
                                             "password": password}).status_code


def test_changes_on_one_node_apply_on_the_other_and_survive_its_restart(cluster):
    a, b = cluster(2)
    _caught_up(a, b)
    topic = f"rs/{uid()}"
    # retained message published on a
    pub = a.mqtt(uid("pub"))
    pub.publish(topic, b"kept", qos=1, retain=True)
    wait_until(lambda: b.broker.retainer.lookup(topic), what="the retained message on b")
    assert _retained(b, topic) == b"kept"
    # ban made through a's API refuses the client on b
    banned = uid("bad")
    a.ok("POST", "/banned", json={"as": "clientid", "who": banned}, status=200)
    wait_until(lambda: b.connack(banned) == 0x8A, what="b refuses the banned client")
    # API key created on a works on b (same secret: the row is replicated, not re-created)
    key = a.new_key(uid("k"))
    wait_until(lambda: _key_works(b, key), what="a's API key on b")
    # built-in authn: the authenticator and a user added on a authenticate on b
    a.ok("POST", "/authentication", json={"mechanism": "password_based",
                                          "backend": "built_in_database",
                                          "user_id_type": "username"})
    a.ok("POST", f"/authentication/{BUILTIN}/users", status=201,
         json={"user_id": "alice", "password": "s3cret", "is_superuser": False})
    wait_until(lambda: b.api.get(f"/authentication/{BUILTIN}/users/alice").status_code == 200,
               what="alice on b")
    assert b.connack(uid("al"), username="alice", password="s3cret") == 0
    assert b.connack(uid("al"), username="alice", password="wrong") == 0x86
    # authz: the built-in database source and its rules for alice
    a.ok("POST", "/authorization/sources", status=204, json={"type": "built_in_database"})
    a.ok("POST", f"{RULES}/users", status=204, json=[{"username": "alice", "rules": [
        {"topic": "alice/#", "permission": "allow", "action": "all"}]}])
    wait_until(lambda: b.api.get(f"{RULES}/users/alice").status_code == 200,
               what="alice's authz rules on b")
    assert b.get(f"{RULES}/users/alice")["rules"][0]["topic"] == "alice/#"
    # a dashboard user added on a logs in on b, with the password changed on a
    a.ok("POST", "/users", json={"username": "carol", "password": "first-Pass1"})
    wait_until(lambda: b.api.get("/users").status_code == 200 and
               any(u["username"] == "carol" for u in b.get("/users")), what="carol on b")
    a.ok("POST", "/users/carol/change_pwd", status=204,
         json={"old_pwd": "first-Pass1", "new_pwd": "second-Pass2"})
    wait_until(lambda: _login(b, "carol", "second-Pass2") == 200, what="carol's new password")
    assert _login(b, "carol", "first-Pass1") == 401
    # a config change and a rule without an id (a picks the id, b gets the same one)
    a.ok("PUT", "/configs/global_zone", json={"mqtt": {"max_packet_size": "512KB"}})
    rule = a.ok("POST", "/rules", status=201,
                json={"sql": 'SELECT * FROM "rs/#"', "actions": []})
    wait_until(lambda: b.broker.config.mqtt.max_packet_size == 512 * 1024,
               what="b's max_packet_size")
    wait_until(lambda: b.api.get(f"/rules/{rule['id']}").status_code == 200, what="the rule on b")
    # a deleted ban lets the client in on b again (with alice's credentials: authn is on now)
    a.ok("DELETE", f"/banned/clientid/{banned}", status=204)
    wait_until(lambda: b.connack(banned, username="alice", password="s3cret") == 0,
               what="b lets the unbanned client in")

    b.restart()
    _caught_up(b)
    assert b.broker.config.mqtt.max_packet_size == 512 * 1024
    assert b.get(f"/rules/{rule['id']}")["sql"] == 'SELECT * FROM "rs/#"'
    assert _retained(b, topic, username="alice", password="s3cret") == b"kept"
    assert _key_works(b, key)
    assert b.connack(uid("al"), username="alice", password="s3cret") == 0
    # clearing the retained messages on a clears them on b
    a.ok("DELETE", "/mqtt/retainer/messages", status=204)
    wait_until(lambda: not b.broker.retainer.lookup(topic), what="b's retained messages cleared")
    # passwords travel as their hashes: none is in the replicated log's files
    for path in (a.data_dir / "nats").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"s3cret" not in data and b"second-Pass2" not in data, path


def test_a_node_down_during_changes_catches_up_when_it_returns(cluster):
    """Two nodes: with b down JetStream has no quorum, so a keeps the changes until b is back
    (and keeps them across its own restart meanwhile); b then replays them."""
    a, b = cluster(2)
    _caught_up(a, b)
    b.stop()
    topic = f"rs/{uid()}"
    banned = uid("bad")
    pub = a.mqtt(uid("pub"))
    pub.publish(topic, b"while-down", qos=1, retain=True)
    a.ok("POST", "/banned", json={"as": "clientid", "who": banned}, status=200)
    a.ok("PUT", "/configs/global_zone", json={"mqtt": {"max_topic_levels": 42}})
    a.restart()  # with no quorum, the changes wait on a: they must survive its restart
    b.start()
    _caught_up(b)
    wait_until(lambda: b.broker.config.mqtt.max_topic_levels == 42, timeout=20,
               what="b caught up with the config change")
    wait_until(lambda: b.connack(banned) == 0x8A, what="b refuses the client banned meanwhile")
    wait_until(lambda: b.broker.retainer.lookup(topic), timeout=20,
               what="the retained message published meanwhile")
    assert _retained(b, topic) == b"while-down"
    # and changes made on the returned node reach the other one
    b.ok("POST", "/banned", json={"as": "username", "who": "mallory"}, status=200)
    wait_until(lambda: a.connack(uid("m"), username="mallory", password="x") == 0x8A,
               what="a refuses the user banned on b")


def test_concurrent_changes_of_one_setting_end_the_same_on_every_node(cluster):
    a, b = cluster(2)
    _caught_up(a, b)

    def put(node, value):
        node.ok("PUT", "/configs/global_zone", json={"mqtt": {"max_topic_levels": value}})

    with ThreadPoolExecutor(2) as pool:
        for i in range(5):  # each round both nodes change it at the same moment
            list(pool.map(put, (a, b), (100 + i, 200 + i)))

    def levels():
        return (a.broker.config.mqtt.max_topic_levels, b.broker.config.mqtt.max_topic_levels)
    # every change is in the log and both nodes applied all of it
    wait_until(lambda: a.broker.cluster.replica._outbox.empty() and
               b.broker.cluster.replica._outbox.empty() and
               a.broker.cluster.replica.applied == b.broker.cluster.replica.applied ==
               _last_seq(a) == 10, timeout=20, what="both nodes applied the whole log")
    assert levels()[0] == levels()[1]
    assert levels()[0] in (104, 204)


def _last_seq(node) -> int:
    replica = node.broker.cluster.replica
    return node.call(lambda: replica.js.stream_info(replica.stream)).state.last_seq


def _stored_imports(node) -> list[str]:
    from nats.js.errors import NotFoundError
    files = node.broker.cluster.replica.files

    async def names():
        try:
            return [info.name for info in await files.list(ignore_deletes=True)]
        except NotFoundError:  # empty
            return []
    return node.call(names)


def test_three_nodes_keep_the_log_with_one_down_and_it_replays_what_it_missed(
        cluster, monkeypatch, caplog):
    a, b, c = cluster(3)
    _caught_up(a, b, c)
    assert a.broker.cluster.replica.replicas == 3
    c.stop()
    banned = uid("bad")
    b.ok("POST", "/banned", json={"as": "clientid", "who": banned}, status=200)
    # two of three servers are a quorum: the change is in the log before c returns
    wait_until(lambda: a.broker.cluster.replica.applied == _last_seq(a) > 0 and
               b.broker.cluster.replica._outbox.empty(), what="the ban in the log")
    wait_until(lambda: a.connack(banned) == 0x8A, what="a refuses the client banned on b")
    # the object store keeps the newest imported backups only (here one, with no grace
    # time): of two imports made while c is down, c finds the first gone, says so, and
    # imports the second
    monkeypatch.setattr(replica_module, "IMPORTS_KEPT", 1)
    monkeypatch.setattr(replica_module, "IMPORT_GRACE", 0.0)
    backups = []
    for levels in (71, 72):
        a.ok("PUT", "/configs/global_zone", json={"mqtt": {"max_topic_levels": levels}})
        backups.append(a.ok("POST", "/data/export")["filename"])
    a.ok("PUT", "/configs/global_zone", json={"mqtt": {"max_topic_levels": 70}})
    for backup, levels in zip(backups, (71, 72)):
        a.ok("POST", "/data/import", status=204, json={"filename": backup})
        wait_until(lambda: b.broker.config.mqtt.max_topic_levels == levels,
                   what=f"{backup} imported on b")
    wait_until(lambda: len(_stored_imports(a)) == 1, what="the first import pruned")
    c.start()
    # its MQTT listeners opened once it had replayed what it missed (as EMQX's wait for its
    # tables): the first client it accepts is already checked against the ban
    assert c.broker.cluster.replica.caught_up.is_set()
    assert c.connack(banned) == 0x8A
    assert c.broker.config.mqtt.max_topic_levels == 72
    assert [r.getMessage() for r in caplog.records if "no longer in the replicated store"
            in r.getMessage()] == [f"cluster: {backups[0]}, imported on {a.name}, is no longer "
                                   "in the replicated store (it keeps the newest 1 imports): "
                                   "not imported on this node"]
    # a log created while the cluster was smaller is spread again as it grows
    replica = a.broker.cluster.replica

    async def shrink_then_grow():
        info = await replica.js.stream_info(replica.stream)
        info.config.num_replicas = 1
        await replica.js.update_stream(info.config)
        await replica.ensure_replicas(len(a.broker.cluster.running_nodes()))
        return (await replica.js.stream_info(replica.stream)).config.num_replicas
    assert a.call(shrink_then_grow, timeout=20) == 3


def _token_works(node, token: str) -> bool:
    with node.client(headers={"Authorization": "Bearer " + token}) as c:
        return c.get("/api/v5/nodes").status_code == 200


def test_login_tokens_work_on_every_node_and_logout_ends_them_everywhere(cluster):
    a, b = cluster(2)
    _caught_up(a, b)
    token = a.token()
    wait_until(lambda: _token_works(b, token), what="a's token accepted by b")
    with b.client(headers={"Authorization": "Bearer " + token}) as c:
        assert c.post("/api/v5/logout", json={"username": "admin"}).status_code == 204
    wait_until(lambda: not _token_works(a, token), what="the logout on b ends the token on a")
    assert not _token_works(b, token)
    # what travels is the token's hash: a node that never saw the row refuses it, and the
    # log's files hold neither the token nor its signature
    other = b.token()
    wait_until(lambda: _token_works(a, other), what="b's token accepted by a")
    for path in (a.data_dir / "nats").rglob("*"):
        if path.is_file():
            assert other.encode() not in path.read_bytes(), path
    # a password changed on one node ends the user's sessions on every node
    a.ok("POST", "/users", json={"username": "dave", "password": "first-Pass1"})
    wait_until(lambda: _login(b, "dave", "first-Pass1") == 200, what="dave on b")
    dave = b.token("dave", "first-Pass1")
    wait_until(lambda: _token_works(a, dave), what="dave's token on a")
    a.ok("POST", "/users/dave/change_pwd", status=204,
         json={"old_pwd": "first-Pass1", "new_pwd": "second-Pass2"})
    wait_until(lambda: not _token_works(b, dave), what="dave's token ended on b")
    assert not _token_works(a, dave)


def _ctl(node, *args: str) -> subprocess.CompletedProcess:
    """`emqpy ctl` as its own process against a node of the cluster."""
    env = {**os.environ, "EMQX_NODE__NAME": node.name,
           "EMQX_DASHBOARD__LISTENERS__HTTP__BIND": f"127.0.0.1:{node.http_port}"}
    return subprocess.run([sys.executable, "-m", "emqpy", "ctl", "--data-dir",
                           str(node.data_dir), *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_data_import_and_ctl_changes_apply_on_every_node(cluster):
    """As in EMQX 5.8, importing a backup on one node imports it into the cluster; `emqpy ctl`
    changes of replicated state (admins, banned) reach every node, and only those."""
    a, b = cluster(2)
    _caught_up(a, b)
    banned, topic = uid("bad"), f"rs/{uid()}"
    a.ok("POST", "/banned", json={"as": "clientid", "who": banned}, status=200)
    a.mqtt(uid("pub")).publish(topic, b"in-backup", qos=1, retain=True)
    a.ok("PUT", "/configs/global_zone", json={"mqtt": {"max_topic_levels": 77}})
    wait_until(lambda: b.connack(banned) == 0x8A and b.broker.retainer.lookup(topic),
               what="the state on b")
    backup = a.ok("POST", "/data/export")["filename"]
    # undone on both nodes, then the import on a brings it back on both
    a.ok("DELETE", f"/banned/clientid/{banned}", status=204)
    a.ok("PUT", "/configs/global_zone", json={"mqtt": {"max_topic_levels": 128}})
    a.ok("DELETE", "/mqtt/retainer/messages", status=204)
    wait_until(lambda: b.connack(banned) == 0 and not b.broker.retainer.lookup(topic) and
               b.broker.config.mqtt.max_topic_levels == 128, what="the undo on b")
    a.ok("POST", "/data/import", status=204, json={"filename": backup})
    wait_until(lambda: b.connack(banned) == 0x8A, what="the imported ban on b")
    wait_until(lambda: b.broker.config.mqtt.max_topic_levels == 77,
               what="the imported config on b")
    wait_until(lambda: b.broker.retainer.lookup(topic), what="the imported retained message")
    assert not (b.data_dir / "backup" / backup).exists()  # data, not the file
    # ctl: a dashboard user added and its password reset on a log in on b; deleted on both
    r = _ctl(a, "admins", "add", "erin", "first-Pass1", "by ctl")
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
    wait_until(lambda: _login(b, "erin", "first-Pass1") == 200, what="erin on b")
    assert _ctl(a, "admins", "passwd", "erin", "second-Pass2").returncode == 0
    wait_until(lambda: _login(b, "erin", "second-Pass2") == 200, what="erin's new password")
    r = _ctl(b, "admins", "del", "erin")
    assert r.returncode == 0, r.stderr
    wait_until(lambda: _login(a, "erin", "second-Pass2") == 401, what="erin gone from a")
    r = _ctl(b, "admins", "del", "erin")
    assert (r.returncode, r.stderr) == (1, "Error: User not found\n")
    # ctl banned goes through the API: on both nodes
    assert _ctl(b, "banned", "add", "clientid", "ctl-bad").returncode == 0
    wait_until(lambda: a.connack("ctl-bad") == 0x8A, what="the ctl ban on a")
    # a ctl import on b reaches a too (the file given by its path)
    a.ok("PUT", "/configs/global_zone", json={"mqtt": {"max_topic_levels": 100}})
    wait_until(lambda: b.broker.config.mqtt.max_topic_levels == 100, what="100 on b")
    r = _ctl(b, "data", "import", str(a.data_dir / "backup" / backup))
    assert "Data has been imported successfully" in r.stdout, r.stdout + r.stderr
    wait_until(lambda: a.broker.config.mqtt.max_topic_levels == 77, what="ctl import on a")
    # a ctl command acting on one node stays there: a listener stopped on b runs on a
    assert _ctl(b, "listeners", "stop", "tcp:default").returncode == 0
    a.ok("PUT", "/configs/global_zone", json={"mqtt": {"max_topic_levels": 99}})
    wait_until(lambda: b.broker.config.mqtt.max_topic_levels == 99, what="the log went on")
    assert a.connack(uid("up")) == 0


def _in_bucket(node, topic: str) -> bool:
    from nats.js.errors import KeyNotFoundError
    from emqpy.cluster.replica import _retained_key
    replica = node.broker.cluster.replica

    async def get():
        try:
            await replica.kv.get(_retained_key(topic))
        except KeyNotFoundError:
            return False
        return True
    return node.call(get)


def test_an_expired_retained_message_leaves_the_bucket(cluster):
    """A retained message with an expiry is kept in the bucket with that TTL: once expired, a
    node starting later cannot restore it from there."""
    a, b = cluster(2)
    _caught_up(a, b)
    short, kept = f"rs/{uid()}", f"rs/{uid()}"
    pub = a.mqtt(uid("pub"))
    pub.publish(short, b"brief", qos=1, retain=True,
                properties=props(MessageExpiryInterval=2))
    pub.publish(kept, b"kept", qos=1, retain=True)
    wait_until(lambda: b.broker.retainer.lookup(short) and b.broker.retainer.lookup(kept),
               what="both messages on b")
    assert _in_bucket(a, short) and _in_bucket(a, kept)
    wait_until(lambda: not _in_bucket(b, short), timeout=10, what="the expired one gone")
    assert _in_bucket(b, kept)
    b.restart()
    _caught_up(b)
    assert _retained(b, short, timeout=1) is None
    assert _retained(b, kept) == b"kept"
