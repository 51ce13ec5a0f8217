"""The MQTT connector and action (EMQX's emqx_bridge_mqtt): a pool of `pool_size` clients
(emqpy/connectors/mqtt.py) to one remote broker, and per action the PUBLISH rendered from a
rule's output.

Client ids follow EMQX: the connector's name and 8 hex digits of the node name's SHA-1, then
`:<worker>`, kept within 23 bytes by hashing when longer (after `clientid_prefix`, if set).
A publish the remote broker refuses (an MQTT 5 reason code other than success / no matching
subscribers) is a final failure; a lost link or no acknowledgement in time is recoverable (the
worker sends it again: at least once).
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
from pathlib import Path

from emqpy.config.bridges import parse_server
from emqpy.connectors.mqtt import MqttClient
from emqpy.templates import Template, to_text

from .http import ConnectorError, client_ssl_context
from .worker import FAIL, OK, RETRY

log = logging.getLogger("emqpy.bridge")

_PROTO = {"v3": 3, "v4": 4, "v5": 5}
_MAX_PREFIX = 19  # longer prefixes leave no room for a hash within 23 bytes
_CONNECT_TIMEOUT = 30.0  # EMQX's connect_timeout of the bridge's clients
_HEALTH_WAIT = 3.0  # how long a health check waits for a client that is connecting
_ACCEPTED = (0x00, 0x10)  # PUBACK success, no matching subscribers


def _short(text: str, n: int) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:n]


def _within(base: str, worker: int, n: int) -> str:
    joined = f"{base}:{worker}"
    return joined if len(joined.encode()) <= n else _short(joined, n)


def client_id(prefix: str | None, name: str, node: str, worker: int) -> str:
    """The client id of pool worker `worker` (1-based), as EMQX makes it."""
    base = name + _short(node, 8)
    if not prefix:
        return _within(base, worker, 23)
    if len(prefix.encode()) <= _MAX_PREFIX:
        return prefix + _within(base, worker, 23 - len(prefix.encode()))
    return f"{prefix}{base}:{worker}"


class MqttConnector:
    """`connectors.mqtt.<name>` running: its clients, kept connected, and their health."""

    type = "mqtt"

    def __init__(self, cfg, data_dir: Path, name: str = "", node: str = ""):
        self.cfg = cfg
        self.host, self.port = parse_server(cfg.server)
        self.ssl_ctx = client_ssl_context(cfg.ssl, data_dir) if cfg.ssl.enable else None
        self.name, self.node = name, node
        self.clients: list[MqttClient] = []
        self._turn = itertools.count()
        self.on_message = None  # set by a source before `open` (emqpy/bridge/source.py)
        self.subscriptions: list[tuple[str, int]] = []

    def _client(self, worker: int) -> MqttClient:
        cfg = self.cfg
        sni = cfg.ssl.server_name_indication
        proto = _PROTO[cfg.proto_ver]
        return MqttClient(
            self.host, self.port, clientid=client_id(cfg.clientid_prefix, self.name,
                                                     self.node, worker),
            proto_ver=proto, username=cfg.username, password=cfg.password,
            keepalive=max(0, int(-(-cfg.keepalive // 1))), clean_start=cfg.clean_start,
            ssl=self.ssl_ctx, server_hostname=None if sni == "disable" else (sni or self.host),
            max_inflight=cfg.max_inflight or 65535, connect_timeout=_CONNECT_TIMEOUT,
            reconnect_interval=min(cfg.resource_opts.health_check_interval, 15.0),
            on_message=self._received, bridge_mode=cfg.bridge_mode)

    def _received(self, pub) -> None:
        if self.on_message is not None:
            self.on_message(self, pub)

    def open(self) -> None:
        """Start the clients (in the I/O loop); they connect, and reconnect, on their own."""
        self.clients = [self._client(i) for i in range(1, self.cfg.pool_size + 1)]
        for c in self.clients:
            c.start()

    async def subscribe(self, filters: list[tuple[str, int]]) -> None:
        """Subscribe as EMQX does: a shared subscription (`$share/...`) from every client of
        the pool, any other from the first client only (else each message would come once
        per client). Each client restores its subscriptions after a reconnect."""
        self.subscriptions.extend(filters)
        shared = [f for f in filters if f[0].startswith("$share/")]
        calls = [c.subscribe(shared) for c in self.clients if shared]
        if len(shared) < len(filters) and self.clients:
            if self.cfg.pool_size > 1:
                log.warning("connector mqtt:%s: a remote topic that is not a shared "
                            "subscription uses only one connection of the pool", self.name)
            calls.append(self.clients[0].subscribe(
                [f for f in filters if not f[0].startswith("$share/")]))
        await asyncio.gather(*calls, return_exceptions=True)

    async def stop(self) -> None:
        clients, self.clients = self.clients, []
        await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)

    async def health_check(self) -> str | None:
        """None when every client is connected, else why one is not (EMQX: the worst status
        of the pool wins)."""
        clients = self.clients
        if not clients:  # a probe: connect once and disconnect
            return await self._probe()
        await asyncio.gather(*(c.wait_connected(_HEALTH_WAIT) for c in clients))
        for c in clients:
            if c.status != "connected":
                return c.last_error or c.status
        return None

    async def _probe(self) -> str | None:
        client = self._client(1)
        client.connect_timeout = min(_CONNECT_TIMEOUT, 10.0)
        try:
            await client.connect()
        except ConnectionError as e:
            return str(e)
        finally:
            await client.stop()
        return None

    def pick(self) -> MqttClient | None:
        """A connected client, in turn."""
        clients = self.clients
        n = len(clients)
        start = next(self._turn)
        for i in range(n):
            c = clients[(start + i) % n]
            if c.status == "connected":
                return c
        return None

    def action(self, params) -> "MqttAction":
        return MqttAction(self, params)


def _template(v):
    return Template(v) if isinstance(v, str) else v


def _value(t: Template, selected: dict, envelope: dict):
    """A one-placeholder template's value itself (None when absent), looked up in the rule's
    output, else the envelope; any other template: its text."""
    p = t.simple_var
    if p is None:
        return t.render(selected, envelope, missing="")
    return t.value(selected if not p or p[0] in selected else envelope, None)


class MqttAction:
    """The PUBLISH one `actions.mqtt.<name>` makes per message."""

    def __init__(self, connector: MqttConnector, params):
        self.connector = connector
        self.topic = Template(params.topic)
        self.qos = _template(params.qos)
        self.retain = _template(params.retain)
        self.payload = Template(params.payload) if params.payload is not None else None
        templates = [t for t in (self.topic, self.qos, self.retain, self.payload)
                     if isinstance(t, Template)]
        self.envelope_keys = frozenset().union(*(t.names for t in templates))
        self.request_timeout = _CONNECT_TIMEOUT

    def render(self, selected: dict, envelope: dict) -> tuple[str, bytes, int, bool]:
        """(topic, payload, qos, retain); ValueError for a qos/retain that is not one."""
        topic = self.topic.render(selected, envelope, missing="")
        if self.payload is None:
            payload = to_text(selected)
        else:
            payload = self.payload.render(selected, envelope, missing="")
        qos = self.qos
        if isinstance(qos, Template):
            qos = _value(qos, selected, envelope)
            qos = 0 if qos is None else qos
            if isinstance(qos, str) and qos.isdigit():
                qos = int(qos)
        if qos not in (0, 1, 2) or isinstance(qos, bool):
            raise ValueError(f"qos {qos!r} is not 0, 1 or 2")
        retain = self.retain
        if isinstance(retain, Template):
            retain = _value(retain, selected, envelope)
            retain = {None: False, "true": True, "false": False}.get(retain, retain) \
                if not isinstance(retain, bool) else retain
        if not isinstance(retain, bool):
            raise ValueError(f"retain {retain!r} is not a boolean")
        if not topic:
            raise ValueError("the topic template rendered empty")
        return topic, payload.encode("utf-8", "surrogateescape"), qos, retain

    def send_now(self, selected: dict, envelope: dict, done) -> bool:
        """The delivery without a coroutine, when it can be made at once (a connected client
        with room; QoS 1/2: a free inflight slot): `done(outcome, reason)` is called now
        (QoS 0, or a message that cannot be published) or when acknowledged. False: it
        could not be made at once, `send` it."""
        client = self.connector.pick()
        if client is None or not client.writable:
            return False
        if self.qos in (1, 2) and not client.window_free:  # checked before any work
            return False
        try:
            topic, payload, qos, retain = self.render(selected, envelope)
        except ValueError as e:  # this message cannot be published: final
            done(FAIL, f"bad message: {e}")
            return True
        if qos == 0:
            client.send(topic, payload, 0, retain)
            done(OK, "")
            return True
        fut = client.send_in_window(topic, payload, qos, retain)
        if fut is None:
            return False
        fut.add_done_callback(lambda f: done(*_acknowledged(f)))
        return True

    async def send(self, selected: dict, envelope: dict, timeout: float) -> tuple[int, str]:
        try:
            topic, payload, qos, retain = self.render(selected, envelope)
        except ValueError as e:  # this message cannot be published: final
            return FAIL, f"bad message: {e}"
        client = self.connector.pick()
        if client is None:
            clients = self.connector.clients
            return RETRY, (clients[0].last_error if clients else None) or "not connected"
        try:
            # (asyncio.timeout: a timer, where wait_for would make a task per message)
            async with asyncio.timeout(timeout):
                if qos == 0:
                    if not client.writable:
                        await client.drained()
                    client.send(topic, payload, 0, retain)
                    return OK, ""
                code = await client.publish(topic, payload, qos, retain)
        except (ConnectionError, TimeoutError) as e:
            return RETRY, str(e) or "timeout"
        if code in _ACCEPTED:
            return OK, ""
        return FAIL, f"reason code 0x{code:02x}"


def _acknowledged(fut: asyncio.Future) -> tuple[int, str]:
    """The outcome of a QoS 1/2 PUBLISH from its acknowledgement's future."""
    if fut.cancelled():
        return RETRY, "timeout"
    e = fut.exception()
    if e is not None:
        return RETRY, str(e) or type(e).__name__
    code = fut.result()
    return (OK, "") if code in _ACCEPTED else (FAIL, f"reason code 0x{code:02x}")


__all__ = ["ConnectorError", "MqttAction", "MqttConnector", "client_id"]
