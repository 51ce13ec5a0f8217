"""An asyncio MQTT client for connections to other brokers (EMQX's MQTT connector: actions
that publish to a remote broker, sources that subscribe to one).

Built on emqpy's own codec (emqpy.mqtt: the same packet classes the broker uses, both
directions), so it speaks 3.1, 3.1.1 and 5.0 exactly as the broker parses them and costs no
second MQTT library.

    client = MqttClient("broker.example", 1883, clientid="bridge-1", proto_ver=5,
                        on_message=lambda pub: ...)
    client.start()                             # connects, and reconnects when the link drops
    await client.wait_connected(5)
    code = await client.publish("t", b"x", qos=1)   # reason code of PUBACK (0: success)
    await client.subscribe([("remote/#", 1)])       # restored after every reconnect
    await client.stop()

``status`` is ``connected``, ``connecting`` or ``disconnected`` (as EMQX reports a
connector), ``last_error`` says why the last attempt or link failed. A QoS 1/2 publish whose
acknowledgement the link took with it raises ``ConnectionError``: the caller (an action's
worker) sends it again, which is MQTT's at-least-once.
"""
from __future__ import annotations

import asyncio
import logging
import ssl as ssl_mod
from typing import Callable

from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.frames import FrameReader
from emqpy.mqtt.packets import (Connack, Connect, Disconnect, Pingreq, Puback, Pubcomp, Publish,
                                Pubrec, Pubrel, Suback, Subscribe, SubOpts)
from emqpy.mqtt.reason_codes import MQTTError

log = logging.getLogger("emqpy.connectors.mqtt")

_PUBLISH, _PUBACK, _PUBREC, _PUBREL, _PUBCOMP = 3, 4, 5, 6, 7
_CONNACK, _SUBACK, _PINGRESP, _DISCONNECT = 2, 9, 13, 14
_MAX_PACKET = 256 * 1024 * 1024

# CONNACK return codes of MQTT 3.1.1, and MQTT 5's error reason codes, in words
_V3_REFUSED = {1: "unacceptable_protocol_version", 2: "client_identifier_not_valid",
               3: "server_unavailable", 4: "malformed_username_or_password",
               5: "unauthorized_client"}
_V5_ERRORS = {v: k.lower() for k, v in vars(rc).items()
              if k.isupper() and not k.startswith("V3_") and isinstance(v, int) and v >= 0x80}


def _code_name(code: int) -> str:
    return _V5_ERRORS.get(code, f"reason_code_0x{code:02x}")


class _Link(asyncio.Protocol):
    """One TCP (or TLS) connection: frames in, packets dispatched to the client."""

    def __init__(self, client: "MqttClient"):
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.reader = FrameReader(_MAX_PACKET)
        self.connack: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.paused: asyncio.Future | None = None
        self.heard = True  # a packet came since the last keep-alive tick

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.reader.feed(data)
            for byte0, body in frames:
                self.heard = True
                self.client._packet(self, byte0, body)
        except MQTTError as e:
            self.client._fail(f"bad packet from the server: {e}")
            self.transport.close()

    def connection_lost(self, exc) -> None:
        if not self.connack.done():
            self.connack.set_exception(ConnectionError(str(exc or "connection closed")))
        if not self.closed.done():
            self.closed.set_result(str(exc) if exc else "connection closed")
        if self.paused is not None and not self.paused.done():
            self.paused.set_result(None)
        self.client._lost(self)

    def pause_writing(self) -> None:
        self.paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.paused is not None and not self.paused.done():
            self.paused.set_result(None)
        self.paused = None

    def write(self, data: bytes) -> None:
        self.transport.write(data)


class MqttClient:
    def __init__(self, host: str, port: int = 1883, *, clientid: str, proto_ver: int = 4,
                 username: str | None = None, password: str | None = None,
                 keepalive: int = 300, clean_start: bool = True,
                 ssl: ssl_mod.SSLContext | None = None, server_hostname: str | None = None,
                 max_inflight: int = 32, connect_timeout: float = 15.0,
                 reconnect_interval: float = 15.0,
                 on_message: Callable[[Publish], None] | None = None,
                 on_status: Callable[[str], None] | None = None, bridge_mode: bool = False):
        self.host, self.port = host, port
        self.clientid = clientid
        self.proto_ver = proto_ver
        # tell the remote broker this is a bridge (the 0x80 bit of the protocol level): only
        # MQTT 3.1/3.1.1 have it
        self.bridge_mode = bridge_mode and proto_ver < 5
        self.username, self.password = username, password
        self.keepalive = keepalive
        self.clean_start = clean_start
        self.ssl, self.server_hostname = ssl, server_hostname
        self.max_inflight = max(1, max_inflight)
        self.connect_timeout = connect_timeout
        self.reconnect_interval = reconnect_interval
        self.on_message = on_message
        self.on_status = on_status
        self.status = "disconnected"
        self.last_error: str | None = None
        self.connack_props: dict = {}
        self._link: _Link | None = None
        self._subscriptions: dict[str, SubOpts] = {}
        self._next_pid = 0
        self._waiting: dict[int, asyncio.Future] = {}  # our packet id -> its final ack
        self._slots = asyncio.Semaphore(self.max_inflight)
        self._received_qos2: set[int] = set()  # the server's QoS 2 ids awaiting PUBREL
        self._runner: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background and keep connected until ``stop``."""
        if self._runner is None:
            self._stopping = False
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def wait_connected(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def stop(self) -> None:
        self._stopping = True
        runner, self._runner = self._runner, None
        link = self._link
        if link is not None and link.transport is not None:
            if link.connack.done() and not link.connack.exception():
                link.write(Disconnect().encode(self.proto_ver))
            link.transport.close()
        if runner is not None:
            runner.cancel()
            try:
                await runner
            except asyncio.CancelledError:
                pass
        self._set_status("disconnected")

    async def connect(self) -> None:
        """One attempt: open the link and wait for a successful CONNACK (raises
        ``ConnectionError`` saying why not). ``start`` calls it in a loop."""
        loop = asyncio.get_running_loop()
        self._set_status("connecting")
        try:
            _, link = await asyncio.wait_for(loop.create_connection(
                lambda: _Link(self), self.host, self.port, ssl=self.ssl,
                server_hostname=self.server_hostname if self.ssl else None),
                self.connect_timeout)
        except (OSError, asyncio.TimeoutError, ssl_mod.SSLError) as e:
            raise ConnectionError(self._fail(f"cannot connect to {self.host}:{self.port}: "
                                             f"{e or type(e).__name__}")) from None
        self._link = link
        pkt = Connect(self.clientid, self.proto_ver, self.clean_start, self.keepalive,
                      None, self.username,
                      None if self.password is None else self.password.encode(),
                      is_bridge=self.bridge_mode)
        link.write(pkt.encode())
        try:
            connack: Connack = await asyncio.wait_for(link.connack, self.connect_timeout)
        except (ConnectionError, asyncio.TimeoutError) as e:
            link.transport.close()
            raise ConnectionError(self._fail(f"no CONNACK from {self.host}:{self.port}: "
                                             f"{e or 'timeout'}")) from None
        if connack.reason_code:
            link.transport.close()
            name = (_code_name(connack.reason_code) if self.proto_ver == 5
                    else _V3_REFUSED.get(connack.reason_code, str(connack.reason_code)))
            raise ConnectionError(self._fail(f"connection refused: {name}"))
        self.connack_props = connack.props
        self.last_error = None
        if self._subscriptions:
            await self._send_subscribe(list(self._subscriptions.items()))
        self._set_status("connected")
        self._connected.set()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.connect()
            except ConnectionError:
                self._set_status("connecting")
                await asyncio.sleep(self.reconnect_interval)
                continue
            link = self._link
            ticker = asyncio.get_running_loop().create_task(self._keepalive(link))
            try:
                reason = await link.closed
            finally:
                ticker.cancel()
            if not self._stopping:
                self._fail(f"connection lost: {reason}")
                self._set_status("connecting")
                await asyncio.sleep(min(self.reconnect_interval, 1.0))

    async def _keepalive(self, link: _Link) -> None:
        if not self.keepalive:
            return
        ping = Pingreq().encode()
        while True:
            link.heard = False
            await asyncio.sleep(self.keepalive)
            link.write(ping)
            await asyncio.sleep(self.keepalive / 2)
            if not link.heard:  # nothing, not even PINGRESP, in 1.5 keep-alive periods
                self._fail("keep-alive timeout")
                link.transport.close()
                return

    def _set_status(self, status: str) -> None:
        if status != "connected":
            self._connected.clear()
        if status != self.status:
            self.status = status
            if self.on_status is not None:
                self.on_status(status)

    def _fail(self, why: str) -> str:
        self.last_error = why
        return why

    def _lost(self, link: _Link) -> None:
        if link is not self._link:
            return
        self._link = None
        self._set_status("disconnected" if self._stopping else "connecting")
        waiting, self._waiting = self._waiting, {}
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(ConnectionError("connection lost before the acknowledgement"))
        self._received_qos2.clear()

    # -- sending ---------------------------------------------------------------------------

    def _pid(self) -> int:
        for _ in range(65535):
            self._next_pid = self._next_pid % 65535 + 1
            if self._next_pid not in self._waiting:
                return self._next_pid
        raise RuntimeError("no free packet id")

    def _live_link(self) -> _Link:
        link = self._link
        if link is None or self.status != "connected":
            raise ConnectionError(self.last_error or "not connected")
        return link

    @property
    def inflight(self) -> int:
        """QoS 1/2 PUBLISHes sent and not yet acknowledged."""
        return self.max_inflight - self._slots._value

    async def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                      props: dict | None = None) -> int:
        """Send a PUBLISH; for QoS 1/2 wait for a free slot of the inflight window, then for
        PUBACK/PUBCOMP, and return its reason code (0 success; MQTT 3 has none: 0)."""
        link = self._live_link()
        if link.paused is not None:
            await link.paused
        if qos == 0:
            self.send(topic, payload, 0, retain, props)
            return 0
        async with self._slots:
            return await self.send(topic, payload, qos, retain, props)

    def send(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
             props: dict | None = None) -> asyncio.Future | None:
        """Write a PUBLISH now, without waiting: for QoS 1/2 the future of its final
        acknowledgement's reason code. The caller keeps within ``max_inflight`` and watches
        ``writable`` (``publish`` does both)."""
        link = self._live_link()
        if qos == 0:
            link.write(Publish(topic, payload, 0, retain, props=props).encode(self.proto_ver))
            return None
        pid = self._pid()
        fut = asyncio.get_running_loop().create_future()
        self._waiting[pid] = fut
        link.write(Publish(topic, payload, qos, retain, False, pid, props)
                   .encode(self.proto_ver))
        return fut

    @property
    def window_free(self) -> bool:
        """A QoS 1/2 PUBLISH can be sent now without waiting for a slot."""
        return not self._slots.locked()

    def send_in_window(self, topic: str, payload: bytes, qos: int, retain: bool = False
                       ) -> asyncio.Future | None:
        """`send` a QoS 1/2 PUBLISH if a slot of the inflight window is free now (taken until
        its acknowledgement, as `publish` takes it), else None: a caller that cannot wait
        (one callback per message instead of one task) tries `publish` then."""
        slots = self._slots
        if slots.locked():
            return None
        fut = self.send(topic, payload, qos, retain)
        slots._value -= 1  # acquired without waiting: free, checked above
        fut.add_done_callback(lambda _: slots.release())
        return fut

    @property
    def writable(self) -> bool:
        """Connected and the socket's buffer is below its high-water mark."""
        link = self._link
        return link is not None and self.status == "connected" and link.paused is None

    async def drained(self) -> None:
        """Return once the socket's buffer is below its high-water mark again."""
        link = self._live_link()
        if link.paused is not None:
            await link.paused

    async def subscribe(self, filters: list[tuple[str, int]]) -> list[int]:
        """Subscribe (and remember, to subscribe again after a reconnect); the SUBACK codes,
        or [] when not connected now (the subscription is made once connected)."""
        opts = [(f, SubOpts(qos)) for f, qos in filters]
        for f, o in opts:
            self._subscriptions[f] = o
        if self.status != "connected":
            return []
        return await self._send_subscribe(opts)

    async def _send_subscribe(self, opts: list) -> list[int]:
        link = self._link
        pid = self._pid()
        fut = asyncio.get_running_loop().create_future()
        self._waiting[pid] = fut
        link.write(Subscribe(pid, opts).encode(self.proto_ver))
        return await asyncio.wait_for(fut, self.connect_timeout)

    # -- receiving -------------------------------------------------------------------------

    def _packet(self, link: _Link, byte0: int, body) -> None:
        ptype = byte0 >> 4
        v = self.proto_ver
        if ptype == _PUBLISH:
            pub = Publish.decode(byte0 & 0x0F, body, v)
            if pub.qos == 2:
                link.write(Pubrec(pub.packet_id).encode(v))
                if pub.packet_id in self._received_qos2:
                    return  # a resend of one we have: deliver once
                self._received_qos2.add(pub.packet_id)
            elif pub.qos == 1:
                link.write(Puback(pub.packet_id).encode(v))
            if self.on_message is not None:
                try:
                    self.on_message(pub)
                except Exception:
                    log.exception("MQTT client %s: message handler failed", self.clientid)
        elif ptype in (_PUBACK, _PUBCOMP):
            ack = (Puback if ptype == _PUBACK else Pubcomp).decode(byte0 & 0x0F, body, v)
            self._settle(ack.packet_id, ack.reason_code)
        elif ptype == _PUBREC:
            ack = Pubrec.decode(byte0 & 0x0F, body, v)
            if ack.reason_code >= 0x80:
                self._settle(ack.packet_id, ack.reason_code)
            else:
                link.write(Pubrel(ack.packet_id).encode(v))
        elif ptype == _PUBREL:
            rel = Pubrel.decode(byte0 & 0x0F, body, v)
            self._received_qos2.discard(rel.packet_id)
            link.write(Pubcomp(rel.packet_id).encode(v))
        elif ptype == _SUBACK:
            ack = Suback.decode(byte0 & 0x0F, body, v)
            self._settle(ack.packet_id, ack.reason_codes)
        elif ptype == _CONNACK:
            if not link.connack.done():
                link.connack.set_result(Connack.decode(byte0 & 0x0F, body, v))
        elif ptype == _DISCONNECT:
            d = Disconnect.decode(byte0 & 0x0F, body, v)
            self._fail(f"disconnected by the server: {_code_name(d.reason_code)}")
            link.transport.close()
        # PINGRESP: `heard` is enough

    def _settle(self, pid: int, result) -> None:
        fut = self._waiting.pop(pid, None)
        if fut is not None and not fut.done():
            fut.set_result(result)
