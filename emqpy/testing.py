"""Run a real broker in a background thread, for synchronous code such as pytest tests.

`BrokerThread` starts an emqpy broker in its own event loop; it is also a pytest plugin
(registered under the ``pytest11`` entry point, so installing emqpy is enough) with two
fixtures:

- ``mqtt_broker``: a broker with the default config on free loopback ports and a temporary data
  dir, shared by the tests of a module; it is the started `BrokerThread` (``.host``, ``.port``,
  ``.api_url``, ``.ws_port``, ``.ssl_port``, ``.broker``).
- ``make_mqtt_broker(overrides=None, data_dir=None)``: starts one with EMQX-shaped config
  overrides, e.g. ``make_mqtt_broker({"mqtt": {"max_inflight": 2}})``; stopped after the test.
"""
from __future__ import annotations

import asyncio
import copy
import threading

from emqpy.node import Node


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


HOST = "127.0.0.1"
# Loopback and OS-chosen ports, so that tests never collide with each other or a real broker.
TEST_DEFAULTS = {
    "listeners": {t: {"default": {"bind": f"{HOST}:0"}} for t in ("tcp", "ssl", "ws", "wss")},
    "dashboard": {"listeners": {"http": {"bind": f"{HOST}:0"}}},
}


START_TIMEOUT = 60.0


class BrokerThread:
    host = HOST

    def __init__(self, overrides: dict | None = None, data_dir: str | None = None):
        self.overrides = _merge(TEST_DEFAULTS, overrides or {})
        self.data_dir = data_dir
        self.broker: Node | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def start(self) -> "BrokerThread":
        self._ready = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="emqpy-broker", daemon=True)
        self._thread.start()
        # (a clustered node may wait for NATS and for its catch-up with the replicated state)
        if not self._ready.wait(START_TIMEOUT):
            raise TimeoutError(f"the broker did not start within {START_TIMEOUT:g} s")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            import uvloop
            loop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            self.broker = Node(self.overrides, data_dir=self.data_dir)
            await self.broker.start()
        except BaseException as e:  # reported to the starting thread
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.broker.stop()

    def listener_port(self, listener_id: str) -> int | None:
        """The bound port of a running listener ("tcp:default", "ws:default", ...)."""
        lst = self.broker.listeners.get(listener_id)
        return lst.port if lst is not None else None

    # The bound port of each type's default listener (None when it is disabled).
    port = property(lambda self: self.listener_port("tcp:default"))
    ssl_port = property(lambda self: self.listener_port("ssl:default"))
    ws_port = property(lambda self: self.listener_port("ws:default"))
    wss_port = property(lambda self: self.listener_port("wss:default"))

    @property
    def http_port(self) -> int | None:
        api = self.broker.api
        return api.port if api is not None else None

    @property
    def api_url(self) -> str | None:
        """Base URL of the HTTP management API (``http://127.0.0.1:<port>/api/v5``)."""
        port = self.http_port
        return f"http://{self.host}:{port}/api/v5" if port is not None else None

    def call(self, fn, *args, timeout: float = 10):
        """Run `fn(*args)` in the broker's loop (awaiting it if it is a coroutine function)."""
        async def runner():
            res = fn(*args)
            if asyncio.iscoroutine(res):
                res = await res
            return res
        fut = asyncio.run_coroutine_threadsafe(runner(), self.loop)
        return fut.result(timeout)

    def stop(self) -> None:
        if self.loop is None or self._stop is None:
            return
        try:
            self.loop.call_soon_threadsafe(self._stop.set)
        except RuntimeError:
            return
        self._thread.join(30)

    def restart(self) -> "BrokerThread":
        """Stop, then start a new broker on the same config and data dir (new ports)."""
        self.stop()
        self.loop = self._stop = None
        return self.start()

    def __enter__(self) -> "BrokerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# pytest plugin ------------------------------------------------------------------------------
# pytest is a test-time dependency: without it, BrokerThread alone is offered.
try:
    import pytest
except ImportError:
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="module")
    def mqtt_broker(tmp_path_factory):
        """A started `BrokerThread` with the default config, shared by the tests of a module."""
        bt = BrokerThread({}, data_dir=str(tmp_path_factory.mktemp("emqpy-data"))).start()
        yield bt
        bt.stop()

    @pytest.fixture
    def make_mqtt_broker(tmp_path_factory):
        """make_mqtt_broker(overrides=None, data_dir=None) -> a started `BrokerThread`."""
        started: list[BrokerThread] = []

        def factory(overrides: dict | None = None, data_dir=None) -> BrokerThread:
            data_dir = data_dir or tmp_path_factory.mktemp("emqpy-data")
            bt = BrokerThread(overrides or {}, data_dir=str(data_dir)).start()
            started.append(bt)
            return bt

        yield factory
        for bt in started:
            bt.stop()


__all__ = ["BrokerThread"]
