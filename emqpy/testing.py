"""Run a real broker in a background thread, for synchronous code such as pytest tests."""
from __future__ import annotations

import asyncio
import copy
import threading

from emqpy.broker.broker import Broker


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


# Loopback and OS-chosen ports, so that tests never collide with each other or a real broker.
TEST_DEFAULTS = {
    "listeners": {t: {"default": {"bind": "127.0.0.1:0"}} for t in ("tcp", "ssl", "ws", "wss")},
    "dashboard": {"listeners": {"http": {"bind": "127.0.0.1:0"}}},
}


class BrokerThread:
    def __init__(self, overrides: dict | None = None, data_dir: str | None = None):
        self.overrides = _merge(TEST_DEFAULTS, overrides or {})
        self.data_dir = data_dir
        self.broker: Broker | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    def start(self) -> "BrokerThread":
        self._thread = threading.Thread(target=self._run, name="emqpy-broker", daemon=True)
        self._thread.start()
        self._ready.wait(30)
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
            self.broker = Broker(self.overrides, data_dir=self.data_dir)
            await self.broker.start()
        except BaseException as e:  # reported to the starting thread
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.broker.stop()

    @property
    def port(self) -> int:
        return self.broker.listeners["tcp:default"].port

    @property
    def http_port(self) -> int | None:
        api = self.broker.api
        return api.port if api is not None else None

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

    def __enter__(self) -> "BrokerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = ["BrokerThread"]
