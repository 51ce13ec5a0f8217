"""The one way to change an entry of a data-integration root (`connectors`, `actions`,
`sources`): look it up, validate the new config with the models of emqpy/config/bridges.py,
stop what ran on the old config, commit and persist the root (cluster.hocon, as EMQX keeps
them in its cluster config), start what the new one needs. A `Kind` is one root; what differs
between roots is in a few small hooks its subclass gives.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any

from emqpy.config import ConfigError
from emqpy.config.bridges import name_problem
from emqpy.config.runtime import commit, config_lock, persist
from emqpy.config.schema import replace_root
from emqpy.config.secrets import unmask

from .errors import AlreadyExists, Disabled, InUse, Invalid, NotFound

log = logging.getLogger("emqpy.bridge")


class Kind(ABC):
    root: str                  # the config root, also the REST path: "actions"
    types: tuple[str, ...]     # the types modelled (and so creatable)
    what: str                  # EMQX's word in its messages: "connector", "bridge", "source"
    id_what = "bridge"         # the word of EMQX's "Invalid ... ID" answer

    def __init__(self, svc):
        self.svc = svc
        self.entries: dict[str, Any] = {}  # "type:name" -> entry

    # -- hooks ---------------------------------------------------------------------------------

    @abstractmethod
    def new(self, etype: str, name: str, cfg):
        """A new entry object for a validated config (not started)."""

    @abstractmethod
    def start(self, entry) -> None:
        """Start what the entry runs, if it and what it needs are enabled."""

    @abstractmethod
    async def stop(self, entry, destroy: bool = False) -> None:
        """Stop it; `destroy`: it is being deleted, drop what it keeps."""

    @abstractmethod
    def connector_of(self, entry):
        """The Connector an entry runs on (None when there is none)."""

    def check(self, etype: str, name: str, cfg) -> None:
        """Refuse (Invalid) a validated config whose links do not hold."""

    def may_delete(self, entry, force: bool) -> list[str]:
        """Refuse (InUse) to delete what others depend on, or unlink them when `force`; the
        other config roots that changed (to persist)."""
        return []

    @abstractmethod
    def probe_resource(self, etype: str, name: str, cfg):
        """The resource whose health check tests `cfg` (Invalid when there is none)."""

    async def replace(self, etype: str, name: str, cfg, old):
        """Stop the old entry: the entry that runs `cfg` once the root is saved."""
        if old is None:
            return self.new(etype, name, cfg)
        await self.stop(old)
        old.cfg = cfg
        return old

    async def started(self, entry) -> None:
        """After the root is saved: start the entry."""
        self.start(entry)

    def load(self) -> None:
        """Make and start every entry of the config (at node start)."""
        root = getattr(self.svc.broker.config, self.root)
        for t in (root.model_extra or {}):
            log.warning("%s of type %r are not supported by emqpy yet: ignored", self.root, t)
        for etype in self.types:
            for name, cfg in getattr(root, etype).items():
                entry = self.new(etype, name, cfg)
                self.entries[entry.id] = entry
                self.start(entry)

    def metrics(self, entry) -> dict:
        return entry.metrics.view()

    # -- reading -------------------------------------------------------------------------------

    def get(self, etype: str, name: str):
        entry = self.entries.get(f"{etype}:{name}")
        if entry is None:
            raise NotFound(f"{self.what.capitalize()} lookup failed: {self.what} named "
                           f"'{name}' of type {etype} does not exist.")
        return entry

    def raw(self, etype: str, name: str) -> dict | None:
        """The entry's stored config (hidden keys included, secrets in clear)."""
        return (self.svc.broker.config.dump(self.root, hidden=True).get(etype) or {}).get(name)

    def shown(self, etype: str, name: str) -> dict:
        """The entry's config as the API shows it (hidden keys left out; not yet masked)."""
        return (self.svc.broker.config.dump(self.root).get(etype) or {}).get(name) or {}

    # -- changes -------------------------------------------------------------------------------

    def validated(self, etype: str, name: str, entry: dict | None):
        """The config with `root.etype.name` set to `entry` (removed when None), validated."""
        cfg = self.svc.broker.config
        raw = cfg.dump(self.root, hidden=True)
        entries = dict(raw.get(etype) or {})
        if entry is None:
            entries.pop(name, None)
        else:
            entries[name] = entry
        raw[etype] = entries
        try:
            return replace_root(cfg, self.root, raw)
        except ConfigError as e:
            raise Invalid(str(e)) from None

    async def _save(self, new_cfg, *roots: str) -> None:
        commit(self.svc.broker, new_cfg)
        for root in roots:
            await persist(self.svc.broker, root)

    async def _put(self, etype: str, name: str, body: dict, old):
        new_cfg = self.validated(etype, name, body)
        cfg = getattr(getattr(new_cfg, self.root), etype)[name]
        self.check(etype, name, cfg)
        entry = await self.replace(etype, name, cfg, old)
        self.entries[entry.id] = entry
        await self._save(new_cfg, self.root)
        await self.started(entry)
        return entry

    async def create(self, etype: str, name: str, body: dict):
        if etype not in self.types:
            raise Invalid(f"unknown resource type: {etype}")
        problem = name_problem(name)
        if problem:
            raise Invalid(problem)
        async with config_lock(self.svc.broker):
            if f"{etype}:{name}" in self.entries:
                raise AlreadyExists(f"{self.what} already exists")
            return await self._put(etype, name, body, None)

    async def update(self, etype: str, name: str, body: dict):
        async with config_lock(self.svc.broker):
            old = self.get(etype, name)
            return await self._put(etype, name, unmask(body, self.raw(etype, name)), old)

    async def enable(self, etype: str, name: str, enable: bool):
        async with config_lock(self.svc.broker):
            old = self.get(etype, name)
            return await self._put(etype, name, dict(self.raw(etype, name), enable=enable), old)

    async def delete(self, etype: str, name: str, force: bool = False) -> None:
        async with config_lock(self.svc.broker):
            entry = self.get(etype, name)
            also = self.may_delete(entry, force)
            new_cfg = self.validated(etype, name, None)
            del self.entries[entry.id]
            await self.stop(entry, destroy=True)
            await self._save(new_cfg, self.root, *also)

    async def operate(self, etype: str, name: str) -> None:
        """EMQX's `start` operation: (re)connect the connector now."""
        entry = self.get(etype, name)
        conn = self.connector_of(entry)
        if not entry.cfg.enable or conn is None or not conn.cfg.enable:
            raise Disabled(f"Forbidden operation, {self.id_what} not enabled")
        await conn.first_check()

    async def probe(self, etype: str, body: dict) -> None:
        """Test a config without saving it (TEST_FAILED via Invalid)."""
        if etype not in self.types:
            raise Invalid(f"unknown resource type: {etype}")
        name = body.pop("name", None) or "probe"
        if f"{etype}:{name}" in self.entries:
            body = unmask(body, self.raw(etype, name))
        cfg = getattr(getattr(self.validated(etype, "probe", body), self.root), etype)["probe"]
        self.check(etype, name, cfg)
        reason = await self.svc.io.run(self.probe_resource(etype, name, cfg).health_check())
        if reason is not None:
            raise Invalid(reason)

    def reset_metrics(self, etype: str, name: str) -> None:
        self.get(etype, name).metrics.reset()


class ChannelKind(Kind):
    """Actions and sources: entries on a connector of the type their own type names."""

    @abstractmethod
    def connector_type(self, etype: str) -> str:
        """The connector type an entry of type `etype` runs on."""

    def connector_of_cfg(self, etype: str, cfg):
        return self.svc.connectors.get(f"{self.connector_type(etype)}:{cfg.connector}")

    def probe_resource(self, etype: str, name: str, cfg):
        """The resource whose health check tests `cfg` (Invalid when there is none)."""
        conn = self.connector_of_cfg(etype, cfg)
        if conn.resource is None:
            raise Invalid("connector is not enabled")
        return conn.resource

    def connector_of(self, entry):
        return self.connector_of_cfg(entry.type, entry.cfg)

    def check(self, etype: str, name: str, cfg) -> None:
        if self.connector_of_cfg(etype, cfg) is None:
            raise Invalid(f'{{"reason":"connector_not_found_or_wrong_type",'
                          f'"connector_name":"{cfg.connector}","bridge_name":"{name}",'
                          f'"bridge_type":"{etype}"}}')

    def status(self, entry, running: bool) -> tuple[str, str]:
        """(status, error) as EMQX's emqx_bridge_v2:lookup gives them."""
        conn = self.connector_of(entry)
        if not running or conn is None:
            return "disconnected", "Not installed"
        if conn.status == "connected":
            return "connected", ""
        if conn.status == "connecting":
            return "connecting", "Not installed"
        return "disconnected", conn.reason or "Unknown reason"

    def refuse_if_used(self, rules: list[str], force: bool) -> None:
        """EMQX's 400 for deleting an action or source that rules use (unless `force`)."""
        if rules and not force:
            raise InUse(f"Cannot delete {self.root[:-1]} while active rules are depending "
                        "on it", rules)
