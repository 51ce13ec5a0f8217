"""One long-running coroutine of a feature (the monitor's sampler, the Pushgateway pusher) as
a task in the broker's event loop: started once, cancelled and awaited on stop; and the one
object per broker that owns it."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")


def per_broker(broker, attr: str, factory: Callable[..., T]) -> T:
    """`broker.<attr>`, made by `factory(broker)` on first use."""
    obj = getattr(broker, attr, None)
    if obj is None:
        obj = factory(broker)
        setattr(broker, attr, obj)
    return obj


class BackgroundTask:
    def __init__(self, run: Callable[[], Awaitable[None]], name: str):
        self._run = run
        self.name = name
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        """Start `run()` in the running loop, unless it is already started."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
