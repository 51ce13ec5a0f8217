#!/usr/bin/env python3
"""Two clustered emqpy nodes against one node, on this machine, in the same run.

The two nodes are laid out as `node.process_workers = 2` lays them out (emqpy/cluster/workers.py):
node 1 runs the one NATS server, node 2 is a client of it; here they are two `emqpy start`
processes on their own MQTT ports so that the script decides which node each client uses.
The one-node figures come from the same client layout with every client on node 1, alone.

Scenarios (64-byte payloads, MQTT 3.1.1):
- pairs: 10 publisher -> subscriber pairs, QoS 0 open loop, each on its own topic; publishers
  of pairs 0-4 on node 1, 5-9 on node 2; subscribers of pairs 3, 4, 7, 8, 9 on the other
  node (half the pairs cross nodes). Figure: msg/s delivered.
- fanin: 10 publishers cycling 100 topics each (5 per node), one subscriber of `fanin/#` on
  node 1. Figure: msg/s delivered.
- latency: one QoS 1 pair paced at 1,000 msg/s, publisher on node 2, subscriber on node 1.
  Figures: p50/p99/max publish-to-delivery.
- idle: N idle connections to node 1 (clustered, or alone). Figure: broker RSS KiB per
  connection.

CPU% columns: the brokers (with the NATS server: node 1's child), the load generator, and the
rest of the machine ("other": the machine is shared; a large figure is not a clean run).

    python bench/cluster.py                      # all scenarios, 10 s windows, 3 repetitions
    python bench/cluster.py --scenarios pairs --duration 5 --reps 1
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# bench/compare.py: broker start-up, /proc meters and the load generator's runner
from compare import (Emqpy, ScenarioError, cpu_seconds, free_port, machine_busy_seconds,  # noqa: E402
                     process_cpu_seconds, rss_kb)
from emqpy.bench.hist import percentiles  # noqa: E402
from emqpy.bench.runner import Run  # noqa: E402
from emqpy.bench.spec import Group, Spec  # noqa: E402



class Node(Emqpy):
    """An emqpy node (compare.py's start-up) with cluster settings in its environment."""

    def __init__(self, env: dict):
        super().__init__({"ca": "", "cert": "", "key": ""})
        self.env = {"EMQX_LISTENERS__SSL__DEFAULT__ENABLE": "false", **env}  # TCP only here


def _nats_ports() -> tuple[int, int]:
    return free_port(), free_port()


def _client_token() -> str:
    """The token the embedded NATS server wants from clients (derived from `node.cookie`, the
    default one here), as a sibling of `node.process_workers` gets it in its servers' URL."""
    from emqpy.cluster.natsd import credentials
    return credentials("emqxsecretcookie")[0]


def start_nodes(n: int) -> list[Node]:
    """n = 1: one plain node. n = 2: node 1 clustered with its embedded NATS server, node 2
    using that server (the process_workers layout)."""
    if n == 1:
        nodes = [Node({})]
    else:
        client, route = _nats_ports()
        offset = random.randrange(20000, 40000)
        name1, name2 = f"bench{offset}@127.0.0.1", f"bench{offset}-w1@127.0.0.1"
        common = {"EMQX_CLUSTER__NAME": f"bench{offset}"}
        nodes = [Node({**common, "EMQX_NODE__NAME": name1,
                       "EMQX_CLUSTER__DISCOVERY_STRATEGY": "static",
                       "EMQX_CLUSTER__STATIC__SEEDS": f'["{name1}"]',
                       "EMQX_CLUSTER__NATS__CLIENT_PORT": str(client),
                       "EMQX_CLUSTER__NATS__CLUSTER_PORT": str(route)}),
                 Node({**common, "EMQX_NODE__NAME": name2,
                       "EMQX_CLUSTER__NATS__SERVERS":
                           f'["nats://{_client_token()}@127.0.0.1:{client}"]'})]
    started = []
    try:
        for node in nodes:
            node.start()  # (node 1's NATS server is up once it runs)
            started.append(node)
    except BaseException:
        for node in started:
            node.stop()
        raise
    if n > 1:
        _wait_clustered(nodes)
    return nodes


def _wait_clustered(nodes: list[Node], timeout: float = 30) -> None:
    import httpx
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"http://127.0.0.1:{nodes[0].http_port}/api/v5/cluster",
                          auth=("admin", "public"), timeout=2)
            if len(r.json().get("nodes", [])) == len(nodes):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise ScenarioError("the nodes did not see each other")


# -- measuring ---------------------------------------------------------------------------------
class Window:
    """CPU seconds of the brokers, of the load generator and of the machine over a window."""

    def __init__(self, nodes: list[Node], runs: list[Run]):
        self.pids = [nd.pid for nd in nodes]
        self.gen = [os.getpid()] + [p.pid for r in runs for p in r.procs]

    def sample(self):
        return (time.monotonic(), [cpu_seconds(p) for p in self.pids],
                process_cpu_seconds(self.gen), machine_busy_seconds())

    @staticmethod
    def cpu(a, b) -> dict:
        secs = b[0] - a[0]
        per_node = [(y - x) * 100 / secs for x, y in zip(a[1], b[1])]
        broker = sum(per_node)
        gen, busy = ((b[i] - a[i]) * 100 / secs for i in (2, 3))
        out = {"broker CPU%": broker, "bench CPU%": gen, "other CPU%": max(0.0, busy - broker - gen)}
        if len(per_node) > 1:  # which node is the bottleneck (node 1's includes its NATS server)
            out["per node CPU%"] = " / ".join(f"{c:.0f}" for c in per_node)
        return out


def measure(nodes: list[Node], placement: list[tuple[int, list[Group]]], warmup: float,
            duration: float, workers: int = 1) -> dict:
    """Run each (node index, groups) as its own load generator (`workers` processes) against
    that node; measure `duration` s after `warmup`: delivered msg/s, latency, CPU."""
    runs = [Run(Spec(groups, host="127.0.0.1", port=nodes[i].port, version=4, workers=workers))
            for i, groups in placement]
    try:
        for run in runs:
            run.start()
        for run in runs:
            if not run.wait_connected(30):
                raise ScenarioError(f"clients did not connect: {run.totals()}")
        time.sleep(0.5)  # the subscriptions reach the other node's route table
        for run in runs:
            run.go()
        time.sleep(warmup)
        win = Window(nodes, runs)
        c0, t0 = win.sample(), [r.totals() for r in runs]
        h0 = [r.hist_counts() for r in runs]
        time.sleep(duration)
        c1, t1 = win.sample(), [r.totals() for r in runs]
        time.sleep(0.02)
        hist = [0] * len(h0[0])
        for r, base in zip(runs, h0):
            for k, (x, y) in enumerate(zip(r.hist_counts(), base)):
                hist[k] += x - y
        secs = c1[0] - c0[0]
        out = {"msg/s": sum(b["received"] - a["received"] for a, b in zip(t0, t1)) / secs}
        lat = percentiles(hist)
        if lat["count"]:
            out.update({f"{k} ms": lat[k] / 1000 for k in ("p50", "p99", "max")})
        out.update(Window.cpu(c0, c1))
        bad = sum(b[k] for b in t1 for k in ("conn_fail", "errors", "sub_fail", "pub_errors"))
        if bad:
            out["errors"] = bad
        return out
    finally:
        for run in runs:
            run.stop()


# -- scenarios: (node index, groups) per load generator, for 2 nodes; one node: all on 0 ------
def pairs() -> list[tuple[int, list[Group]]]:
    def sub(first, n, prefix):
        return Group("sub", n, topic="pair/%i", start_number=first, prefix=prefix)

    def pub(first, n, prefix):
        return Group("pub", n, topic="pair/%i", start_number=first, size=64, prefix=prefix)
    return [(0, [sub(0, 3, "a"), sub(7, 3, "b"), pub(0, 5, "c")]),
            (1, [sub(3, 4, "d"), pub(5, 5, "e")])]


def fanin() -> list[tuple[int, list[Group]]]:
    return [(0, [Group("sub", 1, topic="fanin/#", prefix="a"),
                 Group("pub", 5, topic="fanin/%i/%m", size=64, topic_cycle=100, prefix="b")]),
            (1, [Group("pub", 5, topic="fanin/%i/%m", size=64, topic_cycle=100,
                       start_number=5, prefix="c")])]


def latency() -> list[tuple[int, list[Group]]]:
    return [(0, [Group("sub", 1, topic="lat/1", qos=1, latency=True, prefix="a")]),
            (1, [Group("pub", 1, topic="lat/1", qos=1, size=64, interval_ms=1.0, prefix="b")])]


SCENARIOS = {"pairs": pairs, "fanin": fanin, "latency": latency}


def on_one_node(placement):
    return [(0, groups) for _, groups in placement]


def idle_rss(nodes: list[Node], conns: int) -> dict:
    """RSS KiB per idle connection on node 1."""
    spec = Spec([Group("conn", conns, prefix="idle")], host="127.0.0.1", port=nodes[0].port,
                version=4, workers=1, keepalive=300, conn_concurrency=64, connect_timeout=60)
    rss0 = rss_kb(nodes[0].pid)
    with Run(spec) as run:
        run.start()
        if not run.wait_connected(120):
            raise ScenarioError(f"idle clients did not connect: {run.totals()}")
        time.sleep(0.5)
        rss1 = rss_kb(nodes[0].pid)
    return {"KiB/conn": (rss1 - rss0) / conns}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default="pairs,fanin,latency,idle")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--conns", type=int, default=5000, help="idle connections (idle scenario)")
    args = ap.parse_args(argv)
    wanted = args.scenarios.split(",")
    unknown = set(wanted) - set(SCENARIOS) - {"idle"}
    if unknown:
        ap.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    results: dict = {}  # (scenario, nodes) -> [figures per repetition]
    for rep in range(args.reps):
        for n in (1, 2):  # alternate: one node, then two
            for name in wanted:
                nodes = start_nodes(n)
                try:
                    if name == "idle":
                        fig = idle_rss(nodes, args.conns)
                    else:
                        placement = SCENARIOS[name]()
                        fig = measure(nodes, placement if n == 2 else on_one_node(placement),
                                      args.warmup, args.duration)
                finally:
                    for node in nodes:
                        node.stop()
                results.setdefault((name, n), []).append(fig)
                print(f"rep {rep + 1} {name} {n} node(s): "
                      + ", ".join(f"{k} {v:,.2f}" if isinstance(v, float) else f"{k} {v}"
                                  for k, v in fig.items()), file=sys.stderr)
    print(f"\n{args.reps} repetition(s), medians; {os.cpu_count()} cores; "
          f"{args.duration:.0f} s windows after {args.warmup:.0f} s warm-up\n")
    print("| scenario | figure | 1 node | 2 nodes | 2/1 | CPU% brokers 1 / 2 | bench CPU% 1 / 2 | other CPU% 1 / 2 |")
    print("|---|---|---|---|---|---|---|---|")
    for name in wanted:
        one, two = results[(name, 1)], results[(name, 2)]

        def med(rows, key):
            vals = [r[key] for r in rows if key in r]
            return statistics.median(vals) if vals else float("nan")
        cpu = " | ".join(f"{med(one, k):.0f} / {med(two, k):.0f}" if k in one[0] else ""
                         for k in ("broker CPU%", "bench CPU%", "other CPU%"))
        for key in [k for k in one[0] if not k.endswith("CPU%") and k != "errors"]:
            a, b = med(one, key), med(two, key)
            ratio = f"{b / a:.2f}x" if a else "-"
            print(f"| {name} | {key} | {a:,.2f} | {b:,.2f} | {ratio} | "
                  + (cpu if key in ("msg/s", "KiB/conn") else " | | ") + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
