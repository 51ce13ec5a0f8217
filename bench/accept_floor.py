#!/usr/bin/env python3
"""How fast can an asyncio server with one accept watcher take MQTT connections here?

Runs compare.py's connection scenario (10,000 MQTT 3.1.1 connections, at most 64 handshakes in
progress, `emqpy bench` as the load generator) against Mosquitto and against the least an
asyncio server can do: a uvloop `create_server` whose protocol answers every read with a
CONNACK and keeps nothing: the accept path (uvloop's transport set-up and the kernel) is all
it spends. libuv accepts one connection per watcher and loop iteration; emqpy watches a plain
listener's socket `acceptors` times, so this is a reference point, not emqpy's ceiling.

    python bench/accept_floor.py [--reps 3] [--conns 10000]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (the scenario, Mosquitto runner and /proc meters)

SERVER = r"""
import asyncio, socket, sys, uvloop

class Connack(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.transport.write(b"\x20\x02\x00\x00")

async def main(port):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    await asyncio.get_running_loop().create_server(Connack, sock=sock, backlog=1024)
    await asyncio.Event().wait()

uvloop.run(main(int(sys.argv[1])))
"""


class UvloopConnack(compare.Broker):
    name = "uvloop CONNACK-only server"

    def start(self):
        self.dir = tempfile.mkdtemp(prefix="cmp-floor-")
        self.port = compare.free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(self.port)])
        if not compare.wait_port(self.port, 10, self.proc):
            self.stop()
            raise compare.ScenarioError("the uvloop server did not start")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cfg = compare.Cfg(warmup=1.0, duration=3.0, latency_duration=3.0, conns=a.conns,
                      retained_topics=0, retained_subs=0, retained_timeout=0,
                      workers=a.workers, quick=False)
    tmp = tempfile.mkdtemp(prefix="cmp-certs-")
    os.chmod(tmp, 0o755)  # mosquitto started as root reads them as user mosquitto
    certs = compare.make_certs(tmp)
    compare.Mosquitto.ensure_installed()
    servers = [compare.Mosquitto(certs), UvloopConnack(certs)]
    rates: dict[str, list[float]] = {s.name: [] for s in servers}
    for _ in range(a.reps):
        for s in servers:  # A B A B
            o = compare.run_once(s, compare.sc_conn, cfg)
            if isinstance(o, compare.Outcome):
                rates[s.name].append(o.metrics["connections/s"])
    mosq = statistics.median(rates["Mosquitto"]) if rates["Mosquitto"] else 0
    print(f"\n{a.conns:,} connections, median of {a.reps}:")
    for name, vals in rates.items():
        if vals:
            med = statistics.median(vals)
            print(f"  {name}: {med:,.0f} connections/s"
                  + (f" ({med / mosq:.2f}x Mosquitto)" if mosq and name != "Mosquitto" else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
