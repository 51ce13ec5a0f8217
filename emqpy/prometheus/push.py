"""Prometheus Pushgateway client: while ``prometheus.push_gateway.enable`` is true, POST this
node's metrics (text format) to ``<url>/metrics/job/<job_name>`` every ``interval``, as EMQX
does. Runs in the broker's event loop; settings are re-read before every push, so a
``PUT /prometheus`` takes effect without a restart."""
from __future__ import annotations

import asyncio
import logging

import aiohttp

from emqpy.background import BackgroundTask
from emqpy.prometheus import collector

log = logging.getLogger("emqpy.prometheus")

IDLE_CHECK = 1.0  # seconds between looks at the settings while pushing is off


def push_url(broker, url: str, job_name: str) -> str:
    name, _, host = str(broker.node_name).partition("@")
    job = job_name.replace("${name}", name).replace("${host}", host)
    return url.rstrip("/") + "/metrics/job/" + job


class Pusher:
    def __init__(self, broker):
        self.broker = broker
        self._task = BackgroundTask(self._run, "emqpy-prometheus-push")
        self.pushed = 0  # successful pushes, for observability
        self.wake = asyncio.Event()

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _sleep(self, seconds: float) -> None:
        self.wake.clear()
        try:
            await asyncio.wait_for(self.wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            while True:
                pg = self.broker.config.prometheus.push_gateway
                if not pg.enable:
                    await self._sleep(IDLE_CHECK)
                    continue
                await self._sleep(max(0.1, pg.interval))
                pg = self.broker.config.prometheus.push_gateway
                if not pg.enable:
                    continue
                await self._push(http, pg)

    async def _push(self, http: aiohttp.ClientSession, pg) -> None:
        url = push_url(self.broker, pg.url, pg.job_name)
        families = collector.collect(self.broker, "node") + collector.process_families(
            self.broker)
        body = collector.render_text(families)
        headers = {**pg.headers, "Content-Type": "text/plain"}
        try:
            async with http.post(url, data=body.encode(), headers=headers) as r:
                if r.status >= 300:
                    log.error("push to Prometheus Pushgateway %s failed: HTTP %s %s", url,
                              r.status, (await r.text())[:200])
                else:
                    self.pushed += 1
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            log.error("push to Prometheus Pushgateway %s failed: %s", url, e)


def get(broker) -> Pusher:
    if broker.prometheus_pusher is None:
        broker.prometheus_pusher = Pusher(broker)
    return broker.prometheus_pusher


def setup(broker) -> None:
    get(broker).start()


async def teardown(broker) -> None:
    p = broker.prometheus_pusher
    if p is not None:
        await p.stop()
