#!/usr/bin/env python3
"""The HTTP action's throughput, and the broker's QoS 0 fan-in while it runs (issue 15).

Starts an aiohttp target (tests/support/http_sink.py) and an emqpy broker
(tests/support/bridge_node.py, forwarding every `hook/#` message to the action as a rule
`SELECT * FROM "hook/#"` would), each in its own process, and measures:

1. buffering: the target is down, 10 publishers flood hook/# (QoS 0, open loop): messages/s
   the action queues on disk;
2. draining: the target is back, no MQTT load: requests/s it gets until the buffer is empty
   (the action's own throughput, batching and pipelining off);
3. the fan-in scenario of bench/compare.py (10 publishers -> 1 subscriber on bench/#, QoS 0,
   64-byte payloads, open loop) with no rule: the baseline; then with the stand-in rule's
   `message.publish` hook installed but nothing for the action (what the hook costs);
4. the same fan-in while 10 more publishers feed the action at --action-rate msg/s: delivered
   msg/s against the baseline, and the requests/s the action makes meanwhile.

Figures, not a test.

    python bench/http_action.py [--duration 10] [--action-rate 4000] [--pool-size 8]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from emqpy.bench.runner import Run  # noqa: E402
from emqpy.bench.spec import Group, Spec  # noqa: E402
from support.servers import HttpSink, free_port, wait_port  # noqa: E402


def start_broker(data_dir: str, forward: str | None = None):
    mqtt, api = free_port(), free_port()
    args = [sys.executable, os.path.join(ROOT, "tests", "support", "bridge_node.py"), data_dir,
            str(mqtt), str(api)]
    if forward:
        args += ["--forward", forward, "hook/#"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.stdout.readline().strip() == "ready"
    wait_port(mqtt, proc)
    return proc, mqtt, httpx.Client(base_url=f"http://127.0.0.1:{api}/api/v5",
                                    auth=("admin", "public"), timeout=120)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time (user + system, all threads) of process `pid` and of its child processes
    (the delivery process), from /proc (Linux); (0, 0) elsewhere."""
    def one(p) -> float:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = f.read().split()
    except OSError:
        children = []
    return one(pid), sum(one(c) for c in children)


def measure(port: int, groups: list, duration: float, workers: int,
            sink: HttpSink | None, pid: int | None = None) -> dict:
    spec = Spec(groups, port=port, version=4, workers=workers)
    with Run(spec) as run:
        run.start()
        if not run.wait_connected(30):
            raise SystemExit(f"clients did not connect: {run.totals()}")
        run.go()
        time.sleep(2)  # warm-up
        a, t0 = run.totals(), time.monotonic()
        s0 = sink.count() if sink else 0
        c0 = cpu_seconds(pid) if pid else (0.0, 0.0)
        time.sleep(duration)
        b, t1 = run.totals(), time.monotonic()
        s1 = sink.count() if sink else 0
        c1 = cpu_seconds(pid) if pid else (0.0, 0.0)
        res = run.summary(window=(a, b, t1 - t0))
    return {"delivered": res["recv_rate"], "requests": (s1 - s0) / (t1 - t0),
            "cpu": (c1[0] - c0[0]) / (t1 - t0), "child_cpu": (c1[1] - c0[1]) / (t1 - t0)}


FANIN = [Group("sub", 1, topic="bench/#"), Group("pub", 10, topic="bench/%i", size=64)]


def feed(rate: float) -> Group:
    """10 publishers on hook/#: `rate` msg/s in all (0: as fast as they can)."""
    return Group("pub", 10, topic="hook/%i", size=64, prefix="hook",
                 interval_ms=10_000 / rate if rate else 0.0)


def create_action(api, args, sink: HttpSink) -> None:
    r = api.post("/connectors", json={
        "type": "http", "name": "bench", "url": sink.url("/ingest"),
        "pool_size": args.pool_size, "resource_opts": {"health_check_interval": "1s"}})
    assert r.status_code == 201, r.text
    r = api.post("/actions", json={
        "type": "http", "name": "bench", "connector": "bench",
        "parameters": {"body": "${payload}"},
        "resource_opts": {"inflight_window": args.inflight, "request_ttl": "infinity",
                          "worker_pool_size": args.worker_pool_size,
                          "health_check_interval": "1s"}})
    assert r.status_code == 201, r.text


def action_metrics(api) -> dict:
    return api.get("/actions/http:bench/metrics").json()["metrics"]


def buffer_and_drain(args, sink: HttpSink) -> dict:
    with tempfile.TemporaryDirectory() as d:
        proc, port, api = start_broker(d, "http:bench")
        try:
            create_action(api, args, sink)
            sink.stop()
            m0 = action_metrics(api)["matched"]
            t0 = time.monotonic()
            measure(port, [feed(0)], args.duration, args.workers, None)
            m = action_metrics(api)
            enqueue = (m["matched"] - m0) / (time.monotonic() - t0)
            held = m["queuing"] + m["inflight"]
            sink.start()
            c0, t0 = sink.count(), time.monotonic()
            deadline = t0 + max(args.duration, 30)
            while time.monotonic() < deadline:
                time.sleep(0.5)
                if action_metrics(api)["queuing"] == 0:
                    break
            drained, t1 = sink.count() - c0, time.monotonic()
            return {"enqueue": enqueue, "held": held, "dropped": m["dropped.queue_full"],
                    "drain": drained / (t1 - t0), "drained": drained}
        finally:
            proc.terminate()
            proc.wait(10)


def fed_fanin(args, sink: HttpSink) -> tuple[dict, dict]:
    with tempfile.TemporaryDirectory() as d:
        proc, port, api = start_broker(d, "http:bench")
        try:
            create_action(api, args, sink)
            res = measure(port, [*FANIN, feed(args.action_rate)], args.duration, args.workers,
                          sink, proc.pid)
            return res, action_metrics(api)
        finally:
            proc.terminate()
            proc.wait(10)


def cpu_note(r: dict) -> str:
    """The broker's CPU per delivered message: steadier than msg/s on a shared machine."""
    per = r["cpu"] / r["delivered"] * 1e6 if r["delivered"] else 0.0
    child = f", delivery process {r['child_cpu']:.0%} CPU" if r["child_cpu"] else ""
    return f"broker {r['cpu']:.0%} CPU, {per:.2f} µs/msg{child}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--action-rate", type=float, default=4000,
                   help="msg/s fed to the action during the fan-in run")
    p.add_argument("--pool-size", type=int, default=8)
    p.add_argument("--inflight", type=int, default=100)
    p.add_argument("--worker-pool-size", type=int, default=16)
    p.add_argument("--workers", type=int, default=1, help="load generator processes")
    a = p.parse_args()

    sink = HttpSink(quiet=True)
    try:
        bd = buffer_and_drain(a, sink)
        base = {}
        for label, forward in (("none", None), ("hook", "http:bench")):
            with tempfile.TemporaryDirectory() as d:
                proc, port, _ = start_broker(d, forward)
                try:
                    base[label] = measure(port, FANIN, a.duration, a.workers, None, proc.pid)
                finally:
                    proc.terminate()
                    proc.wait(10)
        both, m = fed_fanin(a, sink)
    finally:
        sink.stop()
    settings = (f"pool_size {a.pool_size}, inflight_window {a.inflight}, worker_pool_size "
                f"{a.worker_pool_size}, no batching, no pipelining")
    print(f"buffering, target down:              {bd['enqueue']:>10,.0f} msg/s queued on disk "
          f"({bd['held']:,} held, {bd['dropped']:,} dropped as the buffer filled)")
    print(f"draining, target back, no MQTT load:  {bd['drain']:>10,.0f} req/s "
          f"({bd['drained']:,} requests; {settings})")
    none, hook = base["none"]["delivered"], base["hook"]["delivered"]
    print(f"fan-in QoS 0 delivered, no rule:      {none:>10,.0f} msg/s "
          f"({cpu_note(base['none'])})")
    print(f"fan-in QoS 0 delivered, rule hook:    {hook:>10,.0f} msg/s "
          f"({hook / none if none else 0:.0%} of no rule; nothing for the action; "
          f"{cpu_note(base['hook'])})")
    print(f"fan-in QoS 0 delivered, action fed:   {both['delivered']:>10,.0f} msg/s "
          f"({both['delivered'] / none if none else 0:.0%} of no rule, "
          f"{both['delivered'] / hook if hook else 0:.0%} of the rule hook alone; "
          f"{cpu_note(both)})")
    print(f"  the action meanwhile:               {both['requests']:>10,.0f} req/s "
          f"(fed {a.action_rate:,.0f} msg/s; matched {m['matched']:,}, success "
          f"{m['success']:,}, queuing {m['queuing']:,}, dropped {m['dropped']:,})")


if __name__ == "__main__":
    main()
