"""(tests/otel, not tests/opentelemetry: that name would hide the SDK package.)
/opentelemetry: EMQX's config root over the API, and the node's metrics arriving over
OTLP/gRPC at a real receiver (a gRPC MetricsService server started by the test)."""
from __future__ import annotations

import threading
from concurrent import futures

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import (metrics_service_pb2,
                                                      metrics_service_pb2_grpc)

from support.mqttclient import uid
from support.node import assert_error
from support.waiting import wait_until


class Receiver(metrics_service_pb2_grpc.MetricsServiceServicer):
    """An OTLP metrics receiver: keeps every export request."""

    def __init__(self):
        self.requests: list = []
        self.lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def Export(self, request, context):  # noqa: N802 (the gRPC method's name)
        with self.lock:
            self.requests.append(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def latest(self) -> dict:
        """name -> (kind, value, unit) of the newest export, and its resource attributes."""
        with self.lock:
            if not self.requests:
                return {}
            req = self.requests[-1]
        out = {}
        for rm in req.resource_metrics:
            out["$resource"] = {a.key: a.value.string_value for a in rm.resource.attributes}
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    points = getattr(m, kind).data_points
                    p = points[0]
                    value = p.as_int if p.WhichOneof("value") == "as_int" else p.as_double
                    out[m.name] = (kind, value, m.unit)
        return out


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.stop(0)


def test_config_defaults_and_refusals(make_broker):
    n = make_broker()
    conf = n.get("/opentelemetry")
    assert conf["metrics"] == {"enable": False, "interval": "10s"}
    assert conf["exporter"]["endpoint"] == "http://localhost:4317"
    assert conf["traces"] == {"enable": False, "scheduled_delay": "5s",
                              "filter": {"trace_all": False}}
    assert conf["logs"] == {"level": "warning", "enable": False, "scheduled_delay": "1s"}
    assert_error(n.api.put("/opentelemetry", json={"traces": {"enable": True}}), 400,
                 "BAD_REQUEST", "traces.enable")
    assert_error(n.api.put("/opentelemetry", json={"exporter": {"endpoint": "ftp://x:1"}}),
                 400, "BAD_REQUEST", "exporter")
    assert_error(n.api.put("/opentelemetry", json={"metrics": {"interval": "0s"}}), 400,
                 "BAD_REQUEST", "metrics.interval")
    assert n.get("/opentelemetry") == conf  # nothing changed


def test_metrics_reach_an_otlp_receiver(make_broker, receiver):
    n = make_broker()
    body = n.ok("PUT", "/opentelemetry", json={
        "metrics": {"enable": True, "interval": "1s"},
        "exporter": {"endpoint": f"http://127.0.0.1:{receiver.port}"}})
    assert body["metrics"] == {"enable": True, "interval": "1s"}
    assert n.get("/configs", params={"key": "opentelemetry"}, headers={
        "accept": "text/plain"}).count("127.0.0.1") == 1
    pub = n.mqtt(uid("otel"))
    for _ in range(3):
        pub.publish("otel/t", b"x", qos=1)
    wait_until(lambda: receiver.latest().get("messages.received", (0, 0))[1] >= 3, timeout=15)
    got = receiver.latest()
    assert got["$resource"]["service.name"] == "emqx"
    assert got["$resource"]["service.instance.id"] == n.name
    assert got["messages.received"][0] == "sum" and got["messages.received"][2] == "1"
    assert got["bytes.received"][2] == "kb"  # (EMQX's unit for it)
    assert got["connections.count"][0] == "gauge" and got["connections.count"][1] >= 1
    assert "packets.connect" in got and "node.running" in got and "total.memory" in got

    n.restart()  # the setting was saved: the exporter starts with the broker
    before = receiver.count()
    wait_until(lambda: receiver.count() >= before + 2, timeout=15)

    n.ok("PUT", "/opentelemetry", json={"metrics": {"enable": False}})
    stopped = receiver.count()
    import time
    time.sleep(2.5)
    assert receiver.count() <= stopped + 1  # (at most the final export of the shutdown)
