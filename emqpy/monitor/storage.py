"""Monitor samples in the SQLite store (table ``monitor_samples``), kept for 7 days.

A row is one sample: ``time`` (epoch ms, aligned to the sample interval) and ``data`` (JSON
object of gauge values and counter deltas). As in EMQX, older data is compacted into wider
buckets so the table stays around a thousand rows: up to 1 h old, 10 s buckets; up to 1 day,
1 min; up to 3 days, 5 min; older, 10 min.

These functions are synchronous (SQLite, fsync): call them off the event loop.
"""
from __future__ import annotations

import json

from emqpy.store import register_migrations

COMPONENT = "monitor"
register_migrations(COMPONENT, [
    "CREATE TABLE monitor_samples (time INTEGER PRIMARY KEY, data TEXT NOT NULL)",  # v1
])

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
RETENTION = 7 * DAY

GAUGES = ("disconnected_durable_sessions", "subscriptions_durable", "subscriptions", "topics",
          "connections", "live_connections")
DELTAS = ("received", "sent", "validation_succeeded", "validation_failed",
          "transformation_succeeded", "transformation_failed", "dropped", "persisted")
SAMPLER_KEYS = GAUGES + DELTAS
# Gauges that are the same on every node (a cluster merge takes the max, not the sum).
CLUSTER_SYNCED = ("topics", "subscriptions_durable", "disconnected_durable_sessions")


def bucket_interval(age_ms: int) -> int:
    """Width of a bucket for data ``age_ms`` old (EMQX's sample_interval/1)."""
    if age_ms <= 60 * SECOND:
        return SECOND
    if age_ms <= HOUR:
        return 10 * SECOND
    if age_ms <= DAY:
        return MINUTE
    if age_ms <= 3 * DAY:
        return 5 * MINUTE
    return 10 * MINUTE


def merge_local(newer: dict, older: dict) -> dict:
    """Two samples of one node into one bucket: gauges keep the newer value, deltas add up."""
    out = dict(older)
    for key in SAMPLER_KEYS:
        if key in newer or key in older:
            if key in DELTAS:
                out[key] = newer.get(key, 0) + older.get(key, 0)
            else:
                out[key] = newer.get(key, older.get(key, 0))
    return out


def store_sample(store, time_ms: int, data: dict) -> None:
    store.execute("INSERT INTO monitor_samples(time, data) VALUES (?, ?) "
                  "ON CONFLICT(time) DO UPDATE SET data=excluded.data",
                  (int(time_ms), json.dumps(data, separators=(",", ":"))))


def load_since(store, since_ms: int) -> dict[int, dict]:
    rows = store.query("SELECT time, data FROM monitor_samples WHERE time >= ? ORDER BY time",
                       (int(since_ms),))
    return {row["time"]: json.loads(row["data"]) for row in rows}


def clean(store, now_ms: int, retention_ms: int = RETENTION) -> int:
    return store.execute("DELETE FROM monitor_samples WHERE time < ?", (now_ms - retention_ms,))


def compact(now_ms: int, samples: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
    """Ordered (time, data) pairs merged into buckets as wide as their age calls for."""
    out: list[tuple[int, dict]] = []
    for ts, data in samples:
        width = bucket_interval(now_ms - ts)
        bucket = ts - ts % width
        if out and out[-1][0] == bucket:
            out[-1] = (bucket, merge_local(data, out[-1][1]))
        else:
            out.append((bucket, data))
    return out


def downsample_stored(store, now_ms: int) -> None:
    """Rewrite the table with aged data compacted (EMQX's in-place downsampling)."""
    with store.transaction() as conn:
        rows = conn.execute("SELECT time, data FROM monitor_samples ORDER BY time").fetchall()
        original = [(r["time"], json.loads(r["data"])) for r in rows]
        compacted = compact(now_ms, original)
        if compacted == original:
            return
        keep = dict(compacted)
        for ts, data in original:
            if ts not in keep:
                conn.execute("DELETE FROM monitor_samples WHERE time=?", (ts,))
        before = dict(original)
        for ts, data in compacted:
            if before.get(ts) != data:
                conn.execute("INSERT INTO monitor_samples(time, data) VALUES (?, ?) ON CONFLICT"
                             "(time) DO UPDATE SET data=excluded.data",
                             (ts, json.dumps(data, separators=(",", ":"))))


def downsample(since_ms: int, samples: dict[int, dict]) -> dict[int, dict]:
    """Samples for a query: buckets as wide as the queried window calls for."""
    if len(samples) < 2:
        return dict(samples)
    stamps = sorted(samples)
    width = bucket_interval(stamps[-1] - since_ms)
    out: dict[int, dict] = {}
    for ts in stamps:
        bucket = ts - ts % width
        out[bucket] = merge_local(samples[ts], out.get(bucket, {}))
    return out


def fill_gaps(samples: dict[int, dict], since_ms: int) -> dict[int, dict]:
    """Empty entries where no sample exists between the first and last bucket, so a chart has
    an evenly spaced time axis."""
    if len(samples) < 2:
        return samples
    stamps = sorted(samples)
    first, latest = stamps[0], stamps[-1]
    width = bucket_interval(latest - since_ms)
    start = since_ms - since_ms % width
    if start == 0 or start == first:
        start = first
    out = dict(samples)
    t = start
    while t < latest:
        out.setdefault(t, {})
        t += width
    return out
