"""The running connectors, actions and sources of a node; every change goes through the one
path of kinds.py (validate, stop, commit and persist the root, start). The rule engine calls
`action_exists` and `send`.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any, Callable

from emqpy.config.bridges import ACTION_CONNECTOR_TYPE, ACTION_TYPES, CONNECTOR_TYPES, name_problem
from emqpy.config.runtime import config_lock

from .dead_letters import DeadLetters
from .errors import AlreadyExists, Disabled, InUse, Invalid, NotFound
from .http import ConnectorError, HttpConnector
from .ioloop import IoLoop
from .kinds import ChannelKind, Kind
from .local_topics import LocalTopics
from .metrics import SAMPLE_SECONDS, ActionMetrics
from .mqtt import MqttConnector
from .process import DeliveryProcess
from .sources import SourceKind
from .v1 import V1Bridges
from .worker import ThreadLink, Worker, notify

__all__ = ["AlreadyExists", "BridgeService", "Disabled", "InUse", "Invalid", "NotFound",
           "clean_body", "parse_id"]

log = logging.getLogger("emqpy.bridge")

# What a connector type runs as; its `action(parameters)` makes what an action sends with.
CONNECTOR_CLASSES = {"http": HttpConnector, "mqtt": MqttConnector}
# Connector types whose actions send from the delivery process (process.py); the others (mqtt:
# its clients are shared with sources) send from the I/O loop thread.
PROCESS_TYPES = ("http",)
# Keys of an API body that describe the entry rather than configure it (EMQX drops them).
_INFO_KEYS = ("id", "type", "name", "status", "status_reason", "node_status", "node", "error",
              "actions", "sources", "rules")


def parse_id(entry_id: str, types: tuple[str, ...], what: str = "bridge") -> tuple[str, str]:
    """`type:name` -> (type, name); NotFound with EMQX's "Invalid ... ID" text."""
    parts = entry_id.split(":")
    if len(parts) != 2:
        raise NotFound(f"Invalid {what} ID, should be of pattern {{type}}:{{name}}, "
                       f"but got: {entry_id}")
    etype, name = parts
    if etype not in types and etype != "webhook":
        raise NotFound(f"Invalid {what} ID, unknown resource type: {etype}")
    problem = name_problem(name)
    if problem:
        raise NotFound(f"Invalid {what} ID, {problem}")
    return ("http" if etype == "webhook" else etype), name


def clean_body(body: Any) -> dict:
    if not isinstance(body, dict):
        raise Invalid("the request body must be a JSON object")
    return {k: v for k, v in body.items() if k not in _INFO_KEYS}


class Connector:
    """One configured connector and, while it is enabled, its running client."""

    def __init__(self, ctype: str, name: str, cfg, io: IoLoop, node: str = ""):
        self.type, self.name, self.cfg = ctype, name, cfg
        self.node = node  # part of the MQTT clients' ids, as in EMQX
        self.io = io  # the client lives and runs in this loop
        self.resource = None
        self.status = "stopped" if not cfg.enable else "connecting"
        self.reason: str | None = None
        self._health: asyncio.Task | None = None

    @property
    def id(self) -> str:
        return f"{self.type}:{self.name}"

    async def check(self) -> None:
        reason = await self.io.run(self.resource.health_check())
        self.status, self.reason = ("connected", None) if reason is None else \
            ("disconnected", reason)

    async def _health_loop(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # a check must never end the loop
                log.exception("health check of connector %s failed", self.id)
            await asyncio.sleep(self.cfg.resource_opts.health_check_interval)

    def start(self, data_dir: Path) -> None:
        """Build and start the client (ConnectorError if the config cannot be used)."""
        if not self.cfg.enable:
            self.status, self.reason = "stopped", None
            return
        resource = CONNECTOR_CLASSES[self.type](self.cfg, data_dir, self.name, self.node)
        self.io.call(resource.open)
        self.resource = resource
        self.status, self.reason = "connecting", None
        self._health = asyncio.get_running_loop().create_task(self._health_loop())

    async def first_check(self) -> None:
        """Wait up to `start_timeout` for the first health check, as EMQX's create does."""
        if self.resource is None:
            return
        try:
            await asyncio.wait_for(self.check(), self.cfg.resource_opts.start_timeout)
        except asyncio.TimeoutError:
            self.status, self.reason = "connecting", None

    async def stop(self) -> None:
        if self._health is not None:
            self._health.cancel()
            await asyncio.gather(self._health, return_exceptions=True)
            self._health = None
        if self.resource is not None:
            resource, self.resource = self.resource, None
            await self.io.run(resource.stop())
        self.status, self.reason = "stopped", None


class Action:
    """One configured action: its metrics (kept across updates), and its worker while it and
    its connector are enabled."""

    def __init__(self, atype: str, name: str, cfg):
        self.type, self.name, self.cfg = atype, name, cfg
        self.metrics = ActionMetrics()
        self.worker: Worker | None = None
        self.impl = None
        # `on_result`s of buffered messages while the worker is restarted or stopped (the
        # messages stay on disk and are sent when it runs again)
        self.pending: list = []

    @property
    def id(self) -> str:
        return f"{self.type}:{self.name}"

    @property
    def connector_id(self) -> str:
        return f"{ACTION_CONNECTOR_TYPE[self.type]}:{self.cfg.connector}"


class ConnectorKind(Kind):
    root, types, what, id_what = "connectors", CONNECTOR_TYPES, "connector", "connector"

    def new(self, ctype, name, cfg) -> Connector:
        return Connector(ctype, name, cfg, self.svc.io, self.svc.node)

    def start(self, conn: Connector) -> None:  # at node start: a bad one stays, disconnected
        try:
            conn.start(self.svc.broker.data_dir)
        except ConnectorError as e:
            log.error("connector %s cannot start: %s", conn.id, e)
            conn.status, conn.reason = "disconnected", str(e)

    async def stop(self, conn: Connector, destroy: bool = False) -> None:
        await conn.stop()

    def connector_of(self, conn: Connector) -> Connector:
        return conn

    def channels(self, conn: Connector) -> list[tuple[ChannelKind, Any]]:
        """The actions and sources on a connector, by id."""
        return [(kind, e) for kind in (self.svc.kinds["actions"], self.svc.kinds["sources"])
                for e in sorted(kind.entries.values(), key=lambda e: e.id)
                if e.connector_id == conn.id]

    async def replace(self, ctype, name, cfg, old: Connector | None) -> Connector:
        conn = self.new(ctype, name, cfg)
        try:
            conn.start(self.svc.broker.data_dir)
        except ConnectorError as e:
            raise Invalid(str(e)) from None
        for kind, entry in self.channels(conn):
            await kind.stop(entry)
        if old is not None:
            await old.stop()
        return conn

    async def started(self, conn: Connector) -> None:
        for kind, entry in self.channels(conn):
            kind.start(entry)
        await conn.first_check()

    def may_delete(self, conn: Connector, force: bool) -> list[str]:
        channels = [f"{kind.root[:-1]}:{e.id}:connector:{conn.id}"
                    for kind, e in self.channels(conn)]
        if channels:
            raise InUse("Cannot delete connector while there are active channels defined "
                        "for this connector", channels)
        return []

    async def restart(self, conn: Connector) -> None:
        """The v1 API's start/restart: the connector and what runs on it, anew."""
        async with config_lock(self.svc.broker):
            await self.halt(conn)
            try:
                conn.start(self.svc.broker.data_dir)
            except ConnectorError as e:
                raise Invalid(str(e)) from None
            await self.started(conn)

    async def halt(self, conn: Connector) -> None:
        """The v1 API's stop: the connector and what runs on it stop (they stay enabled)."""
        for kind, entry in self.channels(conn):
            await kind.stop(entry)
        await conn.stop()

    def probe_resource(self, ctype, name, cfg):
        try:
            return CONNECTOR_CLASSES[ctype](cfg, self.svc.broker.data_dir, name, self.svc.node)
        except ConnectorError as e:
            raise Invalid(str(e)) from None


class ActionKind(ChannelKind):
    root, types, what = "actions", ACTION_TYPES, "bridge"

    def connector_type(self, atype: str) -> str:
        return ACTION_CONNECTOR_TYPE[atype]

    def new(self, atype, name, cfg) -> Action:
        return Action(atype, name, cfg)

    def start(self, a: Action) -> None:
        self.svc._start_action(a)
        self.svc.local_topics.refresh()

    async def stop(self, a: Action, destroy: bool = False) -> None:
        await self.svc._stop_action(a, destroy)
        self.svc.local_topics.refresh()

    def running(self, a: Action) -> bool:
        return a.worker is not None

    def rules(self, a: Action) -> list[str]:
        return sorted(self.svc.rule_ids(a.id))

    def metrics(self, a: Action) -> dict:
        w = a.worker
        return a.metrics.view(w.queuing if w else 0, w.inflight if w else 0)

    def may_delete(self, a: Action, force: bool) -> list[str]:
        rules = list(self.svc.rule_ids(a.id))
        self.refuse_if_used(rules, force)
        for rule_id in rules:
            self.svc.remove_rule_action(rule_id, a.id)
        return ["rule_engine"] if rules else []


class BridgeService:
    def __init__(self, broker):
        self.broker = broker
        self.node = broker.node_name
        self.buffers = Path(broker.data_dir) / "buffers"
        self.kinds: dict[str, Kind] = {k.root: k for k in (
            ConnectorKind(self), ActionKind(self), SourceKind(self))}
        self.connectors: dict[str, Connector] = self.kinds["connectors"].entries
        self.actions: dict[str, Action] = self.kinds["actions"].entries
        self.sources = self.kinds["sources"].entries
        # Filled by the rule engine: rule ids that use an action id, and removing an action
        # from a rule (EMQX's also_delete_dep_actions).
        self.rule_ids: Callable[[str], list[str]] = lambda action_id: []
        self.remove_rule_action: Callable[[str, str], None] = lambda rule_id, action_id: None
        self._sampler: asyncio.TimerHandle | None = None
        self.io = IoLoop()  # where the connectors' clients run (see ioloop.py)
        self.v1 = V1Bridges(self)  # EMQX's v1 bridges over these (v1.py)
        self.local_topics = LocalTopics(self)  # actions fed without a rule (local_topics.py)
        self.delivery = DeliveryProcess()  # where HTTP actions send (see process.py)
        # what actions gave up on (dead_letters.py); a broker without a store keeps none
        self.dead_letters = DeadLetters(broker.store) if broker.store is not None else None

    def set_rule_links(self, rule_ids: Callable[[str], list[str]],
                       remove_rule_action: Callable[[str, str], None]) -> None:
        self.rule_ids, self.remove_rule_action = rule_ids, remove_rule_action

    # -- lifecycle -------------------------------------------------------------------------

    def load(self) -> None:
        """Start every configured connector, action and source (in the event loop, at node
        start)."""
        for kind in self.kinds.values():
            kind.load()
        self._sampler = asyncio.get_running_loop().call_later(SAMPLE_SECONDS, self._sample)

    def _sample(self) -> None:
        for a in (*self.actions.values(), *self.sources.values()):
            a.metrics.sample()
        self._sampler = asyncio.get_running_loop().call_later(SAMPLE_SECONDS, self._sample)

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        self.local_topics.close()
        for kind in reversed(self.kinds.values()):
            for entry in kind.entries.values():
                await kind.stop(entry)
        await self.delivery.stop()
        self.io.stop()

    def _start_action(self, a: Action) -> None:
        conn = self.connectors.get(a.connector_id)
        if not a.cfg.enable or conn is None or conn.resource is None:
            return
        a.impl = conn.resource.action(a.cfg.parameters)
        if conn.type in PROCESS_TYPES:
            link = self.delivery.link((conn.type, conn.name, conn.cfg, a.cfg.parameters,
                                       str(self.broker.data_dir), self.node),
                                      a.impl.request_timeout)
        else:
            link = ThreadLink(self.io, a.impl)
        a.worker = Worker(self.buffers / a.id, a.cfg.resource_opts, a.metrics, link,
                          envelope_keys=a.impl.envelope_keys, dead_letters=self.dead_letters)
        a.worker.open(a.pending)
        a.pending = []
        a.worker.start()

    async def _stop_action(self, a: Action, destroy: bool = False) -> None:
        if a.worker is not None:
            worker, a.worker, a.impl = a.worker, None, None
            if destroy:
                await worker.destroy()
            else:
                a.pending = await worker.close()
        if destroy:
            for callbacks in a.pending:
                for cb in callbacks.values():
                    notify(cb, False)
            a.pending = []
            await asyncio.to_thread(shutil.rmtree, self.buffers / a.id, True)
            if self.dead_letters is not None:
                await asyncio.to_thread(self.dead_letters.delete, a.id)

    # -- what the rule engine calls ----------------------------------------------------------

    def action_exists(self, action_ref: str) -> bool:
        return action_ref in self.actions

    def send(self, action_ref: str, selected: dict, envelope: dict,
             on_result: Callable[[bool], None] | None = None) -> None:
        a = self.actions.get(action_ref)
        if a is None:
            raise LookupError(action_ref)
        if a.worker is not None:
            a.worker.submit(selected, envelope, on_result)
            return
        a.metrics.inc("matched")
        a.metrics.inc("dropped.resource_stopped" if a.connector_id in self.connectors
                      else "dropped.resource_not_found")
        if on_result is not None:
            on_result(False)
