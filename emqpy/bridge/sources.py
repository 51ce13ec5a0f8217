"""Data sources (EMQX 5.8.1's `sources` root): what comes in through a connector. An `mqtt`
source subscribes its connector's clients to remote topics; each message received is counted
(`received`) and handed to the rules `FROM "$bridges/mqtt:<name>"` with EMQX's columns
(emqx_bridge_mqtt_ingress): id, server, payload, topic, qos, dup, retain, pub_props,
message_received_at. The clients restore their subscriptions after every reconnect.

The connector's clients run in the I/O loop; a message is passed to the broker's loop, where
the rules run.
"""
from __future__ import annotations

import asyncio
import time
import uuid

from emqpy.config.bridges import SOURCE_TYPES
from emqpy.config.runtime import config_lock
from emqpy.config.secrets import unmask
from emqpy.mqtt.topic import matches, parse_share

from .metrics import ActionMetrics
from .errors import AlreadyExists, Disabled, Invalid, NotFound


class Source:
    """One configured source: its metrics (kept across updates) and, while it and its
    connector run, its subscription."""

    def __init__(self, stype: str, name: str, cfg):
        self.type, self.name, self.cfg = stype, name, cfg
        self.metrics = ActionMetrics()
        self.running = False

    @property
    def id(self) -> str:
        return f"{self.type}:{self.name}"

    @property
    def connector_id(self) -> str:
        return f"mqtt:{self.cfg.connector}"


def columns(pub, server: str) -> dict:
    """A received PUBLISH as the rule engine reads it (EMQX's ingress message)."""
    props = dict(pub.props or {})
    pairs = props.get("User-Property")
    if isinstance(pairs, list):  # as EMQX shows them: a map, and the pairs in order
        props["User-Property"] = dict(pairs)
        props["User-Property-Pairs"] = [{"key": k, "value": v} for k, v in pairs]
    payload = pub.payload
    return {"id": uuid.uuid4().hex.upper(), "server": server,
            "payload": payload.decode("utf-8", "surrogateescape")
            if isinstance(payload, (bytes, bytearray, memoryview)) else payload,
            "topic": pub.topic, "qos": pub.qos, "dup": bool(pub.dup),
            "retain": bool(pub.retain), "pub_props": props,
            "message_received_at": int(time.time() * 1000)}


class SourcesMixin:
    """BridgeService's part for sources (`self.sources`: id -> Source)."""

    # -- running -----------------------------------------------------------------------------

    def _load_sources(self) -> None:
        for stype in SOURCE_TYPES:
            for name, cfg in getattr(self.broker.config.sources, stype).items():
                src = Source(stype, name, cfg)
                self.sources[src.id] = src
                self._start_source(src)

    def _start_source(self, src: Source) -> None:
        conn = self.connectors.get(src.connector_id)
        if not src.cfg.enable or conn is None or conn.resource is None:
            return
        resource = conn.resource
        loop = asyncio.get_running_loop()

        def received(connector, pub) -> None:  # in the I/O loop
            for s in self._sources_of(connector):
                if matches(parse_share(s.cfg.parameters.topic)[1], pub.topic):
                    loop.call_soon_threadsafe(self._deliver_source, s, pub, connector.cfg.server)

        def install() -> None:
            resource.on_message = received
            asyncio.get_running_loop().create_task(
                resource.subscribe([(src.cfg.parameters.topic, src.cfg.parameters.qos)]))
        self.io.call(install)
        src.running = True

    def _sources_of(self, resource) -> list[Source]:
        return [s for s in list(self.sources.values()) if s.running
                and (c := self.connectors.get(s.connector_id)) is not None
                and c.resource is resource]

    def _deliver_source(self, src: Source, pub, server: str) -> None:
        if not src.running:
            return
        src.metrics.inc("received")
        from emqpy.rule_engine import apply_bridge_message
        apply_bridge_message(self.broker, f"$bridges/{src.id}", columns(pub, server))

    def _stop_source(self, src: Source) -> None:
        """Stop taking its messages. The connector's clients stay subscribed until the
        connector restarts (another source may share the topic); what still comes for this
        source is not taken."""
        src.running = False

    def source_status(self, src: Source) -> tuple[str, str]:
        conn = self.connectors.get(src.connector_id)
        if not src.running or conn is None:
            return "disconnected", "Not installed"
        if conn.status == "connected":
            return "connected", ""
        if conn.status == "connecting":
            return "connecting", "Not installed"
        return "disconnected", conn.reason or "Unknown reason"

    def source_rule_ids(self, src: Source) -> list[str]:
        eng = self.broker.rule_engine
        if eng is None:
            return []
        refs = (f"$bridges/{src.id}", f"$sources/{src.id}")
        return sorted(r.id for r in eng.rules.values() if any(f in refs for f in r.froms))

    # -- config changes ----------------------------------------------------------------------

    def source(self, stype: str, name: str) -> Source:
        s = self.sources.get(f"{stype}:{name}")
        if s is None:
            raise NotFound(f"Source lookup failed: source named '{name}' of type {stype} "
                           "does not exist.")
        return s

    def _source_connector(self, stype: str, name: str, cfg) -> None:
        if f"mqtt:{cfg.connector}" not in self.connectors:
            raise Invalid(f'{{"reason":"connector_not_found_or_wrong_type",'
                          f'"connector_name":"{cfg.connector}","bridge_name":"{name}",'
                          f'"bridge_type":"{stype}"}}')

    async def create_source(self, stype: str, name: str, body: dict) -> Source:
        self._check_new(stype, name, SOURCE_TYPES)
        async with config_lock(self.broker):
            if f"{stype}:{name}" in self.sources:
                raise AlreadyExists("source already exists")
            return await self._put_source(stype, name, body, None)

    async def update_source(self, stype: str, name: str, body: dict) -> Source:
        async with config_lock(self.broker):
            old = self.source(stype, name)
            body = unmask(body, self.raw_entry("sources", stype, name))
            return await self._put_source(stype, name, body, old)

    async def _put_source(self, stype, name, body, old: Source | None) -> Source:
        new_cfg = self._validated("sources", stype, name, body)
        cfg = getattr(new_cfg.sources, stype)[name]
        self._source_connector(stype, name, cfg)
        src = old or Source(stype, name, cfg)
        if old is not None:
            self._stop_source(old)
            src.cfg = cfg
        self.sources[src.id] = src
        await self._save(new_cfg, "sources")
        self._start_source(src)
        return src

    async def delete_source(self, stype: str, name: str) -> None:
        async with config_lock(self.broker):
            src = self.source(stype, name)
            new_cfg = self._validated("sources", stype, name, None)
            self._stop_source(src)
            del self.sources[src.id]
            await self._save(new_cfg, "sources")

    async def enable_source(self, stype: str, name: str, enable: bool) -> None:
        async with config_lock(self.broker):
            old = self.source(stype, name)
            body = dict(self.raw_entry("sources", stype, name), enable=enable)
            await self._put_source(stype, name, body, old)

    async def start_source(self, stype: str, name: str) -> None:
        src = self.source(stype, name)
        conn = self.connectors.get(src.connector_id)
        if not src.cfg.enable or conn is None or not conn.cfg.enable:
            raise Disabled("Forbidden operation, bridge not enabled")
        await conn.first_check()

    async def probe_source(self, stype: str, body: dict) -> None:
        if stype not in SOURCE_TYPES:
            raise Invalid(f"unknown resource type: {stype}")
        name = body.pop("name", None) or "probe"
        new_cfg = self._validated("sources", stype, "probe", body)
        cfg = getattr(new_cfg.sources, stype)["probe"]
        self._source_connector(stype, name, cfg)
        conn = self.connectors[f"mqtt:{cfg.connector}"]
        if conn.resource is None:
            raise Invalid("connector is not enabled")
        reason = await self.io.run(conn.resource.health_check())
        if reason is not None:
            raise Invalid(reason)
