"""Listeners API against a real broker: runtime start/stop/create/update/delete of MQTT
listeners, per-listener limits, and persistence across a restart."""
from __future__ import annotations

import socket

import pytest

from support.mqttclient import MqttClient, uid
from support.rawmqtt import RawClient
from support.servers import free_port

pytestmark = pytest.mark.emqpy_only


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 2).close()
    except ConnectionRefusedError:
        return True
    return False


def _create(env, name: str, **conf) -> tuple[int, dict]:
    """POST a tcp listener on a free loopback port: (its port, the view returned)."""
    port = free_port()
    r = env.api.post("/listeners", json={"type": "tcp", "name": name,
                                          "bind": f"127.0.0.1:{port}", **conf})
    assert r.status_code == 200, r.text
    return port, r.json()


def test_list_get_and_status_shapes(env):
    c = MqttClient("127.0.0.1", env.port).connect()
    try:
        items = env.api.get("/listeners", params={"type": "tcp"}).json()
        assert [i["id"] for i in items] == ["tcp:default"]
        d = items[0]
        assert d["name"] == "default" and d["type"] == "tcp" and d["enable"] is True
        assert d["status"] == {"running": True, "max_connections": "infinity",
                               "current_connections": 1}
        assert d["node_status"] == [{"node": env.broker.node_name, "status": d["status"]}]
        assert all(i["type"] == "ssl"
                   for i in env.api.get("/listeners", params={"type": "ssl"}).json())
        assert env.api.get("/listeners", params={"type": "bogus"}).status_code == 400

        one = env.api.get("/listeners/tcp:default").json()
        assert one["id"] == "tcp:default" and one["type"] == "tcp"
        assert one["running"] is True and one["current_connections"] == 1
        assert one["bind"] == "127.0.0.1:0" and "tcp_options" in one

        st = {s["type"]: s for s in env.api.get("/listeners_status").json()}
        assert st["tcp"]["ids"] == ["tcp:default"]
        assert st["tcp"]["status"]["current_connections"] == 1
    finally:
        c.disconnect()


def test_bad_and_unknown_ids(env):
    r = env.api.get("/listeners/tcp:nope")
    assert (r.status_code, r.json()["code"]) == (404, "BAD_LISTENER_ID")
    r = env.api.get("/listeners/nocolon")
    assert (r.status_code, r.json()["code"]) == (400, "BAD_LISTENER_ID")
    assert env.api.post("/listeners/tcp:nope/stop").status_code == 404
    assert env.api.delete("/listeners/tcp:nope").status_code == 404


def test_create_listener_and_connect(env):
    port, view = _create(env, "extra", max_connections=100)
    assert view["id"] == "tcp:extra" and view["running"] is True
    assert view["max_connections"] == 100
    c = MqttClient("127.0.0.1", port).connect()
    assert env.api.get("/listeners/tcp:extra").json()["current_connections"] == 1
    c.disconnect()

    r = env.api.post("/listeners", json={"type": "tcp", "name": "extra",
                                          "bind": f"127.0.0.1:{free_port()}"})
    assert (r.status_code, r.json()["code"]) == (400, "BAD_LISTENER_ID")
    r = env.api.post("/listeners", json={"type": "tcp", "name": "bad name",
                                          "bind": f"127.0.0.1:{free_port()}"})
    assert (r.status_code, r.json()["code"]) == (400, "BAD_REQUEST")
    r = env.api.post("/listeners", json={"type": "tcp", "name": "nobind"})
    assert (r.status_code, r.json()["code"]) == (400, "BAD_REQUEST")
    r = env.api.post("/listeners", json={"type": "tcp", "name": "bad",
                                          "bind": "127.0.0.1:1", "max_connections": 0})
    assert r.status_code == 400 and "max_connections" in r.json()["message"]
    # A busy port: refused, and nothing is kept in the config.
    r = env.api.post("/listeners", json={"type": "tcp", "name": "busy",
                                          "bind": f"127.0.0.1:{port}"})
    assert (r.status_code, r.json()["code"]) == (400, "BAD_REQUEST")
    assert env.api.get("/listeners/tcp:busy").status_code == 404


def test_stop_drops_only_that_listeners_clients(env):
    port, _ = _create(env, "second")
    stay = MqttClient("127.0.0.1", env.port, uid("stay")).connect()
    gone = MqttClient("127.0.0.1", port, uid("gone")).connect()
    try:
        assert env.api.post("/listeners/tcp:second/stop").status_code == 200
        gone.wait_disconnected()
        assert _refused(port)
        view = env.api.get("/listeners/tcp:second").json()
        assert view["running"] is False and view["enable"] is False
        # The client on the other listener is still served.
        stay.subscribe("ls/t", 1)
        stay.publish("ls/t", b"still here", 1)
        assert stay.get().payload == b"still here"

        assert env.api.post("/listeners/tcp:second/start").status_code == 200
        again = MqttClient("127.0.0.1", port).connect()
        again.disconnect()
        assert env.api.get("/listeners/tcp:second").json()["enable"] is True

        assert env.api.post("/listeners/tcp:second/restart").status_code == 200
        MqttClient("127.0.0.1", port).connect().disconnect()
    finally:
        stay.disconnect()


def test_update_max_connections_and_mountpoint(env):
    port, _ = _create(env, "limited")
    first = MqttClient("127.0.0.1", port).connect()
    r = env.api.put("/listeners/tcp:limited", json={"type": "tcp", "max_connections": 1,
                                                     "mountpoint": "mp/"})
    assert r.status_code == 200, r.text
    assert r.json()["max_connections"] == 1 and r.json()["mountpoint"] == "mp/"
    # A hot change: the connected client stays; the next one is over the limit.
    first.subscribe("x", 0)
    raw = RawClient("127.0.0.1", port)
    raw.send(b"\x10\x0d\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x00")
    raw.expect_close()
    raw.close()
    first.disconnect()

    watcher = MqttClient("127.0.0.1", env.port).connect()
    watcher.subscribe("mp/in", 0)
    mounted = MqttClient("127.0.0.1", port).connect()
    mounted.publish("in", b"mounted", 1)
    msg = watcher.get()
    assert (msg.topic, msg.payload) == ("mp/in", b"mounted")
    mounted.disconnect()
    watcher.disconnect()

    r = env.api.put("/listeners/tcp:limited", json={"type": "tcp", "max_connections": -3})
    assert (r.status_code, r.json()["code"]) == (400, "BAD_REQUEST")
    assert "max_connections" in r.json()["message"]
    r = env.api.put("/listeners/tcp:limited", json={"type": "tcp", "id": "tcp:other"})
    assert (r.status_code, r.json()["code"]) == (400, "BAD_LISTENER_ID")


def test_delete_listener(env):
    port, _ = _create(env, "temp")
    c = MqttClient("127.0.0.1", port).connect()
    assert env.api.delete("/listeners/tcp:temp").status_code == 204
    c.wait_disconnected()
    assert _refused(port)
    assert env.api.get("/listeners/tcp:temp").status_code == 404
    assert "tcp:temp" not in env.broker.listeners


def test_changes_survive_restart(make_broker, tmp_path):
    n = make_broker(data_dir=tmp_path)
    try:
        keep, _ = _create(n, "kept", max_connections=50)
        _create(n, "dropped")
        assert n.api.delete("/listeners/tcp:dropped").status_code == 204
        assert n.api.post("/listeners/tcp:kept/stop").status_code == 200
        assert n.api.post("/listeners/tcp:kept/start").status_code == 200
    finally:
        n.stop()
    n.start()
    try:
        view = n.api.get("/listeners/tcp:kept").json()
        assert view["running"] is True and view["max_connections"] == 50
        assert view["bind"] == f"127.0.0.1:{keep}"
        assert n.api.get("/listeners/tcp:dropped").status_code == 404
        MqttClient("127.0.0.1", keep).connect().disconnect()
    finally:
        n.stop()


def test_unusable_settings_leave_the_listener_as_it_was(env):
    port, _ = _create(env, "steady")
    c = MqttClient("127.0.0.1", port).connect()
    for bad in ({"max_conn_rate": "fast"}, {"bind": "127.0.0.1:1", "max_conn_rate": "fast"}):
        r = env.api.put("/listeners/tcp:steady", json={"type": "tcp", **bad})
        assert (r.status_code, r.json()["code"]) == (400, "BAD_REQUEST"), r.text
    view = env.api.get("/listeners/tcp:steady").json()
    assert view["running"] is True and view["max_conn_rate"] == "infinity"
    assert view["bind"] == f"127.0.0.1:{port}"
    c.subscribe("steady/t", 0)  # the connected client was not dropped
    c.disconnect()
