"""The dashboard monitor: samples the broker every ``dashboard.sample_interval`` (10 s by
default) in the broker's event loop and stores each sample in SQLite (emqpy.monitor.storage),
as EMQX's emqx_dashboard_monitor does.

    setup(broker) / await teardown(broker) in emqpy.monitor (its FEATURE manifest) start and
    stop it; ``get(broker)`` is the broker's Monitor (``broker.monitor``).

A sample holds gauges (connections, live_connections, topics, subscriptions, ...) and, for the
counters (received, sent, dropped, ...), the increase since the previous sample. Samples are
taken at wall-clock multiples of the interval, so that nodes of a cluster line up. Samples
older than 7 days are deleted and aged ones compacted every 10 minutes.
"""
from __future__ import annotations

import asyncio
import logging
import time

from emqpy.background import BackgroundTask
from emqpy.monitor import node, storage

log = logging.getLogger("emqpy.monitor")

CLEAN_INTERVAL = 600.0  # seconds between retention/compaction passes
RATE_KEYS = {"received": "received_msg_rate", "sent": "sent_msg_rate",
             "validation_succeeded": "validation_succeeded_rate",
             "validation_failed": "validation_failed_rate",
             "transformation_succeeded": "transformation_succeeded_rate",
             "transformation_failed": "transformation_failed_rate",
             "dropped": "dropped_msg_rate", "persisted": "persisted_rate"}
# Cluster-level figures only /monitor_current (not the per-node variant) reports.
CLUSTER_ONLY = ("subscriptions_durable", "disconnected_durable_sessions")
# Figures of /monitor_current that are the same on every node of a cluster (not summed).
CLUSTER_SYNCED_NOW = storage.CLUSTER_SYNCED + ("retained_msg_count", "shared_subscriptions")
# Each counter of a sample is the broker metric "messages.<name>".
_METRIC_OF = {key: "messages." + key for key in RATE_KEYS}


def now_ms() -> int:
    return int(time.time() * 1000)


class Monitor:
    def __init__(self, broker):
        self.broker = broker
        self.last: tuple[int, dict] | None = None  # (time ms, raw cumulative sample)
        self._task = BackgroundTask(self._run, "emqpy-monitor")
        self._writes: set[asyncio.Task] = set()

    @property
    def interval(self) -> float:
        """Seconds between samples (dashboard.sample_interval, 1..60 s)."""
        return self.broker.config.dashboard.sample_interval

    # -- sampling -------------------------------------------------------------------------------

    def sample(self) -> dict[str, int]:
        """Gauges and cumulative counters now (EMQX's sample/1)."""
        stats = node.node_stats(self.broker)
        metrics = self.broker.metrics.snapshot()
        durable = stats.get("durable_subscriptions.count", 0)
        data = {
            # emqpy's durable sessions (emqpy.durable) are in memory too: counted in
            # connections.count and subscriptions.count, from which EMQX keeps its apart
            "disconnected_durable_sessions": 0,
            "subscriptions_durable": durable,
            "subscriptions": stats.get("subscriptions.count", 0) - durable,
            "topics": stats.get("topics.count", 0),
            "connections": stats.get("connections.count", 0),
            "live_connections": stats.get("live_connections.count", 0),
        }
        for key, metric in _METRIC_OF.items():
            data[key] = metrics.get(metric, 0)
        return data

    def tick(self, time_ms: int) -> tuple[int, dict]:
        """Take a sample at ``time_ms``; returns what to store (counters as deltas)."""
        now = self.sample()
        stored = dict(now)
        if self.last is not None:
            last = self.last[1]
            for key in storage.DELTAS:
                # never negative (a counter reset must not show as a negative rate)
                stored[key] = max(0, now[key] - last.get(key, 0))
        self.last = (time_ms, now)
        return time_ms, stored

    async def _run(self) -> None:
        store = self.broker.store
        last_clean = 0.0
        while True:
            interval_ms = int(self.interval * 1000)
            t = now_ms()
            next_t = t - t % interval_ms + interval_ms
            await asyncio.sleep((next_t - t) / 1000)
            try:
                ts, data = self.tick(next_t)
                await asyncio.to_thread(storage.store_sample, store, ts, data)
                if time.monotonic() - last_clean >= CLEAN_INTERVAL:
                    last_clean = time.monotonic()
                    await asyncio.to_thread(self._clean, store)
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed sample or write loses one sample, not the sampler
                if store is None or store.closed:
                    return
                log.exception("storing monitor sample failed")

    @staticmethod
    def _clean(store) -> None:
        t = now_ms()
        storage.clean(store, t)
        storage.downsample_stored(store, t)

    def start(self) -> None:
        if self.broker.store is not None:
            self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    # -- queries ------------------------------------------------------------------------------

    def current_rate(self, *, node_only: bool) -> dict[str, int]:
        """GET /monitor_current: gauges now and counters per second since the last sample
        (EMQX's current_rate: (now - last) * 1000 div elapsed ms)."""
        t = now_ms()
        now = self.sample()
        out = {k: now[k] for k in storage.GAUGES}
        last = self.last
        for key, rate_key in RATE_KEYS.items():
            if last is None or t <= last[0]:
                out[rate_key] = 0
            else:
                out[rate_key] = max(0, now[key] - last[1].get(key, 0)) * 1000 // (t - last[0])
        stats = node.node_stats(self.broker)
        out["retained_msg_count"] = stats.get("retained.count", 0)
        out["shared_subscriptions"] = stats.get("subscriptions.shared.count", 0)
        if node_only:
            out["node_uptime"] = node.uptime_ms(self.broker)
            for key in CLUSTER_ONLY:
                out.pop(key, None)
        else:
            out = adjust_cluster(out)
        return out

    def node_rate(self, with_cluster_figures: bool) -> dict[str, int]:
        """This node's /monitor_current/nodes/{node}, with the cluster-level figures too when
        they are to be merged with the other nodes' (a cluster's /monitor_current)."""
        out = self.current_rate(node_only=True)
        if with_cluster_figures:
            now = self.sample()
            out.update({k: now[k] for k in CLUSTER_ONLY})
        return out

    async def samples(self, latest: int | None, *, cluster: bool) -> list[dict]:
        """GET /monitor: stored samples of the last ``latest`` seconds (all when None), oldest
        first, each with ``time_stamp`` (ms). A window longer than the retention period is cut
        to it: nothing older is stored, and the gap filling would otherwise build an empty
        entry per bucket back to ``since`` (83,000 of them for ``latest=50000000``)."""
        now = now_ms()
        since = 0 if latest is None else max(now - storage.RETENTION, now - latest * 1000)
        store = self.broker.store
        if store is None:
            return []
        stored = await asyncio.to_thread(storage.load_since, store, since)
        data = storage.downsample(since, stored)
        if cluster:  # one node: the cluster merge is this node's data plus derived fields
            data = {ts: adjust_cluster(d) for ts, d in data.items()}
        data = storage.fill_gaps(data, since)
        return [{**data[ts], "time_stamp": ts} for ts in sorted(data)]


def adjust_cluster(m: dict) -> dict:
    """Cluster-wide figures EMQX derives: subscriptions include durable ones (and
    ``subscriptions_ram`` keeps the in-memory count), connections include disconnected
    durable sessions."""
    out = dict(m)
    ram = out.get("subscriptions", 0)
    out["subscriptions"] = ram + out.get("subscriptions_durable", 0)
    out["subscriptions_ram"] = ram
    out["connections"] = out.get("connections", 0) + out.get("disconnected_durable_sessions", 0)
    return out


def get(broker) -> Monitor:
    """The broker's monitor (created on first use, sampling or not)."""
    if broker.monitor is None:
        broker.monitor = Monitor(broker)
    return broker.monitor


async def stop(broker) -> None:
    mon = broker.monitor
    if mon is not None:
        await mon.stop()
