#!/usr/bin/env python3
"""What persistent sessions on disk (emqpy/durable) cost, in one run: the same scenarios on

- base: the build without them (a commit given with --base, exported and compiled in a
  temporary folder; default: the merge base with main),
- off: this build with durable_sessions.enable = false (sessions in memory only),
- on: this build as shipped (durable_sessions.enable = true),

alternated (base off on base off on ...), a fresh broker per run, medians and the spread
(min-max) over the repetitions. Scenarios (MQTT 3.1.1, 64-byte payloads):

- qos0: QoS 0 fan-in, 10 publishers -> 1 clean subscriber (compare.py's fanin)
- qos1-clean: QoS 1, 10 pairs of clean sessions, 10 in flight per publisher
- qos1-persistent: the same with subscribers that have persistent sessions (clean session
  0): every delivery is in the window, then acknowledged
- qos1-offline: 10 publishers to 10 persistent subscribers that are offline: every PUBLISH is
  queued for them and its PUBACK waits until that is on disk (acknowledgements/s)

    python bench/durable_sessions.py [--reps 5] [--duration 3] [--scenarios ...]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from compare import (Cfg, Emqpy, Group, ScenarioError, _spec, fmt, make_certs,  # noqa: E402
                     steady)


def _fanin(b, cfg):
    groups = [Group("sub", 1, topic="bench/#"), Group("pub", 10, topic="bench/%i", size=64)]
    return steady(b, _spec(b, groups, cfg), cfg, cfg.duration,
                  lambda r: {"msg/s": r["recv_rate"]})


def _qos1(clean: bool):
    def run(b, cfg):
        groups = [Group("sub", 10, topic="qos/%i", qos=1),
                  Group("pub", 10, topic="qos/%i", qos=1, size=64, inflight=10)]
        return steady(b, _spec(b, groups, cfg, clean=clean), cfg, cfg.duration,
                      lambda r: {"msg/s": r["recv_rate"]})
    return run


def _offline(b, cfg):
    """Persistent subscribers subscribe and leave (a paho client each), then publishers run."""
    import paho.mqtt.client as paho

    for i in range(10):
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"offline-{i}",
                        protocol=paho.MQTTv311, clean_session=False)
        c.connect("127.0.0.1", b.port)
        c.loop_start()
        info = c.subscribe(f"off/{i}", 1)
        deadline = time.monotonic() + 10
        while not c.is_connected() or info[0] != 0:
            if time.monotonic() > deadline:
                raise ScenarioError("offline subscriber did not subscribe")
            time.sleep(0.01)
        time.sleep(0.2)
        c.disconnect()
        c.loop_stop()
    groups = [Group("pub", 10, topic="off/%i", qos=1, size=64, inflight=10)]
    return steady(b, _spec(b, groups, cfg), cfg, cfg.duration,
                  lambda r: {"acks/s": r["ack_rate"]})


SCENARIOS = {"qos0": _fanin, "qos1-clean": _qos1(True), "qos1-persistent": _qos1(False),
             "qos1-offline": _offline}


def fsync_ms(folder: str, n: int = 50) -> float:
    """Median milliseconds of a 4 KiB append + fdatasync in `folder`: what each commit of the
    session journal waits for (on a shared machine it varies by an order of magnitude)."""
    path = os.path.join(folder, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    times = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 4096)
            t = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    return statistics.median(times)


def export_base(commit: str, into: str) -> str:
    """The tree of `commit`, with its compiled codec, in `into`."""
    root = os.path.dirname(HERE)
    archive = subprocess.run(["git", "-C", root, "archive", commit], check=True,
                             capture_output=True).stdout
    os.makedirs(into)
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=into,
                   check=True, capture_output=True)
    return into


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--base", default=None, help="commit of the build without durable "
                    "sessions (default: git merge-base HEAD main)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args(argv)
    names = [n.strip() for n in a.scenarios.split(",")]
    for n in names:
        if n not in SCENARIOS:
            ap.error(f"unknown scenario {n}")
    root = os.path.dirname(HERE)
    base = a.base or subprocess.run(["git", "-C", root, "merge-base", "HEAD", "main"],
                                    check=True, capture_output=True,
                                    text=True).stdout.strip()
    tmp = tempfile.mkdtemp(prefix="durable-bench-")
    try:
        base_root = export_base(base, os.path.join(tmp, "base"))
        os.makedirs(os.path.join(tmp, "certs"))
        certs = make_certs(os.path.join(tmp, "certs"))
        variants = {}
        for label, vroot, enable in (("base", base_root, "false"), ("off", root, "false"),
                                     ("on", root, "true")):
            e = Emqpy(certs)
            e.root = vroot
            e.env = {"EMQX_DURABLE_SESSIONS__ENABLE": enable}
            variants[label] = e
        cfg = Cfg(warmup=a.warmup, duration=a.duration, latency_duration=a.duration, conns=0,
                  retained_topics=0, retained_subs=0, retained_timeout=0, workers=a.workers,
                  quick=False)
        results: dict = {n: {v: [] for v in variants} for n in names}
        syncs: list[float] = []
        for n in names:
            for rep in range(a.reps):
                for label, b in variants.items():
                    try:
                        if label == "on":
                            syncs.append(fsync_ms(tmp))
                        b.start()
                        o = SCENARIOS[n](b, cfg)
                        (key, value), = o.metrics.items()
                        results[n][label].append(value)
                        print(f"{n} #{rep + 1} {label}: {value:,.0f} {key} cpu={fmt(o.cpu)}% "
                              f"other={fmt(o.other_cpu)}% {' '.join(o.notes)}",
                              file=sys.stderr, flush=True)
                    except ScenarioError as ex:
                        print(f"{n} #{rep + 1} {label}: failed: {ex}", file=sys.stderr)
                    finally:
                        b.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if syncs:
        print(f"fdatasync of 4 KiB before the 'on' runs: median {statistics.median(syncs):.2f} "
              f"ms (min {min(syncs):.2f}, max {max(syncs):.2f})")
    print(f"base = {base[:10]}; {a.reps} repetitions, {a.duration:g} s measured each; "
          "median (min-max)\n")
    print("| scenario | base | off | on | on/base | on/off |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for n in names:
        r = results[n]
        med = {v: statistics.median(x) if x else None for v, x in r.items()}
        cells = [f"{med[v]:,.0f} ({min(r[v]):,.0f}-{max(r[v]):,.0f})" if r[v] else "n/a"
                 for v in variants]
        ratio = [f"{med['on'] / med[d]:.2f}" if med["on"] and med[d] else "n/a"
                 for d in ("base", "off")]
        print(f"| {n} | " + " | ".join(cells + ratio) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
