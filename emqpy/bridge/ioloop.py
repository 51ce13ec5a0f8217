"""The event loop, in its own thread, where connectors do their network I/O.

Why not the broker's loop: a request to a target takes several loop iterations (write, read
the answer, hand the connection back), and under MQTT load one broker iteration can take
100 ms or more (it works through everything its sockets delivered), so an action sharing that
loop made a few requests per second while the broker was busy (bench/README.md). Here the
broker's loop only queues a message and hears its outcome; the requests run at this loop's
pace. Connector objects (aiohttp sessions, health checks) live and are used only in this loop.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable, Coroutine


class IoLoop:
    def __init__(self, name: str = "emqpy-bridge-io"):
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._ready = threading.Event()

    def start(self) -> "IoLoop":
        """Start the thread (once; `run` and `call` start it when first needed, so a node
        without connectors has no such thread)."""
        if self.loop is None:
            self._thread.start()
            self._ready.wait()
        return self

    def _main(self) -> None:
        try:
            import uvloop
            self.loop = uvloop.new_event_loop()
        except ImportError:
            self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def run(self, coro: Coroutine) -> Awaitable[Any]:
        """Run `coro` in this loop; await the result from the caller's loop."""
        self.start()
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def call(self, fn: Callable[[], Any], timeout: float = 30) -> Any:
        """Run `fn()` in this loop and wait for its result (blocking: for setup only)."""
        async def wrapper():
            return fn()
        self.start()
        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
