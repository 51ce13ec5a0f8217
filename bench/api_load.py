#!/usr/bin/env python3
"""MQTT latency while the management API serves its heaviest requests.

    python bench/api_load.py [--clients 10000] [--rate 1000] [--duration 10] [--rounds 2]

Starts `python -m emqpy start` on free loopback ports (as bench/compare.py does), connects
`--clients` idle MQTT 3.1.1 clients, each subscribed to its own topic (so /clients,
/subscriptions and /topics have that many rows), plus one QoS 0 publisher -> subscriber pair
paced at `--rate` msg/s that measures publish-to-delivery latency (emqpy's bench load
generator). Then `--rounds` pairs of windows of `--duration` seconds each, alternating (the
load of a shared machine drifts):

1. no API load: the reference;
2. API load: one HTTP client polls GET /clients?limit=10000 back to back while a second one
   cycles through GET /subscriptions?limit=10000, /topics?limit=10000, /monitor,
   /monitor_current, /stats, /metrics and /prometheus/stats back to back.

It prints every window (latency percentiles, delivered rate, broker and other CPU%), the
median p99 of each kind, and what the pollers got done, then stops everything. Only
127.0.0.1 is used.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time

import httpx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# bench/compare.py: broker start-up, CPU meter and the load generator's runner
from compare import Emqpy, Meter, Outcome, Run, make_certs  # noqa: E402
from emqpy.bench.spec import Group, Spec  # noqa: E402

CLIENT_POLL = [("/clients?limit=10000", {"limit": 10000})]
OTHER_POLLS = [("/subscriptions?limit=10000", {"limit": 10000}),
               ("/topics?limit=10000", {"limit": 10000}),
               ("/monitor", {}), ("/monitor_current", {}), ("/stats", {}), ("/metrics", {}),
               ("/prometheus/stats", {})]


class Poller(threading.Thread):
    """Requests `paths` one after another, round robin, until stopped; records times."""

    def __init__(self, base: str, token: str, paths: list[tuple[str, dict]]):
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=base, timeout=120,
                                   headers={"Authorization": "Bearer " + token})
        self.paths = paths
        self.times: dict[str, list[float]] = {name: [] for name, _ in paths}
        self.sizes: dict[str, int] = {}
        self.errors: list[str] = []
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            for name, params in self.paths:
                if self.stop_flag.is_set():
                    break
                t0 = time.perf_counter()
                try:
                    r = self.client.get(name.split("?")[0], params=params)
                except httpx.HTTPError as e:
                    self.errors.append(f"{name}: {e!r}")
                    continue
                dt = (time.perf_counter() - t0) * 1000
                if r.status_code != 200:
                    self.errors.append(f"{name}: HTTP {r.status_code}")
                    continue
                self.times[name].append(dt)
                self.sizes[name] = len(r.content)
        self.client.close()


def window(b, run: Run, seconds: float) -> tuple[dict, Outcome]:
    meter = Meter(b.pid, run).start()
    a, h0, t0 = run.totals(), run.hist_counts(), time.monotonic()
    time.sleep(seconds)
    z, t1 = run.totals(), time.monotonic()
    out = meter.stop(Outcome({}))
    time.sleep(0.05)  # let the worker flush its latency histogram
    return run.summary(window=(a, z, t1 - t0), hist_base=h0), out


def login(base: str) -> str:
    r = httpx.post(base + "/login", json={"username": "admin", "password": "public"},
                   timeout=30)
    r.raise_for_status()
    return r.json()["token"]


def check_complete(base: str, token: str, clients: int) -> str:
    """One full /clients page: every connected client listed once."""
    r = httpx.get(base + "/clients", params={"limit": 10000},
                  headers={"Authorization": "Bearer " + token}, timeout=120)
    if r.status_code != 200:
        return f"GET /clients?limit=10000 -> HTTP {r.status_code}: {r.text[:200]}"
    body = r.json()
    want = min(10000, clients + 2)
    ids = {row["clientid"] for row in body["data"]}
    ok = len(body["data"]) == want and len(ids) == want
    return (f"GET /clients?limit=10000: {len(body['data'])} rows ({len(ids)} distinct), "
            f"meta {body['meta']}, {len(r.content) / 1e6:.1f} MB"
            + ("" if ok else f"  <-- expected {want}"))


def fmt_ms(us) -> str:
    return "-" if us is None else f"{us / 1000:.2f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=10000, help="idle subscribed clients")
    ap.add_argument("--rate", type=float, default=1000.0, help="paced publisher, msg/s")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per window")
    ap.add_argument("--rounds", type=int, default=2,
                    help="pairs of windows (no API load, API load), alternating")
    ap.add_argument("--warmup", type=float, default=3.0)
    a = ap.parse_args(argv)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * a.clients + 1000  # the broker (our child) inherits the raised limit
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, need), hard))

    certs_dir = tempfile.mkdtemp(prefix="bench-api-load-")
    b = Emqpy(make_certs(certs_dir))
    b.start()
    pollers: list[Poller] = []
    windows: list[tuple[str, dict, Outcome]] = []
    try:
        base = f"http://127.0.0.1:{b.http_port}/api/v5"
        groups = [Group("sub", a.clients, topic="idle/%i", prefix="idle"),
                  Group("sub", 1, topic="lat/1", latency=True, prefix="lat"),
                  Group("pub", 1, topic="lat/1", size=64, interval_ms=1000.0 / a.rate,
                        prefix="lat")]
        spec = Spec(groups, host="127.0.0.1", port=b.port, version=4, workers=1,
                    conn_concurrency=200, connect_timeout=60)
        with Run(spec) as run:
            run.start()
            t0 = time.monotonic()
            if not run.wait_connected(120):
                raise SystemExit(f"clients did not connect: {run.totals()}")
            print(f"{a.clients + 2} clients connected and subscribed in "
                  f"{time.monotonic() - t0:.1f} s", flush=True)
            token = login(base)
            print(check_complete(base, token, a.clients), flush=True)
            run.go()
            time.sleep(a.warmup)
            for _ in range(a.rounds):  # alternate: this machine's other load drifts
                windows.append(("no API load", *window(b, run, a.duration)))
                round_pollers = [Poller(base, token, CLIENT_POLL),
                                 Poller(base, token, OTHER_POLLS)]
                for p in round_pollers:
                    p.start()
                time.sleep(1.0)  # the first big responses are on their way
                windows.append(("API load", *window(b, run, a.duration)))
                for p in round_pollers:
                    p.stop_flag.set()
                for p in round_pollers:
                    p.join(120)
                pollers += round_pollers
            errors = run.totals()
            errs = {k: errors[k] for k in ("conn_fail", "errors", "sub_fail", "pub_errors")
                    if errors[k]}
    finally:
        for p in pollers:
            p.stop_flag.set()
        b.stop()
        shutil.rmtree(certs_dir, ignore_errors=True)

    print()
    print(f"MQTT QoS 0 publish -> receive latency at {a.rate:g} msg/s, {a.clients} idle "
          f"clients, {a.duration:g} s windows, in the order measured")
    print()
    print("| window | msg/s delivered | p50 ms | p99 ms | p99.9 ms | max ms | broker CPU% "
          "| other CPU% |")
    print("|---|---|---|---|---|---|---|---|")
    for name, res, cpu in windows:
        lat = res["latency_us"]
        print(f"| {name} | {res['recv_rate']:,.0f} | {fmt_ms(lat['p50'])} | "
              f"{fmt_ms(lat['p99'])} | {fmt_ms(lat['p99.9'])} | {fmt_ms(lat['max'])} | "
              f"{cpu.cpu:.0f} | {cpu.other_cpu:.0f} |")
    for name in ("no API load", "API load"):
        p99 = [r["latency_us"]["p99"] for n, r, _ in windows if n == name
               and r["latency_us"]["p99"] is not None]
        if p99:
            print(f"\n{name}: median p99 over {len(p99)} windows "
                  f"{statistics.median(p99) / 1000:.2f} ms", end="")
    print()
    print()
    print("API requests completed during the load windows (and the second before each):")
    print()
    print("| request | count | median ms | max ms | response bytes |")
    print("|---|---|---|---|---|")
    for name, _ in CLIENT_POLL + OTHER_POLLS:
        times = [t for p in pollers for t in p.times.get(name, [])]
        size = max((p.sizes.get(name, 0) for p in pollers), default=0)
        med = f"{statistics.median(times):.1f}" if times else "-"
        mx = f"{max(times):.1f}" if times else "-"
        print(f"| GET {name} | {len(times)} | {med} | {mx} | {size:,} |")
    problems = [e for p in pollers for e in p.errors] + ([str(errs)] if errs else [])
    if problems:
        print("\nerrors: " + "; ".join(problems[:10]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
