"""`emqpy start` with node.process_workers = 2: two broker processes on the same MQTT port
(SO_REUSEPORT), clustered over one NATS server; clients landing on either process reach each
other, a killed sibling is started again, and a kill -9 of the main leaves no process behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from support.mqttclient import MqttClient, uid
from support.servers import free_port, wait_port
from support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]  # the checkout whose emqpy the processes run
MAIN = "emqxw@127.0.0.1"
SIBLING = "emqxw-w1@127.0.0.1"


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of the processes whose parent is `pid`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rpartition(")")[2].split()[1])
            if ppid == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class Workers:
    """The `emqpy start` process (and through it its sibling and NATS server)."""

    def __init__(self, tmp: Path, extra_conf: str = ""):
        self.mqtt_port, self.api_port = free_port(), free_port()
        conf = tmp / "emqx.conf"
        conf.write_text(f"""
node {{ name = "{MAIN}", process_workers = 2 }}
cluster.nats {{ client_port = {free_port()}, cluster_port = {free_port()} }}
listeners.tcp.default.bind = "127.0.0.1:{self.mqtt_port}"
listeners.ssl.default.enable = false
listeners.ws.default.enable = false
listeners.wss.default.enable = false
dashboard.listeners.http.bind = {self.api_port}
{extra_conf}""")
        env = dict(os.environ, PYTHONPATH=str(ROOT), EMQX_LOG_DIR=str(tmp / "log"))
        self.out = open(tmp / "emqpy.out", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emqpy", "start", "-c", str(conf), "--data-dir", str(tmp / "data")],
            cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT)
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}/api/v5",
                                auth=("admin", "public"), timeout=10)
        self.seen: set[int] = set()  # every process it started: all killed at the end

    def children(self) -> dict[int, str]:
        kids = _children(self.proc.pid)
        self.seen.update(kids)
        return kids

    def sibling_pid(self) -> int | None:
        pids = [p for p, cmd in self.children().items() if " -m emqpy start" in cmd]
        return pids[0] if pids else None

    def nats_pid(self) -> int | None:
        pids = [p for p, cmd in self.children().items() if "nats-server" in cmd]
        return pids[0] if pids else None

    def running(self) -> list[str]:
        try:
            nodes = self.api.get("/nodes").json()
        except httpx.HTTPError:
            return []
        return sorted(n["node"] for n in nodes if n["node_status"] == "running")

    def connections(self, node: str) -> int:
        r = self.api.get(f"/nodes/{node}/stats")
        return r.json()["live_connections.count"] if r.status_code == 200 else -1

    def close(self) -> None:
        self.api.close()
        for pid in [self.proc.pid, *self.seen]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        self.out.close()


@pytest.fixture
def workers(tmp_path):
    w = Workers(tmp_path)
    try:
        wait_port(w.api_port, w.proc, seconds=30)
        wait_until(lambda: w.running() == sorted([MAIN, SIBLING]), timeout=30,
                   what="the main process and its sibling both running")
        yield w
    finally:
        w.close()


def _connect(port: int) -> MqttClient:
    c = MqttClient("127.0.0.1", port, uid("w"), version=5)
    return c.connect()


def test_clients_on_both_processes_reach_each_other(workers):
    clients = []
    # the kernel spreads connections by a hash of their addresses: connect until both got some
    while len(clients) < 8 or min(workers.connections(MAIN), workers.connections(SIBLING)) < 2:
        assert len(clients) < 60, "every connection went to the same process"
        clients.append(_connect(workers.mqtt_port))
    for c in clients:
        c.subscribe("w/all", qos=1)

    # the subscriptions reach the other process's route table a moment later: probe until
    # every client hears every other
    def everyone_hears_everyone():
        for c in clients:
            c.publish("w/all", f"probe {c.client_id}", qos=0)
        time.sleep(0.2)
        return all({m.payload for m in c.drain()} >= {f"probe {o.client_id}".encode()
                                                       for o in clients} for c in clients)
    wait_until(everyone_hears_everyone, timeout=20, what="routes known on both processes")

    for c in clients:
        c.publish("w/all", f"msg {c.client_id}", qos=1)
    expected = sorted(f"msg {c.client_id}".encode() for c in clients)
    for c in clients:
        got = []
        wait_until(lambda: got.extend(m.payload for m in c.drain() if m.payload.startswith(b"msg"))
                   or len(got) >= len(expected), timeout=10, what="every message")
        assert sorted(got) == expected  # once each, from both processes
    for c in clients:
        c.close()


def test_a_killed_sibling_is_restarted_and_a_killed_main_leaves_nothing(workers):
    first = workers.sibling_pid()
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: workers.sibling_pid() not in (None, first), timeout=15,
               what="a new sibling process")
    # the new one is a working node: it answers the main's calls and takes connections
    wait_until(lambda: workers.connections(SIBLING) >= 0, timeout=20, what="the new sibling answering")

    sibling, nats = workers.sibling_pid(), workers.nats_pid()
    assert nats is not None
    os.kill(workers.proc.pid, signal.SIGKILL)
    workers.proc.wait()
    wait_until(lambda: not _alive(sibling) and not _alive(nats), timeout=10,
               what="the sibling and the NATS server gone with the main process")
