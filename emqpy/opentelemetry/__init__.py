"""OpenTelemetry (EMQX's emqx_opentelemetry): the ``opentelemetry`` config root, its API
(``GET/PUT /opentelemetry``), and while ``metrics.enable`` the node's metrics exported over
OTLP/gRPC to the collector at ``exporter.endpoint`` (``metrics.py``). Traces and logs are not
exported by emqpy: their settings are kept, and the API refuses to switch them on."""
from __future__ import annotations

import logging
import weakref
from typing import Any

from emqpy.feature import Feature

log = logging.getLogger("emqpy.opentelemetry")

# The running exporter of each broker (none while metrics are off); dies with its broker.
_exporters: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def _warn_unsupported(conf) -> None:
    for signal in ("traces", "logs"):
        if getattr(conf, signal).enable:
            log.warning("opentelemetry.%s.enable: emqpy does not export %s; ignored",
                        signal, signal)


def _start(broker) -> None:
    conf = broker.config.opentelemetry
    _warn_unsupported(conf)
    if conf.metrics.enable:
        from emqpy.opentelemetry.metrics import MetricsExporter
        _exporters[broker] = MetricsExporter(broker, conf)
        log.info("exporting metrics over OTLP to %s every %gs", conf.exporter.endpoint,
                 conf.metrics.interval)


async def apply(broker) -> None:
    """Make the exporter follow ``broker.config.opentelemetry``: stop the running one, start
    one if metrics are enabled (a new endpoint or interval takes effect now)."""
    old = _exporters.pop(broker, None)
    if old is not None:
        await old.close()
    _start(broker)


def running(broker) -> bool:
    return broker in _exporters


def setup(broker) -> None:
    try:
        _start(broker)
    except (OSError, ValueError) as e:  # e.g. an unreadable certificate: the broker runs on
        log.error("opentelemetry: cannot export metrics: %s", e)


async def teardown(broker) -> None:
    exporter = _exporters.pop(broker, None)
    if exporter is not None:
        await exporter.close()


FEATURE = Feature("opentelemetry", setup=setup, teardown=teardown,
                  routers=("emqpy.opentelemetry.api",))
