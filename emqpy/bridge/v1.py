"""EMQX's v1 bridges over the connectors, actions and sources (EMQX 5.8.1's compatibility
layer, emqx_bridge_v2's bridge_v1_* functions): a `webhook` bridge is an http connector +
action, an `mqtt` bridge an mqtt connector + action (egress) or source (ingress), split and
joined as config/bridges_v1.py says. An action or source is a v1 bridge while it is the only
one on its connector; others are "non Bridge V1 compatible" and the v1 API refuses them.
"""
from __future__ import annotations

from emqpy.config.bridges import name_problem
from emqpy.config.bridges_v1 import V1_NAME, V1_TYPES, V1Error, connector_name, split
from emqpy.config.runtime import config_lock
from emqpy.config.schema import deep_merge
from emqpy.config.secrets import mask_secrets, unmask

from .errors import AlreadyExists, Disabled, InUse, Invalid, NotFound
from .http import join_paths
from .kinds import Kind

NON_COMPATIBLE = "bridge already exists as non Bridge V1 compatible action"
# A v1 MQTT bridge's resource_opts (EMQX's creation_opts): the connector's and the action's
_MQTT_V1_RESOURCE_OPTS = ("worker_pool_size", "health_check_interval", "start_after_created",
                          "start_timeout", "auto_restart_interval", "query_mode",
                          "request_ttl", "inflight_window", "enable_queue", "max_buffer_bytes")


class NotCompatible(ValueError):
    """The action or source shares its connector: it has no v1 form."""


def not_found(v1_type: str, name: str) -> NotFound:
    return NotFound(f"Bridge lookup failed: bridge named '{name}' of type {v1_type} does not "
                    "exist.")


class V1Bridges:
    """The v1 operations on a BridgeService."""

    def __init__(self, svc):
        self.svc = svc
        self.connectors = svc.kinds["connectors"]

    # -- reading -------------------------------------------------------------------------------

    def _find(self, etype: str, name: str) -> tuple[Kind, object] | None:
        for root in ("actions", "sources"):  # EMQX looks in actions first
            kind = self.svc.kinds[root]
            entry = kind.entries.get(f"{etype}:{name}")
            if entry is not None:
                return kind, entry
        return None

    def _compatible(self, kind: Kind, entry) -> bool:
        conn = kind.connector_of(entry)
        return conn is not None and len(self.connectors.channels(conn)) == 1

    def lookup(self, v1_type: str, name: str) -> tuple[Kind, object]:
        """The action or source of a v1 bridge; NotFound, or NotCompatible."""
        found = self._find(V1_TYPES[v1_type], name)
        if found is None:
            raise not_found(v1_type, name)
        if not self._compatible(*found):
            raise NotCompatible(NON_COMPATIBLE)
        return found

    def list(self) -> list[dict]:
        out, names = [], set()
        for root in ("actions", "sources"):
            kind = self.svc.kinds[root]
            for entry in kind.entries.values():
                if entry.type in V1_NAME and self._compatible(kind, entry) \
                        and (root == "actions" or entry.name not in names):
                    names.add(entry.name)
                    out.append(self.view(kind, entry))
        return out

    def view(self, kind: Kind, entry) -> dict:
        """The bridge as EMQX's v1 API shows it: connector and action config joined, the
        connector's status (the action's when the connector is up and it is not)."""
        conn = kind.connector_of(entry)
        conn_conf = self.connectors.shown(conn.type, conn.name)
        conf = kind.shown(entry.type, entry.name)
        raw = kind.raw(entry.type, entry.name) or {}
        if raw.get("local_topic") is not None:  # hidden in the v2 API, shown in v1
            conf["local_topic"] = raw["local_topic"]
        if entry.type == "http":
            out = _http_v1(conn_conf, conf)
        else:
            local = (raw.get("parameters") or {}).get("local") or {}
            out = _mqtt_v1(conn_conf, conf, local, egress=kind.root == "actions")
        status, reason = conn.status, conn.reason
        if status == "connected":
            status, error = kind.status(entry, kind.running(entry))
            reason = error or None
        node = {"node": self.svc.node, "status": status}
        out.update(type=V1_NAME[entry.type], name=entry.name, status=status,
                   node_status=[node])
        if reason:
            out["status_reason"] = node["status_reason"] = reason
        return mask_secrets(out)

    # -- changes -------------------------------------------------------------------------------

    def _split(self, v1_type: str, name: str, conf: dict, connector: str):
        try:
            return split(v1_type, conf, connector)
        except V1Error as e:
            raise Invalid(str(e)) from None

    async def create(self, v1_type: str, name: str, conf: dict):
        etype = V1_TYPES.get(v1_type)
        if etype is None:
            raise Invalid(f"unknown bridge type: {v1_type}")
        found = self._find(etype, name)
        if found is not None:
            raise AlreadyExists("bridge already exists" if self._compatible(*found)
                                else NON_COMPATIBLE)
        problem = name_problem(name)
        if problem:  # (EMQX's v1 answer names the bridge)
            raise Invalid(problem if name in problem else f"{problem}. Got: {name}")
        taken = {c.name for c in self.connectors.entries.values() if c.type == etype}
        s = self._split(v1_type, name, conf, connector_name(taken, name))
        kind = self.svc.kinds[s.root]
        kind.validated(s.type, name, s.entry)  # refuse a bad action before making anything
        await self.connectors.create(etype, s.connector, s.connector_conf)
        try:
            entry = await kind.create(s.type, name, s.entry)
        except (Invalid, AlreadyExists):
            await self.connectors.delete(etype, s.connector)
            raise
        return kind, entry

    async def update(self, v1_type: str, name: str, conf: dict):
        kind, entry = self.lookup(v1_type, name)
        conn = kind.connector_of(entry)
        s = self._split(v1_type, name, conf, conn.name)
        new_kind = self.svc.kinds[s.root]
        self.connectors.validated(conn.type, conn.name, s.connector_conf)
        new_kind.validated(s.type, name, s.entry)
        if new_kind is not kind:  # an MQTT bridge that changes direction
            await self._delete_entry(kind, entry, False)
        await self.connectors.update(conn.type, conn.name, s.connector_conf)
        if new_kind is kind:
            return kind, await kind.update(s.type, name, s.entry)
        return new_kind, await new_kind.create(s.type, name, s.entry)

    async def _delete_entry(self, kind: Kind, entry, also_rules: bool) -> None:
        try:  # EMQX does not look for the rules of a source here
            await kind.delete(entry.type, entry.name, also_rules or kind.root == "sources")
        except InUse as e:
            raise InUse("Cannot delete bridge while active rules are depending on it",
                        e.ids) from None

    async def delete(self, v1_type: str, name: str, also_rules: bool) -> None:
        """The action or source, and its connector when nothing else is on it."""
        kind, entry = self.lookup(v1_type, name)
        conn = kind.connector_of(entry)
        await self._delete_entry(kind, entry, also_rules)
        if conn.id in self.connectors.entries and not self.connectors.channels(conn):
            await self.connectors.delete(conn.type, conn.name)

    async def enable(self, v1_type: str, name: str, enable: bool) -> None:
        kind, entry = self.lookup(v1_type, name)
        conn = kind.connector_of(entry)
        if enable:
            await self.connectors.enable(conn.type, conn.name, True)
            await kind.enable(entry.type, entry.name, True)
        else:
            await kind.enable(entry.type, entry.name, False)
            await self.connectors.enable(conn.type, conn.name, False)

    async def operate(self, v1_type: str, name: str, operation: str) -> None:
        """`start`, `restart` (the connector and what runs on it, anew) or `stop`."""
        found = self._find(V1_TYPES[v1_type], name)
        if found is None:
            raise not_found(v1_type, name)
        kind, entry = found
        if not entry.cfg.enable:
            raise Disabled("Forbidden operation, bridge not enabled")
        if not self._compatible(kind, entry):
            raise Invalid("not_bridge_v1_compatible")
        conn = kind.connector_of(entry)
        if operation == "stop":
            async with config_lock(self.svc.broker):
                await self.connectors.halt(conn)
        else:
            await self.connectors.restart(conn)

    async def probe(self, v1_type: str, conf: dict) -> None:
        """Test a v1 config without saving it: its action part validated, its connector
        reached (Invalid with the reason)."""
        name = conf.pop("name", None) or "probe"
        found = self._find(V1_TYPES.get(v1_type, ""), name)
        if found is not None and self._compatible(*found):
            conn = found[0].connector_of(found[1])
            conf = unmask(conf, self.connectors.raw(conn.type, conn.name) or {})
        s = self._split(v1_type, name, conf, "probe")
        self.svc.kinds[s.root].validated(s.type, "probe", s.entry)
        await self.connectors.probe(s.type, {**s.connector_conf, "name": name})


def _http_v1(conn: dict, action: dict) -> dict:
    params = action.get("parameters") or {}
    top = {k: v for k, v in action.items() if k not in ("connector", "parameters")}
    top = deep_merge(top, {k: v for k, v in params.items() if k not in ("path", "headers")})
    out = deep_merge(conn, top)
    out["url"] = join_paths(conn.get("url", ""), params.get("path") or "")
    out["headers"] = {**(conn.get("headers") or {}), **(params.get("headers") or {})}
    return out


def _mqtt_v1(conn: dict, entry: dict, local: dict, egress: bool) -> dict:
    params = {k: v for k, v in (entry.get("parameters") or {}).items() if k != "local"}
    ro = {**(conn.get("resource_opts") or {}), **(entry.get("resource_opts") or {})}
    local = dict(local)
    if egress and entry.get("local_topic") is not None:
        local["topic"] = entry["local_topic"]
    part = {"pool_size": conn.get("pool_size", 8), "remote": params, "local": local}
    out = {k: v for k, v in conn.items() if k != "pool_size"}
    out["egress" if egress else "ingress"] = part
    out["resource_opts"] = {k: v for k, v in ro.items() if k in _MQTT_V1_RESOURCE_OPTS}
    return out
