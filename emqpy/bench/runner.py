"""The parent side of a bench run: forks worker processes, reads their shared counters, prints
one progress line per second and computes the summary."""
from __future__ import annotations

import multiprocessing as mp
import sys
import threading
import time

from .hist import NBUCKETS, percentiles
from .spec import (FIELD_NAMES, FIRST_CONN_US, GO, LAST_CONNACK_US, NFIELDS, READY, STOP,
                    Spec)
from .worker import worker_main


def _si(x: float) -> str:
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.1f}{suf}"
    return f"{x:.0f}"


def _ms(us) -> str:
    return "-" if us is None else f"{us / 1000:.2f}ms"


class Run:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.nworkers = max(1, min(spec.workers, spec.total_clients or 1))
        self.stats = mp.RawArray("q", self.nworkers * NFIELDS)
        self.hist = mp.RawArray("q", self.nworkers * NBUCKETS)
        self.ctrl = mp.RawArray("q", 4)
        self.procs: list = []
        self.t_start = self.t_go = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, go: bool = False):
        """Fork the workers; with go=True publishers start as soon as they are connected."""
        if go:
            self.ctrl[GO] = 1
        # fork is cheapest; but forking a process that runs other threads (an embedded broker,
        # a test harness) can deadlock the child on locks those threads held, so spawn then.
        ctx = mp.get_context("fork" if threading.active_count() == 1 else "spawn")
        for i in range(self.nworkers):
            p = ctx.Process(target=worker_main, name=f"bench-worker-{i}", daemon=True,
                            args=(i, self.nworkers, self.spec, self.stats, self.hist, self.ctrl))
            p.start()
            self.procs.append(p)
        # Clocks start when every worker runs its loop: spawned workers (see above) take a
        # while to import, and that is not load time.
        deadline = time.monotonic() + 30
        while (sum(self.stats[READY::NFIELDS]) < self.nworkers and self.alive()
               and time.monotonic() < deadline):
            time.sleep(0.005)
        self.t_start = time.monotonic()
        if go:
            self.t_go = self.t_start
        return self

    def go(self):
        self.ctrl[GO] = 1
        self.t_go = time.monotonic()

    def alive(self) -> bool:
        return any(p.is_alive() for p in self.procs)

    def stop(self, timeout: float = 5.0):
        self.ctrl[STOP] = 1
        deadline = time.monotonic() + timeout
        for p in self.procs:
            p.join(max(0.1, deadline - time.monotonic()))
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.procs:
            self.stop()

    # -- reading -------------------------------------------------------------------------
    def totals(self) -> dict:
        st = self.stats[:]
        out = {}
        for f, name in enumerate(FIELD_NAMES):
            col = st[f::NFIELDS]
            if f == FIRST_CONN_US:
                vals = [v for v in col if v]
                out[name] = min(vals) if vals else 0
            elif f == LAST_CONNACK_US:
                out[name] = max(col)
            else:
                out[name] = sum(col)
        return out

    def hist_counts(self) -> list[int]:
        h = self.hist[:]
        n = NBUCKETS
        return [sum(h[w * n + i] for w in range(self.nworkers)) for i in range(n)]

    def connect_done(self) -> bool:
        """Every client has connected or failed, and every subscriber has its SUBACK."""
        t = self.totals()
        s = self.spec
        # (a subscriber that failed to connect will never get a SUBACK)
        return (t["started"] >= s.total_clients
                and t["subscribed"] + t["sub_fail"] + t["conn_fail"] >= s.count("sub")
                and t["connacks"] + t["conn_fail"] >= s.total_clients)

    def wait_connected(self, timeout: float, poll: float = 0.01) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connect_done():
                return True
            if not self.alive():
                return False
            time.sleep(poll)
        return self.connect_done()

    # -- reporting -----------------------------------------------------------------------
    def progress_line(self, prev: dict | None, cur: dict, dt: float, elapsed: float) -> str:
        s = self.spec
        def rate(k):
            return (cur[k] - prev[k]) / dt if prev and dt > 0 else 0.0
        parts = [f"[{elapsed:6.1f}s]", f"conn {cur['connected']}/{s.total_clients}"
                 f" ({rate('connacks'):.0f}/s)"]
        if s.count("sub"):
            parts.append(f"sub {cur['subscribed']}")
        if s.count("pub"):
            parts.append(f"pub {_si(cur['sent'])} ({_si(rate('sent'))}/s)")
            if any(g.qos for g in s.groups if g.role == "pub"):
                parts.append(f"ack {_si(cur['acked'])}")
        if s.count("sub"):
            parts.append(f"recv {_si(cur['received'])} ({_si(rate('received'))}/s)")
        parts.append(f"err {cur['conn_fail'] + cur['errors'] + cur['sub_fail'] + cur['pub_errors']}")
        if any(g.latency for g in s.groups if g.role == "sub"):
            p = percentiles(self.hist_counts(), (50, 99))
            parts.append(f"lat p50 {_ms(p['p50'])} p99 {_ms(p['p99'])}")
        return " | ".join(parts)

    def summary(self, window: tuple[dict, dict, float] | None = None,
                hist_base: list[int] | None = None) -> dict:
        """Totals plus rates; rates over `window` = (totals at start, totals at end, seconds)
        when given, else over the time since go."""
        t = self.totals()
        out = dict(t)
        if window is None:
            secs = time.monotonic() - (self.t_go or self.t_start)
            a = {k: 0 for k in t}
            b = t
        else:
            a, b, secs = window
        out["seconds"] = round(secs, 3)
        for k, name in (("sent", "pub_rate"), ("received", "recv_rate"), ("acked", "ack_rate")):
            out[name] = (b[k] - a[k]) / secs if secs > 0 else 0.0
        if t["connacks"] and t["last_connack_us"] > t["first_conn_us"]:
            out["conn_rate"] = t["connacks"] / ((t["last_connack_us"] - t["first_conn_us"]) / 1e6)
        else:
            out["conn_rate"] = 0.0
        h = self.hist_counts()
        if hist_base:
            h = [x - y for x, y in zip(h, hist_base)]
        out["latency_us"] = percentiles(h)
        return out


def format_summary(res: dict) -> str:
    lines = [f"connected {res['connacks']} (failed {res['conn_fail']}, "
             f"{res['conn_rate']:.0f} conn/s), errors {res['errors']}"]
    if res["sent"]:
        lines.append(f"published {res['sent']} ({res['pub_rate']:.0f} msg/s), "
                     f"acked {res['acked']}")
    if res["received"] or res["subscribed"]:
        lines.append(f"received {res['received']} ({res['recv_rate']:.0f} msg/s)")
    lat = res["latency_us"]
    if lat["count"]:
        lines.append("latency " + " ".join(f"{k} {_ms(v)}" for k, v in lat.items()
                                           if k != "count") + f" (n={lat['count']})")
    return "\n".join(lines)


def run_timed(spec: Spec, duration: float, quiet: bool = False, out=None) -> dict:
    """Run until `duration` seconds have passed (or every publisher reached its limit and
    was acknowledged), printing one progress line a second; return the summary."""
    out = out or sys.stderr
    tty = hasattr(out, "isatty") and out.isatty()
    run = Run(spec).start(go=True)
    deadline = run.t_start + duration
    prev, t_prev = {k: 0 for k in run.totals()}, run.t_start
    npub = spec.count("pub")
    qos_pub = any(g.qos for g in spec.groups if g.role == "pub")
    finished = False
    try:
        while True:
            now = time.monotonic()
            nxt = min(deadline, t_prev + 1.0)
            while now < nxt:
                time.sleep(min(0.05, nxt - now))
                now = time.monotonic()
                cur = run.totals()
                if npub and cur["pub_done"] >= npub and (not qos_pub or cur["acked"] >= cur["sent"]):
                    break
                if not run.alive():
                    break
            cur = run.totals()
            if not quiet:
                line = run.progress_line(prev, cur, now - t_prev, now - run.t_start)
                out.write(("\r" + line + "\x1b[K") if tty else line + "\n")
                out.flush()
            prev, t_prev = cur, now
            finished = npub and cur["pub_done"] >= npub and (not qos_pub
                                                               or cur["acked"] >= cur["sent"])
            # every client has finished its handshake and none is connected: nothing to wait for
            gone = cur["started"] >= spec.total_clients and cur["connected"] == 0
            if now >= deadline or finished or gone or not run.alive():
                break
        if finished:
            time.sleep(0.2)  # let the last deliveries arrive at subscribers
    except KeyboardInterrupt:
        pass
    finally:
        res = run.summary()
        run.stop()
        if tty and not quiet:
            out.write("\n")
    return res
