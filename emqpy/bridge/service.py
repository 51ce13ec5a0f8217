"""The running connectors and actions of a node, and the one way to change them.

Every change validates the new entry with the config models (emqpy/config/bridges.py), starts
what it needs, then commits and persists the `connectors` / `actions` root (cluster.hocon), as
EMQX keeps them in its cluster config. The rule engine calls `action_exists` and `send`.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any, Callable

from emqpy.config import ConfigError
from emqpy.config.bridges import ACTION_CONNECTOR_TYPE, ACTION_TYPES, CONNECTOR_TYPES, name_problem
from emqpy.config.runtime import commit, config_lock, persist
from emqpy.config.schema import replace_root
from emqpy.config.secrets import unmask

from .dead_letters import DeadLetters
from .errors import AlreadyExists, Disabled, InUse, Invalid, NotFound
from .http import ConnectorError, HttpConnector
from .ioloop import IoLoop
from .metrics import SAMPLE_SECONDS, ActionMetrics
from .mqtt import MqttConnector
from .process import DeliveryProcess
from .sources import Source, SourcesMixin
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


class BridgeService(SourcesMixin):
    def __init__(self, broker):
        self.broker = broker
        self.node = broker.node_name
        self.buffers = Path(broker.data_dir) / "buffers"
        self.connectors: dict[str, Connector] = {}
        self.actions: dict[str, Action] = {}
        self.sources: dict[str, Source] = {}
        # Filled by the rule engine: rule ids that use an action id, and removing an action
        # from a rule (EMQX's also_delete_dep_actions).
        self.rule_ids: Callable[[str], list[str]] = lambda action_id: []
        self.remove_rule_action: Callable[[str, str], None] = lambda rule_id, action_id: None
        self._sampler: asyncio.TimerHandle | None = None
        self.io = IoLoop()  # where the connectors' clients run (see ioloop.py)
        self.delivery = DeliveryProcess()  # where HTTP actions send (see process.py)
        # what actions gave up on (dead_letters.py); a broker without a store keeps none
        self.dead_letters = DeadLetters(broker.store) if broker.store is not None else None

    def set_rule_links(self, rule_ids: Callable[[str], list[str]],
                       remove_rule_action: Callable[[str, str], None]) -> None:
        self.rule_ids, self.remove_rule_action = rule_ids, remove_rule_action

    # -- lifecycle -------------------------------------------------------------------------

    def load(self) -> None:
        """Start every configured connector and action (in the event loop, at node start)."""
        cfg = self.broker.config
        for root in ("connectors", "actions"):
            for t in (getattr(cfg, root).model_extra or {}):
                log.warning("%s of type %r are not supported by emqpy yet: ignored", root, t)
        for ctype in CONNECTOR_TYPES:
            for name, c in getattr(cfg.connectors, ctype).items():
                conn = Connector(ctype, name, c, self.io, self.node)
                try:
                    conn.start(self.broker.data_dir)
                except ConnectorError as e:
                    log.error("connector %s cannot start: %s", conn.id, e)
                    conn.status, conn.reason = "disconnected", str(e)
                self.connectors[conn.id] = conn
        for atype in ACTION_TYPES:
            for name, a in getattr(cfg.actions, atype).items():
                action = Action(atype, name, a)
                self.actions[action.id] = action
                self._start_action(action)
        self._load_sources()
        self._sampler = asyncio.get_running_loop().call_later(SAMPLE_SECONDS, self._sample)

    def _sample(self) -> None:
        for a in (*self.actions.values(), *self.sources.values()):
            a.metrics.sample()
        self._sampler = asyncio.get_running_loop().call_later(SAMPLE_SECONDS, self._sample)

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        for a in self.actions.values():
            await self._stop_action(a)
        for src in self.sources.values():
            self._stop_source(src)
        for c in self.connectors.values():
            await c.stop()
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

    # -- status ----------------------------------------------------------------------------

    def action_status(self, a: Action) -> tuple[str, str]:
        """(status, error) as EMQX's emqx_bridge_v2:lookup gives them."""
        conn = self.connectors.get(a.connector_id)
        if a.worker is None or conn is None:
            return "disconnected", "Not installed"
        if conn.status == "connected":
            return "connected", ""
        if conn.status == "connecting":
            return "connecting", "Not installed"
        return "disconnected", conn.reason or "Unknown reason"

    # -- config changes ----------------------------------------------------------------------

    def _raw(self, root: str) -> dict:
        return self.broker.config.dump(root, hidden=True)

    def _validated(self, root: str, etype: str, name: str, entry: dict | None):
        """The config with `root.etype.name` set to `entry` (removed when None), validated."""
        raw = self._raw(root)
        entries = dict(raw.get(etype) or {})
        if entry is None:
            entries.pop(name, None)
        else:
            entries[name] = entry
        raw[etype] = entries
        try:
            return replace_root(self.broker.config, root, raw)
        except ConfigError as e:
            raise Invalid(str(e)) from None

    async def _save(self, new, root: str) -> None:
        commit(self.broker, new)
        await persist(self.broker, root)

    def raw_entry(self, root: str, etype: str, name: str) -> dict | None:
        """The entry's stored config (hidden keys included, secrets in clear)."""
        return (self._raw(root).get(etype) or {}).get(name)

    def shown_entry(self, root: str, etype: str, name: str) -> dict:
        """The entry's config as the API shows it (hidden keys left out; not yet masked)."""
        return (self.broker.config.dump(root).get(etype) or {}).get(name) or {}

    # connectors

    def connector(self, ctype: str, name: str) -> Connector:
        c = self.connectors.get(f"{ctype}:{name}")
        if c is None:
            raise NotFound(f"Connector lookup failed: connector named '{name}' of type "
                           f"{ctype} does not exist.")
        return c

    def _check_new(self, ctype: str, name: str, types: tuple[str, ...]) -> None:
        if ctype not in types:
            raise Invalid(f"unknown resource type: {ctype}")
        problem = name_problem(name)
        if problem:
            raise Invalid(problem)

    async def create_connector(self, ctype: str, name: str, body: dict) -> Connector:
        self._check_new(ctype, name, CONNECTOR_TYPES)
        async with config_lock(self.broker):
            if f"{ctype}:{name}" in self.connectors:
                raise AlreadyExists("connector already exists")
            return await self._put_connector(ctype, name, body, None)

    async def update_connector(self, ctype: str, name: str, body: dict) -> Connector:
        async with config_lock(self.broker):
            old = self.connector(ctype, name)
            body = unmask(body, self.raw_entry("connectors", ctype, name))
            return await self._put_connector(ctype, name, body, old)

    async def _put_connector(self, ctype, name, body, old: Connector | None) -> Connector:
        new_cfg = self._validated("connectors", ctype, name, body)
        conn = Connector(ctype, name, getattr(new_cfg.connectors, ctype)[name], self.io,
                         self.node)
        try:
            conn.start(self.broker.data_dir)
        except ConnectorError as e:
            raise Invalid(str(e)) from None
        users = [a for a in self.actions.values() if a.connector_id == conn.id]
        readers = [s for s in self.sources.values() if s.connector_id == conn.id]
        for a in users:
            await self._stop_action(a)
        for src in readers:
            self._stop_source(src)
        if old is not None:
            await old.stop()
        self.connectors[conn.id] = conn
        await self._save(new_cfg, "connectors")
        for a in users:
            self._start_action(a)
        for src in readers:
            self._start_source(src)
        await conn.first_check()
        return conn

    async def delete_connector(self, ctype: str, name: str) -> None:
        async with config_lock(self.broker):
            conn = self.connector(ctype, name)
            users = sorted((a for a in self.actions.values() if a.connector_id == conn.id),
                           key=lambda a: a.id)
            readers = sorted((s for s in self.sources.values() if s.connector_id == conn.id),
                             key=lambda s: s.id)
            if users or readers:
                channels = [f"action:{a.id}:connector:{conn.id}" for a in users] + \
                    [f"source:{s.id}:connector:{conn.id}" for s in readers]
                raise InUse("Cannot delete connector while there are active channels defined "
                            "for this connector", channels)
            new_cfg = self._validated("connectors", ctype, name, None)
            await conn.stop()
            del self.connectors[conn.id]
            await self._save(new_cfg, "connectors")

    async def enable_connector(self, ctype: str, name: str, enable: bool) -> None:
        async with config_lock(self.broker):
            self.connector(ctype, name)
            body = dict(self.raw_entry("connectors", ctype, name), enable=enable)
            await self._put_connector(ctype, name, body, self.connectors[f"{ctype}:{name}"])

    async def start_connector(self, ctype: str, name: str) -> None:
        """EMQX's `start` operation: (re)connect now."""
        conn = self.connector(ctype, name)
        if not conn.cfg.enable:
            raise Disabled("Forbidden operation, connector not enabled")
        if conn.resource is not None:
            await conn.first_check()

    async def probe_connector(self, ctype: str, body: dict) -> None:
        """Test a connector config without saving it (TEST_FAILED via Invalid)."""
        if ctype not in CONNECTOR_TYPES:
            raise Invalid(f"unknown resource type: {ctype}")
        name = body.pop("name", None) or "probe"
        if f"{ctype}:{name}" in self.connectors:
            body = unmask(body, self.raw_entry("connectors", ctype, name))
        new_cfg = self._validated("connectors", ctype, "probe", body)
        cfg = getattr(new_cfg.connectors, ctype)["probe"]
        try:
            resource = CONNECTOR_CLASSES[ctype](cfg, self.broker.data_dir, name, self.node)
        except ConnectorError as e:
            raise Invalid(str(e)) from None
        reason = await self.io.run(resource.health_check())
        if reason is not None:
            raise Invalid(reason)

    # actions

    def action(self, atype: str, name: str) -> Action:
        a = self.actions.get(f"{atype}:{name}")
        if a is None:
            raise NotFound(f"Bridge lookup failed: bridge named '{name}' of type {atype} "
                           "does not exist.")
        return a

    def _connector_for(self, atype: str, name: str, cfg) -> None:
        ctype = ACTION_CONNECTOR_TYPE[atype]
        if f"{ctype}:{cfg.connector}" not in self.connectors:
            raise Invalid(f'{{"reason":"connector_not_found_or_wrong_type",'
                          f'"connector_name":"{cfg.connector}","bridge_name":"{name}",'
                          f'"bridge_type":"{atype}"}}')

    async def create_action(self, atype: str, name: str, body: dict) -> Action:
        self._check_new(atype, name, ACTION_TYPES)
        async with config_lock(self.broker):
            if f"{atype}:{name}" in self.actions:
                raise AlreadyExists("bridge already exists")
            return await self._put_action(atype, name, body, None)

    async def update_action(self, atype: str, name: str, body: dict) -> Action:
        async with config_lock(self.broker):
            old = self.action(atype, name)
            body = unmask(body, self.raw_entry("actions", atype, name))
            return await self._put_action(atype, name, body, old)

    async def _put_action(self, atype, name, body, old: Action | None) -> Action:
        new_cfg = self._validated("actions", atype, name, body)
        cfg = getattr(new_cfg.actions, atype)[name]
        self._connector_for(atype, name, cfg)
        a = old or Action(atype, name, cfg)
        if old is not None:
            await self._stop_action(old)
            a.cfg = cfg
        self.actions[a.id] = a
        await self._save(new_cfg, "actions")
        self._start_action(a)
        return a

    async def delete_action(self, atype: str, name: str, also_delete_dep_actions: bool) -> None:
        async with config_lock(self.broker):
            a = self.action(atype, name)
            rules = list(self.rule_ids(a.id))
            if rules and not also_delete_dep_actions:
                raise InUse("Cannot delete action while active rules are depending on it",
                            rules)
            for rule_id in rules:
                self.remove_rule_action(rule_id, a.id)
            new_cfg = self._validated("actions", atype, name, None)
            del self.actions[a.id]
            await self._stop_action(a, destroy=True)
            await self._save(new_cfg, "actions")
            if rules:
                await persist(self.broker, "rule_engine")

    async def enable_action(self, atype: str, name: str, enable: bool) -> None:
        async with config_lock(self.broker):
            old = self.action(atype, name)
            body = dict(self.raw_entry("actions", atype, name), enable=enable)
            await self._put_action(atype, name, body, old)

    async def start_action(self, atype: str, name: str) -> None:
        """EMQX's `start` operation on an action: (re)connect its connector now."""
        a = self.action(atype, name)
        conn = self.connectors.get(a.connector_id)
        if not a.cfg.enable or conn is None or not conn.cfg.enable:
            raise Disabled("Forbidden operation, bridge not enabled")
        await conn.first_check()

    async def probe_action(self, atype: str, body: dict) -> None:
        if atype not in ACTION_TYPES:
            raise Invalid(f"unknown resource type: {atype}")
        name = body.pop("name", None) or "probe"
        if f"{atype}:{name}" in self.actions:
            body = unmask(body, self.raw_entry("actions", atype, name))
        new_cfg = self._validated("actions", atype, "probe", body)
        cfg = getattr(new_cfg.actions, atype)["probe"]
        self._connector_for(atype, name, cfg)
        conn = self.connectors[f"{ACTION_CONNECTOR_TYPE[atype]}:{cfg.connector}"]
        if conn.resource is None:
            raise Invalid("connector is not enabled")
        reason = await self.io.run(conn.resource.health_check())
        if reason is not None:
            raise Invalid(reason)

    def reset_metrics(self, atype: str, name: str) -> None:
        self.action(atype, name).metrics.reset()
