"""`emqpy ctl` as a subprocess against `python -m emqpy start` in another process, talking over
the local HTTP API with the credentials in data_dir/ctl.secret."""
from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys

import httpx
import pytest

from emqpy.dashboard import admin
from emqpy.store import Store
from support.mqttclient import MqttClient, props
from support.process import Proc

pytestmark = pytest.mark.emqpy_only


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    p = Proc(tmp_path_factory.mktemp("ctl-data")).start()
    yield p
    p.stop()


def test_status_and_broker(node):
    assert node.out("status") == "Node 'emqx@127.0.0.1' 5.8.1 is started\n"
    lines = node.out("broker").splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["sysdescr  ", "version   ", "datetime  ",
                                                    "uptime    "]
    assert lines[1] == "version   : 5.8.1"
    assert re.fullmatch(r"datetime  : \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[2])
    stats = node.out("broker", "stats")
    assert re.search(r"^connections\.count\s+: \d+$", stats, re.M)
    metrics = node.out("broker", "metrics")
    assert re.search(r"^messages\.received\s+: \d+$", metrics, re.M)
    r = node.ctl("broker", "bogus")
    assert r.returncode != 0 and "broker stats" in r.stdout


def test_secret_file_is_private(node):
    node.out("status")
    path = os.path.join(node.data_dir, "ctl.secret")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # A stale secret is replaced, and the command still works.
    with open(path, "w") as f:
        f.write("0000000000000000:wrong\n")
    assert "is started" in node.out("status")
    assert open(path).read().strip() != "0000000000000000:wrong"


def test_clients_topics_subscriptions(node):
    c = MqttClient("127.0.0.1", node.mqtt_port, "ctl-c1")
    p = MqttClient("127.0.0.1", node.mqtt_port, "ctl-persist", clean=False)
    c.connect(username="u1")
    try:
        c.subscribe("ctl/a", 1)
        line = node.out("clients", "show", "ctl-c1")
        assert line.startswith("Client(ctl-c1, username=u1, peername=127.0.0.1:")
        assert "clean_start=true, keepalive=60, session_expiry_interval=0, subscriptions=1," \
            in line
        assert "connected=true" in line and re.search(r"connected_at=\d{13}\)$", line.strip())
        assert "Client(ctl-c1," in node.out("clients", "list")
        assert node.out("clients", "show", "nobody") == "Not Found.\n"

        assert "ctl/a -> emqx@127.0.0.1\n" in node.out("topics", "list")
        assert node.out("topics", "show", "ctl/a") == "ctl/a -> emqx@127.0.0.1\n"
        assert "ctl-c1 -> topic:ctl/a qos:1 nl:0 rh:0 rap:0\n" in node.out("subscriptions",
                                                                            "list")
        assert node.out("subscriptions", "add", "ctl-c1", "ctl/b", "2") == "ok\n"
        shown = node.out("subscriptions", "show", "ctl-c1")
        assert "ctl-c1 -> topic:ctl/b qos:2 nl:0 rh:0 rap:0" in shown
        assert node.out("subscriptions", "add", "ctl-c1", "ctl/b", "7") == \
            "QoS should be 0, 1, 2\n"

        assert node.out("clients", "kick", "ctl-c1") == "ok\n"
        c.wait_disconnected()
        assert node.out("clients", "show", "ctl-c1") == "Not Found.\n"
        # One kick for the REST API and ctl (emqpy.mgmt.service): a persistent session does
        # not stay behind offline either, as with EMQX's kick.
        p.connect(clean_start=False, properties=props("CONNECT", SessionExpiryInterval=300))
        assert "session_expiry_interval=300" in node.out("clients", "show", "ctl-persist")
        assert node.out("clients", "kick", "ctl-persist") == "ok\n"
        p.wait_disconnected()
        assert node.out("clients", "show", "ctl-persist") == "Not Found.\n"
    finally:
        c.close()
        p.close()


def test_listeners_list_stop_start(node):
    text = node.out("listeners")
    block = text.split("tcp:default\n", 1)[1]
    assert f"  listen_on       : 127.0.0.1:{node.mqtt_port}\n" in block
    assert "  running         : true\n" in block and "  max_conns       : infinity\n" in block
    watcher = MqttClient("127.0.0.1", node.mqtt_port).connect()
    assert node.out("listeners", "stop", "tcp:default") == \
        "Stop tcp:default listener successfully.\n"
    watcher.wait_disconnected()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", node.mqtt_port), 2)
    assert "  running         : false\n" in node.out("listeners")
    assert node.out("listeners", "start", "tcp:default") == \
        "Started tcp:default listener successfully.\n"
    MqttClient("127.0.0.1", node.mqtt_port).connect().disconnect()
    assert node.out("listeners", "restart", "tcp:default") == \
        "Restarted tcp:default listener successfully.\n"
    assert node.out("listeners", "stop", "tcp:nope") == "Invalid listener: 'tcp:nope'\n"


def test_retainer_and_banned(node):
    pub = MqttClient("127.0.0.1", node.mqtt_port).connect()
    pub.publish("ctl/retained", b"r", 1, retain=True)
    pub.disconnect()
    out = node.out("retainer", "topics")
    assert out.startswith("Number of retained messages: ")
    assert "ctl/retained\n" in out
    assert node.out("retainer", "clean", "ctl/retained") == ""
    assert "ctl/retained" not in node.out("retainer", "topics")

    assert node.out("banned", "add", "clientid", "ctl-bad", "testing") == "ok\n"
    listed = node.out("banned", "list")
    assert "Banned(as=clientid, who=ctl-bad, by=emqpy_ctl, reason=testing," in listed
    assert node.out("banned", "del", "clientid", "ctl-bad") == "ok\n"
    assert "ctl-bad" not in node.out("banned", "list")


def test_usage_and_unknown_command(node):
    r = node.ctl()
    assert r.returncode == 0 and "clients kick <ClientId>" in r.stdout
    r = node.ctl("frobnicate")
    assert r.returncode == 2 and "Command not found" in r.stderr


def test_broker_not_running(tmp_path):
    p = Proc(tmp_path)
    r = p.ctl("status")
    assert r.returncode == 1
    assert r.stderr == "Node 'emqx@127.0.0.1' not responding to pings.\n"


def test_wrong_data_dir_is_explained(node, tmp_path):
    r = subprocess.run([sys.executable, "-m", "emqpy", "ctl", "--data-dir", str(tmp_path),
                        "status"], env=node.env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "refused the ctl credentials" in r.stderr


def test_admins_run_in_the_running_broker_or_else_in_its_database(node, tmp_path):
    def login(password):
        return httpx.post(f"http://127.0.0.1:{node.http_port}/api/v5/login", timeout=30,
                          json={"username": "ctl_admin", "password": password}).status_code
    assert node.out("admins", "add", "ctl_admin", "first-Pass1", "by ctl") == "ok\n"
    assert login("first-Pass1") == 200
    assert node.out("admins", "passwd", "ctl_admin", "second-Pass2") == "ok\n"
    assert login("second-Pass2") == 200
    r = node.ctl("admins", "passwd", "ctl_admin", "weak")
    assert r.returncode == 1 and r.stderr.startswith("Error: ")
    assert node.out("admins", "del", "ctl_admin") == "ok\n"
    assert login("second-Pass2") == 401
    assert node.ctl("admins", "add", "x").returncode == 2
    # no broker running: the command writes the database
    stopped = Proc(tmp_path)
    r = stopped.ctl("admins", "add", "offline_admin", "first-Pass1")
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
    store = Store.open(tmp_path)
    try:
        assert admin.get_user(store, "offline_admin") is not None
    finally:
        store.close()
