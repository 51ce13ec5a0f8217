#!/usr/bin/env python3
"""Subscribe storm: N clients each subscribe F filters; is the time per subscription flat in N?

For each client count, starts a fresh emqpy (`python -m emqpy start` from a source tree, on free
loopback ports), connects the clients (not timed), then has every client send its F SUBSCRIBEs
(one filter each) at once and times until every SUBACK is back. Prints wall time and the
broker's CPU time per subscription. Linear work shows as a flat per-subscription column.

    python bench/subscribe_storm.py                              # 1k, 5k, 10k clients x 10
    python bench/subscribe_storm.py --tree /tmp/old-core --tree .   # before vs after
    python bench/subscribe_storm.py --clients 1000,2000 --filters 5
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.compare import cpu_seconds, free_port, wait_port  # noqa: E402
from emqpy.bench import mqtt  # noqa: E402

SUBACK_V4_LEN = 5  # 0x90, length 3, packet id, one reason code


class Client(asyncio.Protocol):
    """A raw MQTT 3.1.1 client that only counts what comes back: CONNACK (4 bytes) first,
    then SUBACKs, all fixed-size for one filter each."""

    def __init__(self, expect_subacks: int):
        self.received = 0
        self.connected = asyncio.get_running_loop().create_future()
        self.done = asyncio.get_running_loop().create_future()
        self.expect = 4 + expect_subacks * SUBACK_V4_LEN
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        self.received += len(data)
        if self.received >= 4 and not self.connected.done():
            self.connected.set_result(None)
        if self.received >= self.expect and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc):
        for f in (self.connected, self.done):
            if not f.done():
                f.set_exception(ConnectionError(f"closed after {self.received} bytes"))


def start_broker(tree: str, workdir: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=tree)
    env.update({
        "EMQX_LISTENERS__TCP__DEFAULT__BIND": f"127.0.0.1:{port}",
        "EMQX_LISTENERS__SSL__DEFAULT__BIND": f"127.0.0.1:{free_port()}",
        "EMQX_LISTENERS__WS__DEFAULT__BIND": f"127.0.0.1:{free_port()}",
        "EMQX_LISTENERS__WSS__DEFAULT__BIND": f"127.0.0.1:{free_port()}",
        "EMQX_DASHBOARD__LISTENERS__HTTP__BIND": f"127.0.0.1:{free_port()}",
        "EMQX_LISTENERS__TCP__DEFAULT__MAX_CONNECTIONS": "infinity",
        "EMQX_LOG__CONSOLE__LEVEL": "warning",
    })
    log = open(os.path.join(workdir, "emqpy.log"), "w")
    proc = subprocess.Popen([sys.executable, "-m", "emqpy", "start", "--data-dir",
                             os.path.join(workdir, "data")], cwd=tree, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    if not wait_port(port, 60, proc):
        proc.kill()
        raise SystemExit(f"emqpy from {tree} did not start; see {log.name}")
    deadline = time.monotonic() + 60  # the MQTT port opens before start-up is over
    while time.monotonic() < deadline and proc.poll() is None:
        with open(log.name, errors="replace") as f:
            if " is running as " in f.read():
                break
        time.sleep(0.05)
    return proc, port


async def storm(port: int, n_clients: int, n_filters: int, broker_pid: int) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    clients: list[Client] = []
    sem = asyncio.Semaphore(200)  # handshakes in progress

    async def connect(i: int) -> None:
        async with sem:
            _, c = await loop.create_connection(lambda: Client(n_filters), "127.0.0.1", port)
            c.transport.write(mqtt.connect(f"storm-{i}", 4, keepalive=600))
            await c.connected
            clients.append(c)

    await asyncio.gather(*(connect(i) for i in range(n_clients)))
    packets = [[mqtt.subscribe(j + 1, [f"storm/{i}/{j}/+" if j % 2 else f"storm/{i}/{j}"], 1)
                for j in range(n_filters)] for i in range(n_clients)]
    cpu0 = cpu_seconds(broker_pid)
    t0 = time.perf_counter()
    for c, pkts in zip(clients, packets):
        c.transport.write(b"".join(pkts))
    await asyncio.gather(*(c.done for c in clients))
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(broker_pid) - cpu0
    for c in clients:
        c.transport.close()
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", action="append", default=None,
                    help="emqpy source tree to run (repeatable; default: this one)")
    ap.add_argument("--clients", default="1000,5000,10000", help="client counts, comma-separated")
    ap.add_argument("--filters", type=int, default=10, help="filters per client")
    a = ap.parse_args()
    trees = [os.path.abspath(t) for t in (a.tree or [ROOT])]
    counts = [int(x) for x in a.clients.split(",")]
    need = max(counts) + 100
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    print("| tree | clients | subscriptions | wall s | wall µs/sub | broker CPU s | CPU µs/sub |")
    print("|---|---|---|---|---|---|---|")
    for tree in trees:
        for n in counts:
            workdir = tempfile.mkdtemp(prefix="storm-")
            proc, port = start_broker(tree, workdir)
            try:
                wall, cpu = asyncio.run(storm(port, n, a.filters, proc.pid))
            finally:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                shutil.rmtree(workdir, ignore_errors=True)
            subs = n * a.filters
            print(f"| {tree} | {n} | {subs} | {wall:.2f} | {wall / subs * 1e6:.1f} | "
                  f"{cpu:.2f} | {cpu / subs * 1e6:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
