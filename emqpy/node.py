"""The composition root: a node is the broker core with its store, features, listeners and API.

    async with emqpy.Node(config) as node:   # what `emqpy` (the command) and embedders run
        node.listeners, node.api.port, node.publish(...)

Start order: the core takes the loop; the store opens; every feature of emqpy.features is set
up in that list's order (they may read the store and fill the core's extension slots); the
HTTP API starts; the features' `before_clients` run (a cluster node catches up with the
replicated state, through the API); the MQTT listeners start; clients are let in. Stop runs the other way. This is the
only module that knows every layer; nothing below imports it.
"""
from __future__ import annotations

import inspect

import logging

from emqpy import features
from emqpy.broker.broker import Broker

log = logging.getLogger("emqpy.broker")


class Node(Broker):
    """A running emqpy node. Everything the core offers (publish, kick, sessions, hooks, the
    extension slots) is here too; two nodes in one process share nothing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._features: list = []  # the manifests set up, in order (torn down in reverse)

    async def start(self) -> None:
        from emqpy.listeners import start_listeners

        self.attach_loop()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._open_store()
        await self._setup_features()
        try:
            await self._start_api()
            for feature in self._features:
                if feature.before_clients is not None:
                    await feature.before_clients(self)
            await start_listeners(self)
        except BaseException:
            await self._close_listeners()
            if self.api is not None:
                await self.api.stop()
                self.api = None
            await self._teardown_features()
            self._close_store()
            raise
        self.open_for_clients()
        log.info("emqpy %s started as %s", self.emqpy_version, self.node_name)

    async def stop(self) -> None:
        if not self.running and not self.listeners:
            return
        self.close_clients()
        await self._close_listeners()
        if self.api is not None:
            await self.api.stop()
            self.api = None
        await self._teardown_features()
        self.release_timers()
        self._close_store()

    async def _setup_features(self) -> None:
        self._features = []
        for feature in features.manifests():
            if feature.setup is not None:
                started = feature.setup(self)
                self._features.append(feature)
                if inspect.isawaitable(started):
                    await started

    async def _teardown_features(self) -> None:
        for feature in reversed(self._features):
            if feature.teardown is not None:
                try:
                    await feature.teardown(self)
                except Exception:
                    log.exception("stopping feature %s failed", feature.name)
        self._features = []

    async def _close_listeners(self) -> None:
        for lst in list(self.listeners.values()):
            await lst.stop()
        self.listeners.clear()

    def _open_store(self) -> None:
        try:
            from emqpy.store import Store
        except ImportError:  # a trimmed install without the store: nothing persists
            return
        self.store = Store.open(self.data_dir)

    def _close_store(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    async def _start_api(self) -> None:
        try:
            from emqpy.api.server import ApiServer
        except ImportError:  # installed without the API's dependencies
            return
        self.api = ApiServer(self)
        await self.api.start()
