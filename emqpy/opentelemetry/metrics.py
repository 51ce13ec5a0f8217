"""The node's metrics exported over OTLP/gRPC (EMQX's emqx_otel_metrics): every stat and VM
figure as an observable gauge, every broker counter as an observable counter, under EMQX's
names, sent every ``opentelemetry.metrics.interval`` to ``opentelemetry.exporter.endpoint``.

The SDK collects in its own thread; the figures are read in the broker's event loop (one
snapshot per collection), never from that thread.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from urllib.parse import urlsplit

from emqpy.monitor import node

log = logging.getLogger("emqpy.opentelemetry")

# EMQX's names for two counters, and for the VM figures (emqx_otel_metrics)
_RENAMED = {"messages.dropped.await_pubrel_timeout": "messages.dropped.expired",
            "packets.connect.received": "packets.connect"}
_VM = {"cpu_use": "cpu.use", "cpu_idle": "cpu.idle", "run_queue": "run.queue",
       "total_memory": "total.memory", "used_memory": "used.memory",
       "process_total_messages": "process.total.messages"}
SNAPSHOT_TTL = 0.5  # seconds one snapshot serves the callbacks of a collection


def _unit(key: str) -> str:
    return "kb" if key.startswith(("bytes.", "packets.")) else "1"  # (as EMQX labels them)


def _credentials(ssl):
    """gRPC channel credentials from the exporter's ``ssl_options``."""
    import grpc

    def read(path):
        if not path:
            return None
        with open(path, "rb") as f:
            return f.read()
    return grpc.ssl_channel_credentials(read(ssl.cacertfile), read(ssl.keyfile),
                                        read(ssl.certfile))


class MetricsExporter:
    """One OTLP metrics pipeline (its own MeterProvider, not the process-global one: several
    brokers may run in one process)."""

    def __init__(self, broker, conf):
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource

        self.broker = broker
        self.loop = asyncio.get_running_loop()
        self._snap: dict = self._take()
        self._taken = time.monotonic()
        exp = conf.exporter
        secure = urlsplit(exp.endpoint).scheme == "https" or exp.ssl_options.enable
        exporter = OTLPMetricExporter(
            endpoint=exp.endpoint, insecure=not secure,
            credentials=_credentials(exp.ssl_options) if secure else None)
        reader = PeriodicExportingMetricReader(
            exporter, export_interval_millis=conf.metrics.interval * 1000)
        self.provider = MeterProvider(
            resource=Resource.create({"service.name": "emqx",
                                      "service.instance.id": broker.node_name}),
            metric_readers=[reader])
        meter = self.provider.get_meter("emqx")
        for key in self._snap["stats"]:
            self._gauge(meter, key, "stats", key)
        for key, name in _VM.items():
            if key in self._snap["vm"]:
                self._gauge(meter, name, "vm", key)
        for name in ("node.running", "node.stopped"):
            self._gauge(meter, name, "cluster", name)
        for key in self._snap["metrics"]:
            self._counter(meter, _RENAMED.get(key, key), key)

    # -- figures ------------------------------------------------------------------------------

    def _take(self) -> dict:
        b = self.broker
        metrics = node.node_metrics(b)
        if not b.config.overload_protection.enable:  # (EMQX leaves these out then)
            metrics = {k: v for k, v in metrics.items()
                       if not k.startswith("overload_protection.")}
        return {"stats": node.node_stats(b), "vm": node.vm_stats(b), "metrics": metrics,
                "cluster": {"node.running": 1 if b.running else 0, "node.stopped": 0}}

    async def _take_async(self) -> dict:
        return self._take()

    def _values(self) -> dict:
        """The current snapshot, taken in the event loop (called from the SDK's thread)."""
        if time.monotonic() - self._taken > SNAPSHOT_TTL and not self.loop.is_closed():
            try:
                fut = asyncio.run_coroutine_threadsafe(self._take_async(), self.loop)
                self._snap = fut.result(timeout=5)
                self._taken = time.monotonic()
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass  # a busy or stopped loop: the last figures
        return self._snap

    def _gauge(self, meter, name: str, group: str, key: str) -> None:
        from opentelemetry.metrics import Observation

        def observe(_options):
            value = self._values()[group].get(key)
            return [] if value is None else [Observation(value)]
        meter.create_observable_gauge(name, callbacks=[observe], unit="1",
                                      description=f"observable {name} gauge")

    def _counter(self, meter, name: str, key: str) -> None:
        from opentelemetry.metrics import Observation

        def observe(_options):
            value = self._values()["metrics"].get(key)
            return [] if value is None else [Observation(value)]
        meter.create_observable_counter(name, callbacks=[observe], unit=_unit(key),
                                        description=f"observable {name} counter")

    async def close(self) -> None:
        """Export once more and stop (the SDK blocks meanwhile: in a thread)."""
        await asyncio.to_thread(self.provider.shutdown)
