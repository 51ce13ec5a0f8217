"""One long-running coroutine of a feature (the monitor's sampler, the Pushgateway pusher) as
a task in the broker's event loop: started once, cancelled and awaited on stop."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable


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
