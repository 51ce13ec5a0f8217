#!/usr/bin/env python3
"""What rules cost the broker (issue 14's figures): prints one Markdown table, not a timed test.

Each scenario runs on a freshly started emqpy (bench/compare.py's starter: loopback ports, the
HTTP API on), with the rules created through the REST API before the load starts, and the
emqpy bench load generator (closed loop, so that the broker's own throughput is measured):

- fan-in (10 publishers -> 1 subscriber, QoS 0, 64 B): no rules, then 100 rules whose FROM
  matches none of the traffic;
- the sensor rule ``SELECT payload.temp as t, clientid FROM "sensor/#" WHERE payload.temp > 30``
  with a republish to ``alert/${clientid}``: 10 publishers of ~100-byte JSON payloads that all
  match, one subscriber on ``alert/#`` counting the republished messages; the rule's own
  `matched` and `actions.success` rates are read from its metrics;
- fan-out (1 publisher -> 100 subscribers): no rules, then one ``$events/message_delivered``
  rule (``SELECT clientid, topic FROM "$events/message_delivered" WHERE topic =~ 'alarm/#'``:
  evaluated on every delivery).

    python bench/rules.py                   # 3 repetitions, medians
    python bench/rules.py --reps 1 --duration 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare  # noqa: E402  (bench/compare.py: broker starter, meters, steady runs)
from compare import Cfg, Emqpy, Group, Meter, Outcome, Run, make_certs  # noqa: E402

SENSOR_SQL = 'SELECT payload.temp as t, clientid FROM "sensor/#" WHERE payload.temp > 30'
DELIVERED_SQL = ("SELECT clientid, topic FROM \"$events/message_delivered\" "
                 "WHERE topic =~ 'alarm/#'")
# ~100 bytes of JSON, every message over the threshold
SENSOR_PAYLOAD = json.dumps({"temp": 35.5, "humidity": 61, "unit": "C",
                             "site": "plant-7/line-3", "seq": 123456789}).encode()


def api(b: Emqpy) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{b.http_port}/api/v5",
                        auth=("admin", "public"), timeout=30)


def add_rules(b: Emqpy, rules: list[dict]) -> None:
    with api(b) as c:
        for r in rules:
            resp = c.post("/rules", json=r)
            if resp.status_code != 201:
                raise compare.ScenarioError(f"rule not created: {resp.status_code} {resp.text}")


def rule_metrics(b: Emqpy, rule_id: str) -> dict:
    with api(b) as c:
        return c.get(f"/rules/{rule_id}/metrics").json()["metrics"]


def measured(b: Emqpy, spec, cfg: Cfg, pick, probe=None) -> Outcome:
    """compare.steady, plus `probe()` read at both ends of the measured window."""
    with Run(spec) as run:
        run.start()
        if not run.wait_connected(30):
            raise compare.ScenarioError(f"clients did not connect: {run.totals()}")
        run.go()
        time.sleep(cfg.warmup)
        meter = Meter(b.pid, run).start()
        p0 = probe() if probe else None
        pt0 = time.monotonic()
        a, t0 = run.totals(), time.monotonic()
        time.sleep(cfg.duration)
        z, t1 = run.totals(), time.monotonic()
        p1 = probe() if probe else None
        pt1 = time.monotonic()
        out = Outcome({})
        meter.stop(out)
        # (the probe's window is its own: the rule's rates are over pt1 - pt0)
        out.metrics = pick(run.summary(window=(a, z, t1 - t0)), p0, p1, pt1 - pt0)
        if out.cpu:
            first = next(iter(out.metrics))
            out.metrics[f"{first} per broker CPU-second"] = out.metrics[first] * 100 / out.cpu
        compare._check(run, z, out)
    return out


def fanin(rules: int):
    def run(b, cfg):
        add_rules(b, [{"id": f"nomatch{i}", "sql": f'SELECT * FROM "nomatch/{i}/#"'}
                      for i in range(rules)])
        groups = [Group("sub", 1, topic="bench/#"), Group("pub", 10, topic="bench/%i", size=64)]
        spec = compare._spec(b, groups, cfg, window=5000)
        return measured(b, spec, cfg, lambda r, *_: {"msg/s delivered": r["recv_rate"]})
    return run


def sensor(b, cfg):
    add_rules(b, [{"id": "sensor", "sql": SENSOR_SQL, "actions": [
        {"function": "republish", "args": {"topic": "alert/${clientid}", "payload": "${t}"}}]}])
    groups = [Group("sub", 1, topic="alert/#"),
              Group("pub", 10, topic="sensor/%i", payload=SENSOR_PAYLOAD)]
    spec = compare._spec(b, groups, cfg, window=5000)

    def pick(r, m0, m1, secs):
        return {"republished msg/s received": r["recv_rate"],
                "rule matched/s": (m1["matched"] - m0["matched"]) / secs,
                "republish actions/s": (m1["actions.success"] - m0["actions.success"]) / secs,
                "failed actions": m1["actions.failed"]}
    return measured(b, spec, cfg, pick, probe=lambda: rule_metrics(b, "sensor"))


def fanout(with_rule: bool):
    def run(b, cfg):
        if with_rule:
            add_rules(b, [{"id": "delivered", "sql": DELIVERED_SQL}])
        groups = [Group("sub", 100, topic="fanout/1"), Group("pub", 1, topic="fanout/1",
                                                              size=64)]
        spec = compare._spec(b, groups, cfg, window=100000, fanout=100)
        return measured(b, spec, cfg, lambda r, *_: {"deliveries/s": r["recv_rate"]})
    return run


SCENARIOS = [
    ("fan-in, no rules", fanin(0)),
    ("fan-in, 100 rules not matching", fanin(100)),
    ("sensor rule + republish", sensor),
    ("fan-out x100, no rules", fanout(False)),
    ("fan-out x100, $events/message_delivered rule", fanout(True)),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=1.5)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--only", default="", help="run the scenarios whose name contains this")
    a = ap.parse_args(argv)
    scenarios = [(n, f) for n, f in SCENARIOS if a.only in n]
    cfg = Cfg(warmup=a.warmup, duration=a.duration, latency_duration=a.duration, conns=0,
              retained_topics=0, retained_subs=0, retained_timeout=0, workers=a.workers,
              quick=False)
    import tempfile
    certs = make_certs(tempfile.mkdtemp(prefix="rules-bench-"))
    results: dict[str, list[Outcome]] = {name: [] for name, _ in scenarios}
    for rep in range(a.reps):
        for name, fn in scenarios:
            print(f"[{rep + 1}/{a.reps}] {name}", file=sys.stderr, flush=True)
            b = Emqpy(certs)
            try:
                b.start()
                o = fn(b, cfg)
                print(f"    {o.metrics} cpu={compare.fmt(o.cpu)}% "
                      f"other={compare.fmt(o.other_cpu)}% {' '.join(o.notes)}",
                      file=sys.stderr, flush=True)
                results[name].append(o)
            except compare.ScenarioError as e:
                print(f"    failed: {e}", file=sys.stderr)
            finally:
                b.stop()
    print(f"| scenario | metric | median of {a.reps} | broker CPU% | other CPU% |")
    print("|---|---|---|---|---|")
    for name, outs in results.items():
        keys = list(dict.fromkeys(k for o in outs for k in o.metrics))
        for i, k in enumerate(keys):
            v = statistics.median(o.metrics[k] for o in outs if o.metrics.get(k) is not None)
            cpu = compare.fmt(statistics.median(o.cpu for o in outs)) if i == 0 else ""
            other = compare.fmt(statistics.median(o.other_cpu for o in outs)) if i == 0 else ""
            print(f"| {name if i == 0 else ''} | {k} | {compare.fmt(v)} | {cpu} | {other} |")

    def ratio(a_name, b_name, key):
        try:
            x = statistics.median(o.metrics[key] for o in results[a_name])
            y = statistics.median(o.metrics[key] for o in results[b_name])
        except (statistics.StatisticsError, KeyError, TypeError):
            return "n/a"
        return f"{x / y:.0%}" if y else "n/a"
    print()
    print(f"- 100 non-matching rules vs none (fan-in): "
          f"{ratio('fan-in, 100 rules not matching', 'fan-in, no rules', 'msg/s delivered')}")
    print(f"- message_delivered rule vs none (fan-out): "
          f"{ratio('fan-out x100, $events/message_delivered rule', 'fan-out x100, no rules', 'deliveries/s')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
