"""Log trace (EMQX's emqx_trace and the /trace API): traces by client id, topic, client IP
address or rule id, each writing its events to a file under ``<data_dir>/trace``.

`setup(broker)` makes ``broker.traces`` (service.TraceService: the stored traces and their
schedule) and starts the traces due; ``broker.tracer`` (tracer.Tracer) is set only while a trace
runs, which is the one thing the broker and the rule engine look at.
"""
from __future__ import annotations

from emqpy.feature import Feature


def setup(broker) -> None:
    from emqpy.trace.service import TraceService

    if broker.traces is not None:  # a restart of the same Broker object
        broker.traces.stop()
    broker.traces = TraceService(broker)
    broker.traces.start()


async def teardown(broker) -> None:
    if broker.traces is not None:
        broker.traces.stop()
        broker.traces = None


FEATURE = Feature("trace", setup=setup, teardown=teardown, routers=("emqpy.trace.api",))
