#!/usr/bin/env python3
"""The MQTT action's throughput: messages/s from a rule to a local Mosquitto (issue 15).

Starts Mosquitto (tests/support/servers.py) and an emqpy broker (tests/support/bridge_node.py,
with the rule `SELECT * FROM "hook/#"` forwarding to the action `mqtt:bench`), and measures:

1. live: 10 publishers feed hook/# at --rate msg/s in all (QoS 0) while Mosquitto is up:
   messages/s the action gets acknowledged by Mosquitto (success counters);
2. buffering: Mosquitto is down, the same flood: messages/s the action queues on disk;
3. draining: Mosquitto is back, no MQTT load: messages/s the action delivers until its
   buffer is empty.

Figures, not a test.

    python bench/mqtt_action.py [--duration 10] [--rate 20000] [--qos 1] [--pool-size 8]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_action import feed, measure, start_broker  # noqa: E402  (also sets sys.path)

from support.servers import MosquittoServer  # noqa: E402


def create_action(api, args, mosq: MosquittoServer) -> None:
    r = api.post("/connectors", json={
        "type": "mqtt", "name": "bench", "server": f"127.0.0.1:{mosq.port}",
        "pool_size": args.pool_size, "max_inflight": args.max_inflight,
        "resource_opts": {"health_check_interval": "1s"}})
    assert r.status_code == 201, r.text
    r = api.post("/actions", json={
        "type": "mqtt", "name": "bench", "connector": "bench",
        "parameters": {"topic": "out/${topic}", "payload": "${payload}", "qos": args.qos},
        "resource_opts": {"inflight_window": args.inflight, "request_ttl": "infinity",
                          "worker_pool_size": args.worker_pool_size,
                          "health_check_interval": "1s"}})
    assert r.status_code == 201, r.text


def metrics(api) -> dict:
    return api.get("/actions/mqtt:bench/metrics").json()["metrics"]


def delivered(m: dict) -> int:
    return m["success"] + m["retried.success"]


def run(args) -> dict:
    mosq = MosquittoServer()
    out = {}
    try:
        with tempfile.TemporaryDirectory() as d:
            proc, port, api = start_broker(d, "mqtt:bench")
            try:
                create_action(api, args, mosq)
                time.sleep(1.5)  # connected
                d0, t0 = delivered(metrics(api)), time.monotonic()
                measure(port, [feed(args.rate)], args.duration, args.workers, None)
                m = metrics(api)
                out["live"] = (delivered(m) - d0) / (time.monotonic() - t0)
                out["live_m"] = m
                # let what the flood left queued go out before the outage
                deadline = time.monotonic() + 60
                while metrics(api)["queuing"] and time.monotonic() < deadline:
                    time.sleep(0.5)
                mosq.stop(remove=False)
                m0, t0 = metrics(api)["matched"], time.monotonic()
                measure(port, [feed(0)], args.duration, args.workers, None)
                m = metrics(api)
                out["enqueue"] = (m["matched"] - m0) / (time.monotonic() - t0)
                out["held"] = m["queuing"] + m["inflight"]
                out["dropped"] = m["dropped.queue_full"]
                d0 = delivered(m)
                mosq.start()
                t0 = time.monotonic()
                deadline = t0 + max(args.duration, 60)
                while time.monotonic() < deadline:
                    time.sleep(0.2)
                    m = metrics(api)
                    if m["queuing"] + m["inflight"] == 0:
                        break
                out["drained"] = delivered(m) - d0
                out["drain"] = out["drained"] / (time.monotonic() - t0)
            finally:
                proc.terminate()
                proc.wait(10)
    finally:
        mosq.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=20000, help="msg/s fed in the live run")
    p.add_argument("--qos", type=int, default=1, choices=(0, 1, 2))
    p.add_argument("--pool-size", type=int, default=8)
    p.add_argument("--max-inflight", type=int, default=32)
    p.add_argument("--inflight", type=int, default=100)
    p.add_argument("--worker-pool-size", type=int, default=16)
    p.add_argument("--workers", type=int, default=1, help="load generator processes")
    a = p.parse_args()
    r = run(a)
    settings = (f"QoS {a.qos}, pool_size {a.pool_size}, max_inflight {a.max_inflight}, "
                f"inflight_window {a.inflight}, worker_pool_size {a.worker_pool_size}")
    m = r["live_m"]
    print(f"live, rule -> Mosquitto:               {r['live']:>10,.0f} msg/s acknowledged "
          f"(fed {a.rate:,.0f} msg/s; {settings}; matched {m['matched']:,}, queuing "
          f"{m['queuing']:,})")
    print(f"buffering, Mosquitto down:             {r['enqueue']:>10,.0f} msg/s queued on disk "
          f"({r['held']:,} held, {r['dropped']:,} dropped as the buffer filled)")
    print(f"draining, Mosquitto back, no MQTT load: {r['drain']:>9,.0f} msg/s "
          f"({r['drained']:,} delivered)")


if __name__ == "__main__":
    main()
