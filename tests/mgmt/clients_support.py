"""Helpers for the clients/subscriptions/topics/publish API tests: a broker with an HTTP client
(Basic auth as the default dashboard user) and real paho MQTT clients."""
from __future__ import annotations

import time
from contextlib import contextmanager

import httpx
import pytest

from protocol.mqttclient import WAIT, MqttClient, props, sub_opts, uid  # noqa: F401


class Env:
    """A started broker (make_broker handle), its API at /api/v5, and MQTT clients that are
    closed at the end of the test."""

    def __init__(self, handle):
        self.h = handle
        self.broker = handle.broker
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{handle.http_port}/api/v5",
                                 auth=("admin", "public"), timeout=30)
        self.clients: list[MqttClient] = []

    def client(self, client_id: str | None = None, *, version: int = 5, clean: bool = True,
               connect: bool = True, **connect_kw) -> MqttClient:
        c = MqttClient(self.h.host, self.h.port, client_id, version=version, clean=clean)
        self.clients.append(c)
        if connect:
            c.connect(**connect_kw)
        return c

    def offline_session(self, prefix: str, topic_filter: str) -> str:
        """A persistent session (expiry 300 s) subscribed to `topic_filter` at QoS 1 whose
        client has gone: messages for it queue. Returns its client id."""
        cid = uid(prefix)
        c = self.client(cid, clean=False, properties=props("CONNECT", SessionExpiryInterval=300))
        c.subscribe(topic_filter, 1)
        c.disconnect()
        wait_until(lambda: not self.ok("GET", f"/clients/{cid}")["connected"])
        return cid

    def get(self, path, **kw):
        return self.http.get(path, **kw)

    def ok(self, method: str, path: str, status: int = 200, **kw):
        r = self.http.request(method, path, **kw)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def close(self):
        for c in self.clients:
            c.close()
        self.http.close()


def wait_until(pred, timeout: float = WAIT, what: str = "condition"):
    """Poll `pred` until it returns a truthy value (for state that settles asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def env(make_broker):
    e = Env(make_broker())
    yield e
    e.close()


@contextmanager
def make_env(make_broker, overrides=None):
    e = Env(make_broker(overrides))
    try:
        yield e
    finally:
        e.close()
