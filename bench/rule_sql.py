#!/usr/bin/env python3
"""How many messages per second one core pushes through a compiled rule SQL (no broker).

    python bench/rule_sql.py [--seconds 1.0]

For a few typical rules it evaluates the rule on EMQX-shaped message columns (a ~100-byte JSON
payload, decoded once per evaluation) and prints evaluations/s and microseconds per
evaluation, best of three runs. Functions (e.g. `upper`) are left out until
emqpy.rule_engine.funcs is present; those rules are then skipped with a note.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from emqpy.rule_engine.sql import compile_sql  # noqa: E402  (this checkout's emqpy)

RULES = [
    ("issue 14's rule (matching)",
     'SELECT payload.temp as t, clientid FROM "sensor/#" WHERE payload.temp > 30', 31.5),
    ("issue 14's rule (filtered out)",
     'SELECT payload.temp as t, clientid FROM "sensor/#" WHERE payload.temp > 30', 20.0),
    ("SELECT * (no payload read)", 'SELECT * FROM "sensor/#"', 31.5),
    ("nested fields + AND",
     "SELECT payload.meta.site as site, payload.temp as t, topic FROM \"sensor/#\" "
     "WHERE payload.temp > 30 and payload.meta.site = 'lab' and qos in (0, 1)", 31.5),
    ("CASE WHEN",
     "SELECT case when payload.temp > 30 then 'hot' else 'ok' end as state, clientid "
     'FROM "sensor/#"', 31.5),
    ("nested alias into payload",
     "SELECT payload, 'checked' as payload.meta.state FROM \"sensor/#\"", 31.5),
    ("FOREACH over an array",
     "FOREACH payload.readings as r DO r.v as v, clientid INCASE r.v > 1 FROM \"sensor/#\"",
     31.5),
    ("function call (funcs)",
     "SELECT upper(clientid) as c, payload.temp + 1 as t1 FROM \"sensor/#\"", 31.5),
]


def columns(temp: float) -> dict:
    payload = ('{"temp": %s, "hum": 40.2, "meta": {"site": "lab", "unit": "C"}, '
               '"readings": [{"v": 1}, {"v": 2}, {"v": 3}]}' % temp)
    return {
        "id": "0006173B4E5C2F61F4430000000A0001", "clientid": "sensor-0001",
        "username": "u1", "payload": payload, "peerhost": "127.0.0.1", "topic": "sensor/1/temp",
        "qos": 1, "flags": {"retain": False, "dup": False}, "pub_props": {},
        "headers": {}, "timestamp": 1733480000000, "publish_received_at": 1733480000000,
        "node": "emqx@127.0.0.1", "event": "message.publish",
        "metadata": {"rule_id": "bench"},
    }


def measure(rule, cols, seconds: float) -> float:
    evaluate = rule.evaluate
    best = 0.0
    for _ in range(3):
        n, batch = 0, 2000
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(batch):
                evaluate(cols)
            n += batch
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per run (3 runs per rule)")
    args = parser.parse_args()
    print(f"{'rule':34} {'evaluations/s':>14} {'us/eval':>8}")
    for label, sql, temp in RULES:
        rule = compile_sql(sql)
        cols = columns(temp)
        try:
            rule.evaluate(cols)
        except Exception as exc:  # a function not available yet: say so, measure the rest
            print(f"{label:34} {'skipped':>14}  ({type(exc).__name__}: {exc})")
            continue
        rate = measure(rule, cols, args.seconds)
        print(f"{label:34} {rate:14,.0f} {1e6 / rate:8.2f}")


if __name__ == "__main__":
    main()
