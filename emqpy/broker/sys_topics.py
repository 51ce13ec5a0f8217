"""`$SYS` topics as EMQX publishes them: node facts, heartbeat, stats, metrics, client events."""
from __future__ import annotations

import json
import time

from emqpy.timefmt import rfc3339


class SysPublisher:
    def __init__(self, broker):
        self.broker = broker
        self._handles: list = []

    @property
    def prefix(self) -> str:
        return f"$SYS/brokers/{self.broker.node_name}/"

    def start(self) -> None:
        cfg = self.broker.config.sys_topics
        if cfg.sys_msg_interval:
            self._every(cfg.sys_msg_interval, self.publish_info, now=True)
        if cfg.sys_heartbeat_interval:
            self._every(cfg.sys_heartbeat_interval, self.publish_heartbeat, now=True)

    def stop(self) -> None:
        for h in self._handles:
            h.cancel()
        self._handles.clear()

    def _every(self, interval: float, fn, now: bool = False) -> None:
        loop = self.broker.loop
        slot = len(self._handles)
        self._handles.append(None)

        def tick():
            try:
                fn()
            finally:
                self._handles[slot] = loop.call_later(interval, tick)

        self._handles[slot] = loop.call_soon(tick) if now else loop.call_later(interval, tick)

    def _pub(self, topic: str, payload, retain: bool = False) -> None:
        if isinstance(payload, str):
            payload = payload.encode()
        self.broker.publish_from_system(topic, payload, 0, retain)

    def publish_info(self) -> None:
        b = self.broker
        p = self.prefix
        self._pub("$SYS/brokers", b.node_name, retain=True)
        self._pub(p + "version", b.version, retain=True)
        self._pub(p + "sysdescr", f"emqpy {b.emqpy_version}, an EMQX {b.emqx_version} "
                                  "compatible MQTT broker",
                  retain=True)
        for name, value in b.stats().items():
            self._pub(p + "stats/" + name.replace(".", "/"), str(value))
        for name, value in b.metrics.snapshot().items():
            self._pub(p + "metrics/" + name.replace(".", "/"), str(value))

    def publish_heartbeat(self) -> None:
        b = self.broker
        self._pub(self.prefix + "uptime", str(int((time.time() - b.started_at) * 1000)))
        self._pub(self.prefix + "datetime", rfc3339(time.time()))

    def _event_enabled(self, name: str) -> bool:
        return getattr(self.broker.config.sys_topics.sys_event_messages, name, False)

    def client_connected(self, ch) -> None:
        # Building the event costs more than the rest of a CONNECT: skip it unless some
        # subscription could receive it (only "$..." filters match $SYS topics).
        if not self.broker.router.n_dollar or not self._event_enabled("client_connected"):
            return
        now = time.time()
        payload = {
            "clientid": ch.clientid, "username": ch.username, "ipaddress": ch.peerhost,
            "protocol": "mqtt", "proto_name": ch.proto_name, "proto_ver": ch.version, "keepalive": ch.keepalive,
            "clean_start": bool(ch.connect_pkt.clean_start) if ch.connect_pkt else True,
            "expiry_interval": int(ch.expiry_interval * 1000), "connected_at": int(now * 1000),
            "sockport": ch.sockport, "ts": int(now * 1000),
        }
        self._pub(f"{self.prefix}clients/{ch.clientid}/connected", json.dumps(payload))

    def client_disconnected(self, ch, reason: str) -> None:
        if not self.broker.router.n_dollar or not self._event_enabled("client_disconnected"):
            return
        now = time.time()
        payload = {
            "clientid": ch.clientid, "username": ch.username, "reason": reason,
            "disconnected_at": int(now * 1000), "ts": int(now * 1000),
            "proto_name": ch.proto_name, "proto_ver": ch.version, "ipaddress": ch.peerhost,
        }
        self._pub(f"{self.prefix}clients/{ch.clientid}/disconnected", json.dumps(payload))
