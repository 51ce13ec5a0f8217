"""Fixtures for the HTTP API tests: a real broker (and its dashboard listener on a free port).

``emqpy.testing.BrokerThread`` is used when present; otherwise an equivalent local thread runs an
``emqpy.Broker`` in its own event loop. Both are the real server over real sockets. The harness
can be restarted on the same data dir (persistence tests), which the shared ``make_broker``
fixture does not offer.
"""
from __future__ import annotations

import asyncio
import copy
import threading
from pathlib import Path

import httpx
import pytest

from emqpy.api import app as api_app

PROBE_MODULE = "api.probe_api"  # tests/ is on sys.path (tests/api is a package)


def _merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in (b or {}).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class _LocalBrokerThread:
    def __init__(self, overrides: dict, data_dir: str):
        self.overrides, self.data_dir = overrides, data_dir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self):
        import emqpy

        self.thread.start()
        self.broker = emqpy.Broker(self.overrides, data_dir=self.data_dir)
        self.call(self.broker.start)
        self.http_port = self.broker.api.port if self.broker.api else None

    def call(self, fn, *args):
        return asyncio.run_coroutine_threadsafe(fn(*args), self.loop).result(60)

    def stop(self):
        try:
            self.call(self.broker.stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


class ApiHarness:
    """A started broker: ``.url(path)``, ``.client(**kw)``, ``.store``, ``.restart()``."""

    BASE = {"listeners": {"tcp": {"default": {"bind": "127.0.0.1:0"}}},
            "dashboard": {"listeners": {"http": {"bind": "127.0.0.1:0"}}}}

    def __init__(self, data_dir: Path, overrides: dict | None = None):
        self.data_dir = Path(data_dir)
        self.overrides = _merge(self.BASE, overrides or {})
        self.bt = None

    def start(self) -> "ApiHarness":
        try:
            from emqpy.testing import BrokerThread
        except ImportError:
            BrokerThread = _LocalBrokerThread
        self.bt = BrokerThread(self.overrides, data_dir=str(self.data_dir))
        self.bt.start()
        self.broker = self.bt.broker
        self.http_port = self.bt.http_port
        self.base = f"http://127.0.0.1:{self.http_port}"
        return self

    def stop(self):
        if self.bt is not None:
            self.bt.stop()
            self.bt = None

    def restart(self) -> "ApiHarness":
        self.stop()
        return self.start()

    @property
    def store(self):
        return self.broker.store

    def url(self, path: str) -> str:
        return self.base + path

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, **kw)

    def token(self, username="admin", password="public") -> str:
        with self.client() as c:
            r = c.post("/api/v5/login", json={"username": username, "password": password})
            assert r.status_code == 200, r.text
            return r.json()["token"]

    def bearer(self, username="admin", password="public") -> httpx.Client:
        return self.client(headers={"Authorization": "Bearer " + self.token(username, password)})

    def new_key(self, name: str, **body) -> dict:
        with self.client(auth=("admin", "public")) as c:
            r = c.post("/api/v5/api_key", json={"name": name, **body})
            assert r.status_code == 200, r.text
            return r.json()


@pytest.fixture(scope="session", autouse=True)
def _probe_routes():
    """Mount the test-only probe router (an authenticated endpoint usable with API keys,
    pagination and a crashing route) the way a feature module would."""
    if PROBE_MODULE not in api_app.ROUTER_MODULES:
        api_app.ROUTER_MODULES.append(PROBE_MODULE)
    yield
    api_app.ROUTER_MODULES.remove(PROBE_MODULE)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    h = ApiHarness(tmp_path_factory.mktemp("api-data")).start()
    yield h
    h.stop()


@pytest.fixture
def make_api(tmp_path_factory):
    started = []

    def factory(overrides: dict | None = None, data_dir: Path | None = None) -> ApiHarness:
        h = ApiHarness(data_dir or tmp_path_factory.mktemp("api-data"), overrides).start()
        started.append(h)
        return h

    yield factory
    for h in started:
        h.stop()
