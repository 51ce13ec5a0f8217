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
import logging
import time
import uuid

from emqpy.config.bridges import SOURCE_TYPES
from emqpy.broker.message import Message
from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import matches, parse_share, validate_topic_name

from .kinds import ChannelKind
from .metrics import ActionMetrics
from .mqtt import MqttAction

log = logging.getLogger("emqpy.bridge")


class Source:
    """One configured source: its metrics (kept across updates) and, while it and its
    connector run, its subscription."""

    def __init__(self, stype: str, name: str, cfg):
        self.type, self.name, self.cfg = stype, name, cfg
        self.metrics = ActionMetrics()
        self.running = False
        self.local = None  # renders `parameters.local` (a v1 bridge's local republish)

    @property
    def id(self) -> str:
        return f"{self.type}:{self.name}"

    @property
    def connector_id(self) -> str:
        return f"mqtt:{self.cfg.connector}"


def republish(broker, src: "Source", row: dict) -> None:
    """A v1 MQTT bridge's `ingress.local`: the received message published in this broker
    (topic, qos, retain, payload templates over its columns; payload: all of them as JSON)."""
    try:
        topic, payload, qos, retain = src.local.render(row, {})
        validate_topic_name(topic)
    except (ValueError, MQTTError) as e:
        log.warning("source %s: received message not published locally: %s", src.id, e)
        return
    broker.metrics.c["messages.publish"] += 1
    broker.publish(Message(topic, payload, qos, retain, None, sender="bridge"))


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


class SourceKind(ChannelKind):
    """The `sources` root, and the running of its sources."""
    root, types, what = "sources", SOURCE_TYPES, "source"

    def connector_type(self, stype: str) -> str:
        return "mqtt"

    def new(self, stype, name, cfg) -> Source:
        return Source(stype, name, cfg)

    def start(self, src: Source) -> None:
        conn = self.connector_of(src)
        if not src.cfg.enable or conn is None or conn.resource is None:
            return
        resource = conn.resource
        loop = asyncio.get_running_loop()

        def received(connector, pub) -> None:  # in the I/O loop
            for s in self._sources_of(connector):
                if matches(parse_share(s.cfg.parameters.topic)[1], pub.topic):
                    loop.call_soon_threadsafe(self._deliver, s, pub, connector.cfg.server)

        def install() -> None:
            resource.on_message = received
            asyncio.get_running_loop().create_task(
                resource.subscribe([(src.cfg.parameters.topic, src.cfg.parameters.qos)]))
        self.svc.io.call(install)
        local = src.cfg.parameters.local
        src.local = MqttAction(None, local) if local.topic is not None else None
        src.running = True

    def _sources_of(self, resource) -> list[Source]:
        return [s for s in list(self.entries.values()) if s.running
                and (c := self.connector_of(s)) is not None and c.resource is resource]

    def _deliver(self, src: Source, pub, server: str) -> None:
        if not src.running:
            return
        src.metrics.inc("received")
        from emqpy.rule_engine import apply_bridge_message
        row = columns(pub, server)
        apply_bridge_message(self.svc.broker, f"$bridges/{src.id}", row)
        if src.local is not None:
            republish(self.svc.broker, src, row)

    async def stop(self, src: Source, destroy: bool = False) -> None:
        """Stop taking its messages. The connector's clients stay subscribed until the
        connector restarts (another source may share the topic); what still comes for this
        source is not taken."""
        src.running = False

    def running(self, src: Source) -> bool:
        return src.running

    def rules(self, src: Source) -> list[str]:
        eng = self.svc.broker.rule_engine
        if eng is None:
            return []
        refs = (f"$bridges/{src.id}", f"$sources/{src.id}")
        return sorted(r.id for r in eng.rules.values() if any(f in refs for f in r.froms))

    def may_delete(self, src: Source, force: bool) -> list[str]:
        self.refuse_if_used(self.rules(src), force)
        return []
