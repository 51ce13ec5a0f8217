"""One MQTT connection: an asyncio.Protocol that decodes frames and runs the protocol.

Each packet type has one handler here (`_on_<type>`). Output is appended to `_out` and written
once per event-loop iteration by the broker's flusher, so a burst of deliveries becomes one
write. `_out_bytes` counts what the broker itself has queued: when it passes the high-water mark
the channel is congested and publishers feeding it stop reading until it drains.
"""
from __future__ import annotations

import asyncio
import logging
import time

from emqpy.broker.deferred import Deferred
from emqpy.broker.message import Message
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.frames import FrameReader
from emqpy.mqtt.packets import fixed_header
from emqpy.mqtt.packets import (
    Auth, Connack, Connect, Disconnect, Publish, Puback, Pubcomp, Pubrec, Pubrel, Suback, Subscribe,
    Unsuback, Unsubscribe, decode_connect, decode_packet, parse_plain_publish,
)
from emqpy.mqtt.properties import has_invalid_utf8
from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import validate_topic_name

log = logging.getLogger("emqpy.channel")

NEW, CONNECTING, CONNECTED, CLOSED = range(4)
_PINGRESP = b"\xd0\x00"
_DUP_FLAG = 0x08


class Channel(asyncio.Protocol):
    __slots__ = (
        "broker", "listener", "transport", "reader", "state", "version", "session", "clientid",
        "username", "peerhost", "peerport", "_sockport", "keepalive", "_recv_flag", "_deadline",
        "_out", "_out_bytes", "_paused_writing", "congested", "_waiters",
        "_read_paused", "_aliases", "will", "client_max_packet", "connected_at", "connect_pkt",
        "_pending", "_close_reason", "_hwm", "_send_timeout_handle", "is_superuser",
        "client_attrs", "mountpoint", "proto_name", "expiry_interval", "recv_cnt", "send_cnt",
        "recv_oct", "send_oct", "send_pkt", "send_other", "send_q1", "send_q2", "_drops_base",
        "created_at", "disconnected_at", "_peer_cert",
        "_ka_interval", "_ka_start", "alias_max", "_out_aliases", "_auth_method", "_auth_state",
        "_auth_data",
    )

    def __init__(self, broker, listener):
        self.broker = broker
        self.listener = listener
        self.transport = None
        self.reader = FrameReader(broker.max_packet_size)
        self.state = NEW
        self.version = 4
        self.session = None
        self.clientid = None
        self.username = None
        self.peerhost = self.peerport = self._sockport = None
        self.keepalive = 0
        self._recv_flag = False
        self._deadline = None  # second of the handshake or keep-alive deadline (DeadlineWheel)
        self._out = []
        self._out_bytes = 0
        self._paused_writing = False
        self.congested = False
        self._waiters = None
        self._read_paused = False
        self._aliases = None
        self.will = None
        self.client_max_packet = 0
        self.connected_at = None
        self.connect_pkt = None
        self._pending = None
        self._close_reason = None
        self._hwm = broker.out_high_watermark
        self._send_timeout_handle = None
        self.is_superuser = False
        self.client_attrs = None
        self.mountpoint = None
        self.proto_name = "MQTT"
        self.expiry_interval = 0
        # Counters (see stats): socket reads/writes and their bytes; MQTT packets handed to the
        # socket, and of those the non-PUBLISH ones and the QoS 1/2 PUBLISHes (QoS 0 is what
        # remains, so the QoS 0 fan-out counts nothing per message). The frame reader counts
        # received packets the same way.
        self.recv_cnt = self.send_cnt = self.recv_oct = self.send_oct = 0
        self.send_pkt = self.send_other = self.send_q1 = self.send_q2 = 0
        self._drops_base = None  # the session's drop tally when this connection began
        self.created_at = time.time()
        self.disconnected_at = None
        self._peer_cert = None
        self._ka_interval = 0.0
        self._ka_start = None  # loop time keep alive started (the handshake deadline stands in)
        self.alias_max = 0  # the client's Topic Alias Maximum: aliases we may assign (MQTT 5)
        self._out_aliases = None
        self._auth_method = self._auth_state = self._auth_data = None  # MQTT 5 enhanced auth

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self.peerhost, self.peerport = peer[0], peer[1]
        transport.set_write_buffer_limits(high=self._hwm)  # every listener's transport has it
        self.listener.on_connection_made(self)
        idle = self.broker.idle_timeout
        if idle:
            self._deadline = self.broker.deadlines.add(self, idle)

    def _drop_deadline(self) -> None:
        if self._deadline is not None:
            self.broker.deadlines.discard(self, self._deadline)
            self._deadline = None

    @property
    def sockport(self) -> int | None:
        """The local port the client connected to (the listener's, unless PROXY said else)."""
        return self._sockport if self._sockport is not None else self.listener.port

    @sockport.setter
    def sockport(self, port: int | None) -> None:
        self._sockport = port

    def data_received(self, data: bytes) -> None:
        self._recv_flag = True
        self.recv_cnt += 1
        self.recv_oct += len(data)
        broker = self.broker
        broker.metrics.c["bytes.received"] += len(data)  # EMQX node metric bytes.received
        try:
            frames = self.reader.feed(data)
        except MQTTError as e:
            self._protocol_error(e)
            return
        if self._pending is not None:  # waiting for an asynchronous authentication
            self._pending.extend(frames)
            return
        self._process(frames)
        broker.current_publisher = None

    def _process(self, frames) -> None:
        handlers = _HANDLERS
        self.broker.current_publisher = self
        for i, (byte0, body) in enumerate(frames):
            if self.state == CLOSED:
                return
            try:
                handlers[byte0 >> 4](self, byte0, body)
            except MQTTError as e:
                self._protocol_error(e)
                return
            except Deferred as d:  # authorization must ask a server: wait, then replay
                self._defer(d.awaitable, frames[i:])
                return
            except Exception:
                log.exception("error handling packet from %s", self.clientid or self.peerhost)
                self.close(rc.IMPLEMENTATION_SPECIFIC_ERROR, "internal_error")
                return
            if self._pending is not None:  # CONNECT went asynchronous: keep the rest for later
                self._pending.extend(frames[i + 1:])
                return

    def _defer(self, awaitable, frames) -> None:
        """Stop reading until `awaitable` is done, then process `frames` again."""
        self._pending = list(frames)
        if self.transport is not None:
            self.transport.pause_reading()
        asyncio.ensure_future(awaitable).add_done_callback(self._resume)

    def _resume(self, task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("deferred check failed: %r", task.exception())
        if self.state == CLOSED:
            return
        pending, self._pending = self._pending, None
        if self.transport is not None:
            self.transport.resume_reading()
        self._process(pending)
        self.broker.current_publisher = None

    def eof_received(self):
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc) -> None:
        if self.state != CLOSED:
            self._closed("sock_closed" if exc is None else "sock_error")
        self.transport = None

    def pause_writing(self) -> None:
        self._paused_writing = True
        self.congested = True
        timeout = self.broker.send_timeout
        if timeout and self._send_timeout_handle is None:
            self._send_timeout_handle = self.broker.loop.call_later(timeout, self._send_timed_out)

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._send_timeout_handle is not None:
            self._send_timeout_handle.cancel()
            self._send_timeout_handle = None
        if self._out_bytes <= self._hwm:
            self._decongest()

    def _send_timed_out(self) -> None:
        self._send_timeout_handle = None
        if self._paused_writing and self.state != CLOSED:
            self.close(None, "send_timeout")

    # -- output ----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        out = self._out
        if not out:
            broker = self.broker
            broker.dirty.append(self)
            if not broker.flush_scheduled:
                broker.schedule_flush()
        out.append(data)
        n = self._out_bytes + len(data)
        self._out_bytes = n
        if n > self._hwm or self.congested:
            self.on_congested()

    def on_congested(self) -> None:
        """Over the high-water mark: the publisher being processed stops reading until we drain."""
        self.congested = True
        pub = self.broker.current_publisher
        if pub is not None and pub is not self:
            pub._wait_for(self)

    def flush(self) -> None:
        out = self._out
        if not out:
            return
        t = self.transport
        self.send_pkt += len(out)  # one chunk per packet
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self._out_bytes = 0
        self.send_oct += len(data)
        self.broker.metrics.c["bytes.sent"] += len(data)  # EMQX node metric bytes.sent
        if t is not None and not t.is_closing():
            self.send_cnt += 1
            t.write(data)
        if self.congested and not self._paused_writing:
            self._decongest()

    def stats(self) -> dict[str, int]:
        """EMQX's per-connection counters (emqx_connection / emqx_channel CHANNEL_METRICS):
        recv_cnt/send_cnt count reads from and writes to the socket, recv_oct/send_oct their
        bytes, recv_pkt/send_pkt MQTT packets (split off the stream / handed to the socket),
        recv_msg/send_msg the PUBLISH packets among them (retransmissions included). Drops
        count from when this connection began, including while its session is offline after
        it (EMQX's disconnected channel process keeps counting too). mailbox_len: received
        packets waiting for an authentication or authorization answer."""
        send_pkt = self.send_pkt + len(self._out)  # (queued ones are counted by kind already)
        send_msg = send_pkt - self.send_other
        r = self.reader
        recv_msg = r.n_frames - r.n_other
        sess = self.session
        drops = dict(sess.drops) if sess is not None and sess.drops else {}
        for reason, n in (self._drops_base or {}).items():
            drops[reason] -= n
        rel = drops.pop("await_pubrel_timeout", 0)
        return {
            "recv_cnt": self.recv_cnt, "recv_oct": self.recv_oct, "recv_pkt": r.n_frames,
            "recv_msg": recv_msg, "recv_msg.qos0": recv_msg - r.n_qos1 - r.n_qos2,
            "recv_msg.qos1": r.n_qos1, "recv_msg.qos2": r.n_qos2,
            "recv_msg.dropped": rel, "recv_msg.dropped.await_pubrel_timeout": rel,
            "send_cnt": self.send_cnt, "send_oct": self.send_oct, "send_pkt": send_pkt,
            "send_msg": send_msg, "send_msg.qos0": send_msg - self.send_q1 - self.send_q2,
            "send_msg.qos1": self.send_q1, "send_msg.qos2": self.send_q2,
            "send_msg.dropped": sum(drops.values()),  # (qos0_msg has no key of its own)
            "send_msg.dropped.expired": drops.get("expired", 0),
            "send_msg.dropped.queue_full": drops.get("queue_full", 0),
            "send_msg.dropped.too_large": drops.get("too_large", 0),
            "mailbox_len": len(self._pending) if self._pending else 0,
        }

    def _wait_for(self, congested) -> None:
        """Stop reading from this publisher until `congested` drains."""
        if congested._waiters is None:
            congested._waiters = set()
        congested._waiters.add(self)
        if not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()

    def _decongest(self) -> None:
        self.congested = False
        waiters = self._waiters
        if waiters:
            self._waiters = None
            for pub in waiters:
                if pub._read_paused and pub.transport is not None and pub.state != CLOSED:
                    pub._read_paused = False
                    pub.transport.resume_reading()

    def send_packet(self, pkt, counter: str | None = None) -> None:
        """Queue a packet other than PUBLISH (`counter`: the node metric to count it in)."""
        self.write(pkt.encode(self.version))
        self.send_other += 1
        if counter:
            self.broker.metrics.c[counter] += 1

    def send_publish(self, msg, qos: int, retain: bool, sub_ids, pid: int, dup: bool = False):
        """Queue a PUBLISH for this client; returns 1 if sent, 0 if dropped as too large."""
        v5 = self.version == 5
        if not qos and self.broker.delivered_hooked:
            # (QoS 1/2: run by Session._send_new, which keeps what it sent for retransmission)
            msg = self.broker.hooks.fold("message.delivered", msg, self) or msg
        if self.mountpoint and msg.topic.startswith(self.mountpoint):
            msg = self._unmount(msg)
        if self.alias_max:
            w = self._aliased_wire(msg, qos, retain, sub_ids)
        else:
            w = msg.wire(v5, qos, retain, sub_ids if v5 else None)
        if qos:
            prefix, suffix = w
            if dup:
                prefix = bytes((prefix[0] | _DUP_FLAG,)) + prefix[1:]
            size = len(prefix) + 2 + len(suffix)
            if self.client_max_packet and size > self.client_max_packet:
                self.session.count_drop("too_large")
                return 0
            self.write(prefix + pid.to_bytes(2, "big") + suffix)
            if qos == 1:
                self.send_q1 += 1
            else:
                self.send_q2 += 1
        else:
            if self.client_max_packet and len(w) > self.client_max_packet:
                self.session.count_drop("too_large")
                return 0
            self.write(w)
        self.broker.metrics.sent_q[qos] += 1
        return 1

    def _aliased_wire(self, msg, qos: int, retain: bool, sub_ids):
        """Outgoing topic aliases as EMQX assigns them: a new topic takes the next free alias
        and is sent with its name once; later PUBLISHes carry only the alias."""
        aliases = self._out_aliases
        if aliases is None:
            aliases = self._out_aliases = {}
        alias = aliases.get(msg.topic)
        send_topic = alias is None
        if alias is None and len(aliases) < self.alias_max:
            alias = aliases[msg.topic] = len(aliases) + 1
        if alias is None:
            return msg.wire(True, qos, retain, sub_ids)
        return msg.encode_with(qos, retain, sub_ids, alias, send_topic)

    def _unmount(self, msg):
        m = Message(msg.topic[len(self.mountpoint):], msg.payload, msg.qos, msg.retain, msg.props,
                    msg.sender, msg.username, msg.peerhost, msg.timestamp)
        m.expire_at = msg.expire_at
        return m

    def send_pubrel(self, pid: int, reason: int = 0) -> None:
        self.send_packet(Pubrel(pid, reason), "packets.pubrel.sent")

    # -- lifecycle -------------------------------------------------------------------------

    def close(self, reason_code: int | None = None, reason: str = "normal",
              props: dict | None = None) -> None:
        """Server-side close: DISCONNECT with `reason_code` first on MQTT 5, then close."""
        if self.state == CLOSED:
            return
        if reason_code is not None and self.version == 5 and self.state == CONNECTED:
            self.send_packet(Disconnect(reason_code, props), "packets.disconnect.sent")
        self.flush()
        self._closed(reason)
        t = self.transport
        if t is not None:
            t.close()

    def _protocol_error(self, e: MQTTError) -> None:
        code = e.reason_code
        if self.state == NEW and self.version == 5 and code in (rc.MALFORMED_PACKET,
                                                               rc.PROTOCOL_ERROR,
                                                               rc.PACKET_TOO_LARGE):
            # Before CONNACK the reason goes in a CONNACK, not a DISCONNECT.
            self._send_error_connack(code)
        self.close(code, _reason_name(code))

    def _closed(self, reason: str) -> None:
        """Everything that happens when the connection ends, whoever ended it. Runs once."""
        prev = self.state
        self.state = CLOSED
        self._close_reason = self._close_reason or reason
        self._drop_deadline()
        if self._send_timeout_handle is not None:
            self._send_timeout_handle.cancel()
            self._send_timeout_handle = None
        self.send_pkt += len(self._out)  # handed to the connection, if never written
        self._out.clear()
        self._decongest()
        self.listener.on_connection_lost(self)
        if prev == CONNECTED:
            self.disconnected_at = time.time()
            self.broker.channel_closed(self, self._close_reason)

    # -- keepalive -------------------------------------------------------------------------

    def start_keepalive(self, seconds: int) -> None:
        """Start the keep-alive check at CONNACK. The handshake deadline filed when the socket
        opened usually falls before the first check: it then stays filed and, when it comes,
        files the first check (on_deadline), which spares the connect path two wheel updates."""
        self.keepalive = seconds
        self._recv_flag = False
        d = self._deadline
        if seconds > 0:
            self._ka_interval = seconds * self.broker.keepalive_multiplier
            if d is None or d > (now := self.broker.loop.time()) + self._ka_interval:
                self._drop_deadline()
                self._deadline = self.broker.deadlines.add(self, self._ka_interval)
                return
        elif d is None:
            return
        else:
            now = self.broker.loop.time()
        self._ka_start = now

    def set_keepalive(self, seconds: int) -> None:
        """Change the keep-alive check of a connected client (from the API)."""
        self._ka_start = None
        self._drop_deadline()
        self.start_keepalive(seconds)

    def on_deadline(self, second: int) -> None:
        """Called by the broker's DeadlineWheel: the idle timeout before CONNECT (and during
        enhanced authentication), then the keep-alive check every keep alive x multiplier."""
        if second != self._deadline:
            return  # (not expected: a moved or dropped deadline leaves its bucket)
        self._deadline = None  # the wheel has taken it out of its bucket
        if self.state == CONNECTED:
            start = self._ka_start
            if start is not None:  # the handshake deadline, kept at CONNECT (start_keepalive)
                self._ka_start = None
                if self.keepalive > 0:
                    rest = start + self._ka_interval - self.broker.loop.time()
                    self._deadline = self.broker.deadlines.add(self, rest)
                return
            if self._recv_flag:
                self._recv_flag = False
                self._deadline = self.broker.deadlines.add(self, self._ka_interval)
            else:
                self.close(rc.KEEP_ALIVE_TIMEOUT, "keepalive_timeout")
        elif self.state != CLOSED:
            self.close(None, "idle_timeout")

    # -- packet handlers -------------------------------------------------------------------

    def _on_connect(self, byte0: int, body) -> None:
        broker = self.broker
        c = broker.metrics.c
        c["packets.connect.received"] += 1
        if self.state != NEW:
            raise MQTTError(rc.PROTOCOL_ERROR, "second CONNECT")
        try:
            pkt = decode_connect(byte0 & 0x0F, body)
        except MQTTError as e:
            if len(body) >= 7:  # the protocol level, if there is one, sets the error's format
                lvl = body[6] if body[0] == 0 and body[1] == 4 else \
                    (body[8] if len(body) > 8 else 4)
                if lvl == 5:
                    self.version = 5
            if e.reason_code == rc.UNSUPPORTED_PROTOCOL_VERSION:
                self._send_error_connack(rc.UNSUPPORTED_PROTOCOL_VERSION,
                                         rc.UNSUPPORTED_PROTOCOL_VERSION if self.version == 5
                                         else rc.V3_UNACCEPTABLE_PROTOCOL_VERSION)
                self.close(None, "unsupported_protocol_version")
                return
            raise
        self.version = pkt.proto_ver
        self.proto_name = pkt.proto_name
        self.connect_pkt = pkt
        c["client.connect"] += 1
        if "client.connect" in broker.hooks._points:  # (may change the packet in place)
            broker.hooks.run("client.connect", self, pkt)
        if self.version == 5:
            self.client_max_packet = pkt.props.get("maximum_packet_size", 0)
            self._auth_method = pkt.props.get("authentication_method")
            if self._auth_method and broker.enhanced_auth is None:
                self._refuse(rc.BAD_AUTHENTICATION_METHOD)  # no SCRAM authenticator offered
                return
        if pkt.will is not None:
            w = pkt.will
            mq = broker.config.mqtt
            if w.qos > mq.max_qos_allowed:
                self._refuse(rc.QOS_NOT_SUPPORTED)
                return
            if w.retain and not mq.retain_available:
                self._refuse(rc.RETAIN_NOT_SUPPORTED)
                return
            try:
                validate_topic_name(w.topic, 0)  # (levels: counted when it is published)
            except MQTTError:
                self._refuse(rc.TOPIC_NAME_INVALID)
                return
        code = broker.check_connect(self, pkt)
        if code:
            self._refuse(code)
            return
        # The handshake deadline stands while CONNECT is answered at once (start_keepalive takes
        # it over); a client waiting for its authentication has no idle timeout.
        if self._auth_method:
            self.state = CONNECTING
            self._drop_deadline()
            self._enhanced(broker.enhanced_auth.start(self, pkt, self._auth_method,
                                                      pkt.props.get("authentication_data")))
            return
        result = broker.authenticate(self, pkt)
        if result.__class__ is not int and result is not None and (
                asyncio.iscoroutine(result) or isinstance(result, asyncio.Future)):
            self.state = CONNECTING
            self._drop_deadline()
            self._pending = []
            self.transport.pause_reading()
            task = asyncio.ensure_future(result)
            task.add_done_callback(self._auth_done)
            return
        self._after_auth(result)

    def _auth_done(self, task) -> None:
        if self.state == CLOSED:
            return
        try:
            result = task.result()
        except Exception:
            log.exception("authentication failed with an error")
            result = rc.SERVER_UNAVAILABLE
        pending, self._pending = self._pending, None
        self._after_auth(result)
        if self.state == CONNECTED:
            if self.transport is not None:
                self.transport.resume_reading()
            if pending:
                self._process(pending)
                self.broker.current_publisher = None

    def _enhanced(self, result) -> None:
        """An enhanced-auth step answered: ("continue", data, state) sends AUTH 0x18 and waits
        for the client's AUTH; anything else is a final authentication result."""
        if isinstance(result, tuple) and result and result[0] == "continue":
            self._auth_state = result[2]
            self.send_packet(Auth(rc.CONTINUE_AUTHENTICATION, {
                "authentication_method": self._auth_method, "authentication_data": result[1]}),
                "packets.auth.sent")
            idle = self.broker.idle_timeout
            if self.state == CONNECTING and idle:
                # a client that never answers is dropped
                self._drop_deadline()
                self._deadline = self.broker.deadlines.add(self, idle)
            return
        self._auth_state = None
        if self.state == CONNECTING:
            self._drop_deadline()
        if self.state == CONNECTED:  # re-authentication: AUTH 0x00 or DISCONNECT
            if isinstance(result, dict):
                self.is_superuser = bool(result.get("is_superuser"))
                props = {"authentication_method": self._auth_method}
                if result.get("auth_data") is not None:
                    props["authentication_data"] = result["auth_data"]
                self.send_packet(Auth(rc.SUCCESS, props), "packets.auth.sent")
            else:
                self.close(result or rc.NOT_AUTHORIZED, _reason_name(result or rc.NOT_AUTHORIZED))
            return
        self._after_auth(result)

    def _after_auth(self, result) -> None:
        """`result` is 0 / None to accept, a reason code to refuse, or a dict of auth facts."""
        if isinstance(result, dict):
            self.is_superuser = bool(result.get("is_superuser"))
            self.client_attrs = result.get("client_attrs")
            self._auth_data = result.get("auth_data")
            result = 0
        if result:
            self.broker.metrics.c["authentication.failure"] += 1
            self._refuse(result)
            return
        self.broker.metrics.c["authentication.success"] += 1
        self.broker.establish(self, self.connect_pkt)

    def _refuse(self, code: int) -> None:
        self._send_error_connack(code, code if self.version == 5 else rc.connack_code_v3(code))
        if code in (rc.BAD_USERNAME_OR_PASSWORD, rc.NOT_AUTHORIZED, rc.BAD_AUTHENTICATION_METHOD):
            self.broker.metrics.c["packets.connack.auth_error"] += 1
        self.close(None, _reason_name(code))

    def _send_error_connack(self, code: int, wire_code: int | None = None) -> None:
        """A CONNACK refusing the connection: `code` as the hooks see it (MQTT 5's reason
        codes), `wire_code` as the client's protocol spells it (default: the same)."""
        hooks = self.broker.hooks
        if "client.connack" in hooks._points:
            hooks.run("client.connack", self, code, None)
        self.send_packet(Connack(False, code if wire_code is None else wire_code),
                         "packets.connack.error")

    def accepted(self, session, present: bool, props: dict | None) -> None:
        """Called by the broker once the session is attached: send CONNACK (`props` are its
        MQTT 5 properties)."""
        self.session = session
        self.state = CONNECTED
        self.connected_at = time.time()
        if session.drops:  # this connection's drop counters start from here (as in EMQX)
            self._drops_base = dict(session.drops)
        broker = self.broker
        if self.version == 5:
            if self._auth_method:
                props["authentication_method"] = self._auth_method
                if self._auth_data is not None:
                    props["authentication_data"] = self._auth_data
            if "client.connack" in broker.hooks._points:  # (may change the properties)
                broker.hooks.run("client.connack", self, 0, props)
            self.write(broker.connack_v5(present, props))
        else:
            if "client.connack" in broker.hooks._points:
                broker.hooks.run("client.connack", self, 0, None)
            self.write(b"\x20\x02\x01\x00" if present else b"\x20\x02\x00\x00")
        self.send_other += 1
        c = broker.metrics.c
        c["packets.connack.sent"] += 1
        c["client.connack"] += 1

    def _on_publish(self, byte0: int, body) -> None:
        if (byte0 == 0x30 or byte0 == 0x32) and self.state == CONNECTED \
                and not self.mountpoint and self.broker.authorize is None \
                and self._fast_publish(byte0 == 0x32, body):
            return
        if self.state != CONNECTED:
            raise MQTTError(rc.PROTOCOL_ERROR, "PUBLISH before CONNECT")
        pkt = Publish.decode(byte0 & 0x0F, body, self.version)
        topic = pkt.topic
        props = pkt.props
        broker = self.broker
        if props is not None:
            if broker.strict_mode and has_invalid_utf8(props):
                raise MQTTError(rc.MALFORMED_PACKET, "property is not valid UTF-8")
            if "subscription_identifier" in props:
                raise MQTTError(rc.PROTOCOL_ERROR, "subscription identifier from a client")
            alias = props.get("topic_alias")
            if alias is not None:
                topic = self._resolve_alias(alias, topic)
            if alias is not None:
                props = {k: v for k, v in props.items() if k != "topic_alias"} or None
            elif not props:
                props = None
        qos = pkt.qos
        try:
            validate_topic_name(topic, broker.max_topic_levels)
        except MQTTError:
            broker.metrics.c["packets.publish.error"] += 1
            raise
        if qos > broker.max_qos_allowed:
            raise MQTTError(rc.QOS_NOT_SUPPORTED, "QoS not supported")
        if pkt.retain and not broker.retain_available:
            raise MQTTError(rc.RETAIN_NOT_SUPPORTED, "retain not supported")
        if props is not None and props.get("payload_format_indicator") == 1 and \
                broker.strict_mode:
            try:
                pkt.payload.decode("utf-8")
            except UnicodeDecodeError:
                raise MQTTError(rc.PAYLOAD_FORMAT_INVALID, "payload is not UTF-8") from None
        if self.mountpoint:
            topic = self.mountpoint + topic
        if broker.authorize is not None:  # (superusers too: authorization counts them)
            # (checked before counting: a check that must wait replays this packet)
            if not broker.authorize(self, "publish", topic, qos, pkt.retain):
                broker.metrics.recv_q[qos] += 1
                broker.metrics.c["packets.publish.auth_error"] += 1
                self._publish_denied(qos, pkt.packet_id)
                return
        broker.metrics.recv_q[qos] += 1
        msg = Message(topic, pkt.payload, qos, pkt.retain, props, self.clientid, self.username,
                      self.peerhost)
        if qos == 0:
            # Without a topic alias, mountpoint or expiry to rewrite, an outgoing QoS 0 PUBLISH
            # of the same protocol family has exactly this body: forward it as is.
            if props is pkt.props and not self.mountpoint and msg.expire_at is None:
                msg.raw_body = body
                msg.raw_v5 = self.version == 5
            broker.publish(msg)
            return
        pid = pkt.packet_id
        if qos == 1:
            n = broker.publish(msg)
            broker.metrics.c["packets.puback.sent"] += 1
            self.send_other += 1
            if n or self.version != 5:
                self.write(b"\x40\x02" + pid.to_bytes(2, "big"))
            else:
                self.write(Puback(pid, rc.NO_MATCHING_SUBSCRIBERS).encode(5))
            return
        awaiting = self.session.awaiting_rel
        if pid in awaiting and time.monotonic() - awaiting[pid] > broker.await_rel_timeout:
            del awaiting[pid]  # forgotten after await_rel_timeout: a fresh flow
            self.session.count_drop("await_pubrel_timeout")
        if pid in awaiting:  # a retransmission: acknowledge again, do not publish twice
            broker.metrics.c["packets.publish.inuse"] += 1
            self.send_packet(Pubrec(pid, rc.PACKET_IDENTIFIER_IN_USE if self.version == 5 else 0),
                             "packets.pubrec.sent")
            return
        if len(awaiting) >= broker.max_awaiting_rel:
            broker.expire_awaiting_rel(self.session)
            if len(awaiting) >= broker.max_awaiting_rel:
                broker.metrics.c["packets.publish.dropped"] += 1
                raise MQTTError(rc.RECEIVE_MAXIMUM_EXCEEDED, "too many QoS 2 messages awaiting PUBREL")
        n = broker.publish(msg)
        awaiting[pid] = time.monotonic()
        self.send_packet(Pubrec(pid, 0 if n or self.version != 5 else rc.NO_MATCHING_SUBSCRIBERS),
                         "packets.pubrec.sent")

    def _fast_publish(self, qos1: bool, body) -> bool:
        """The most common PUBLISHes (QoS 0 or 1, no retain, no topic alias or expiry) decoded
        inline, with the incoming body reused as the outgoing one for subscribers of the same
        protocol family. Returns False for anything unusual: the general path handles it (and
        reports the error)."""
        broker = self.broker
        v5 = self.version == 5
        parsed = parse_plain_publish(body, qos1, v5, broker.strict_mode, broker.max_topic_levels)
        if parsed is None:
            return False
        topic, payload, props, end, pid = parsed
        if not qos1:
            broker.metrics.recv_q[0] += 1
            msg = Message(topic, payload, 0, False, None, self.clientid, self.username,
                          self.peerhost)
            if props is not None:
                msg.lazy_props(props)
            msg.raw_body = body
            msg.raw_v5 = v5
            broker.publish(msg)
            return True
        if not pid or broker.max_qos_allowed < 1:
            return False
        broker.metrics.recv_q[1] += 1
        msg = Message(topic, payload, 1, False, None, self.clientid, self.username,
                      self.peerhost)
        if props is not None:
            msg.lazy_props(props)
        # A QoS 1 subscriber of the same family gets this very body around its own packet id:
        # seed that wire form instead of encoding it again.
        msg.seed_wire(10 if v5 else 2,
                      (fixed_header(0x32, len(body)) + body[:end], body[end + 2:]))
        n = broker.publish(msg)
        broker.metrics.c["packets.puback.sent"] += 1
        self.send_other += 1
        if n or not v5:
            self.write(b"\x40\x02" + body[end:end + 2])
        else:
            self.write(Puback(pid, rc.NO_MATCHING_SUBSCRIBERS).encode(5))
        return True

    def _publish_denied(self, qos: int, pid) -> None:
        if self.broker.deny_action_disconnect:
            self.close(rc.NOT_AUTHORIZED, "not_authorized")
            return
        if qos == 1:
            self.send_packet(Puback(pid, rc.NOT_AUTHORIZED if self.version == 5 else 0),
                             "packets.puback.sent")
        elif qos == 2:
            self.send_packet(Pubrec(pid, rc.NOT_AUTHORIZED if self.version == 5 else 0),
                             "packets.pubrec.sent")

    def _resolve_alias(self, alias: int, topic: str) -> str:
        if alias == 0 or alias > self.broker.config.mqtt.max_topic_alias:
            raise MQTTError(rc.TOPIC_ALIAS_INVALID, "topic alias out of range")
        aliases = self._aliases
        if aliases is None:
            aliases = self._aliases = {}
        if topic:
            aliases[alias] = topic
            return topic
        found = aliases.get(alias)
        if found is None:
            raise MQTTError(rc.PROTOCOL_ERROR, "unknown topic alias")
        return found

    def _on_puback(self, byte0: int, body) -> None:
        self._require_connected()
        if byte0 == 0x40 and len(body) == 2:  # the usual 2-byte PUBACK, without an object
            pid = (body[0] << 8) | body[1]
            if not pid:
                raise MQTTError(rc.PROTOCOL_ERROR, "packet id 0")
        else:
            pid = Puback.decode(byte0 & 0x0F, body, self.version).packet_id
        c = self.broker.metrics.c
        c["packets.puback.received"] += 1
        if not self.session.on_puback(pid):
            c["packets.puback.missed"] += 1

    def _on_pubrec(self, byte0: int, body) -> None:
        self._require_connected()
        pkt = Pubrec.decode(byte0 & 0x0F, body, self.version)
        c = self.broker.metrics.c
        c["packets.pubrec.received"] += 1
        code = self.session.on_pubrec(pkt.packet_id, pkt.reason_code)
        if code < 0:
            return
        if code:
            c["packets.pubrec.missed"] += 1
        self.send_pubrel(pkt.packet_id, code if self.version == 5 else 0)

    def _on_pubrel(self, byte0: int, body) -> None:
        self._require_connected()
        pkt = Pubrel.decode(byte0 & 0x0F, body, self.version)
        c = self.broker.metrics.c
        c["packets.pubrel.received"] += 1
        found = self.session.awaiting_rel.pop(pkt.packet_id, None) is not None
        if not found:
            c["packets.pubrel.missed"] += 1
        code = 0 if found or self.version != 5 else rc.PACKET_IDENTIFIER_NOT_FOUND
        self.send_packet(Pubcomp(pkt.packet_id, code), "packets.pubcomp.sent")

    def _on_pubcomp(self, byte0: int, body) -> None:
        self._require_connected()
        pkt = Pubcomp.decode(byte0 & 0x0F, body, self.version)
        c = self.broker.metrics.c
        c["packets.pubcomp.received"] += 1
        if not self.session.on_pubcomp(pkt.packet_id):
            c["packets.pubcomp.missed"] += 1

    def _on_subscribe(self, byte0: int, body) -> None:
        self._require_connected()
        pkt = Subscribe.decode(byte0 & 0x0F, body, self.version)
        prefetch = self.broker.authorize_prefetch
        if prefetch is not None:  # may raise Deferred before anything is subscribed or counted
            prefetch(self, pkt.topics)
        self.broker.metrics.c["packets.subscribe.received"] += 1
        sub_id = None
        if pkt.props:
            ids = pkt.props.get("subscription_identifier")
            if ids:
                sub_id = ids[0]
        codes, retained = self.broker.subscribe(self.session, pkt.topics, sub_id, self)
        if self.state == CLOSED:
            return
        if self.version != 5:
            codes = [c if c < 0x80 else rc.V3_SUBACK_FAILURE for c in codes]
        self.send_packet(Suback(pkt.packet_id, codes), "packets.suback.sent")
        for deliver in retained:  # retained messages follow the SUBACK
            deliver()

    def _on_unsubscribe(self, byte0: int, body) -> None:
        self._require_connected()
        pkt = Unsubscribe.decode(byte0 & 0x0F, body, self.version)
        self.broker.metrics.c["packets.unsubscribe.received"] += 1
        codes = self.broker.unsubscribe(self.session, pkt.topics, self)
        self.send_packet(Unsuback(pkt.packet_id, codes), "packets.unsuback.sent")

    def _on_pingreq(self, byte0: int, body) -> None:
        self._require_connected()
        if byte0 & 0x0F or len(body):
            raise MQTTError(rc.MALFORMED_PACKET, "malformed PINGREQ")
        c = self.broker.metrics.c
        c["packets.pingreq.received"] += 1
        c["packets.pingresp.sent"] += 1
        self.send_other += 1
        self.write(_PINGRESP)

    def _on_disconnect(self, byte0: int, body) -> None:
        self._require_connected()
        pkt = Disconnect.decode(byte0 & 0x0F, body, self.version)
        self.broker.metrics.c["packets.disconnect.received"] += 1
        if self.version == 5:
            exp = pkt.props.get("session_expiry_interval")
            if exp is not None:
                if self.expiry_interval == 0 and exp != 0:
                    raise MQTTError(rc.PROTOCOL_ERROR, "session expiry changed from 0")
                self.expiry_interval = exp
                self.session.expiry_interval = exp
        if pkt.reason_code != rc.DISCONNECT_WITH_WILL:
            self.will = None
        self._close_reason = "normal" if pkt.reason_code == 0 else _reason_name(pkt.reason_code)
        self.flush()
        self._closed(self._close_reason)
        if self.transport is not None:
            self.transport.close()

    def _on_auth(self, byte0: int, body) -> None:
        pkt = decode_packet(byte0, body, self.version)
        self.broker.metrics.c["packets.auth.received"] += 1
        if self.state == CONNECTING and self._auth_state is not None:
            if pkt.reason_code != rc.CONTINUE_AUTHENTICATION or \
                    pkt.props.get("authentication_method") != self._auth_method:
                raise MQTTError(rc.PROTOCOL_ERROR, "unexpected AUTH during authentication")
            self._enhanced(self.broker.enhanced_auth.step(
                self, pkt.props.get("authentication_data"), self._auth_state))
            return
        if self.state == CONNECTED and self._auth_method:  # re-authentication (MQTT 5 4.12.1)
            if pkt.props.get("authentication_method") != self._auth_method:
                raise MQTTError(rc.PROTOCOL_ERROR, "re-authentication with another method")
            data = pkt.props.get("authentication_data")
            if pkt.reason_code == rc.REAUTHENTICATE and self._auth_state is None:
                self._enhanced(self.broker.enhanced_auth.start(self, self.connect_pkt,
                                                               self._auth_method, data))
                return
            if pkt.reason_code == rc.CONTINUE_AUTHENTICATION and self._auth_state is not None:
                self._enhanced(self.broker.enhanced_auth.step(self, data, self._auth_state))
                return
        raise MQTTError(rc.PROTOCOL_ERROR, "AUTH without enhanced authentication")

    def _on_server_only(self, byte0: int, body) -> None:
        raise MQTTError(rc.PROTOCOL_ERROR, f"{rc.PACKET_NAMES.get(byte0 >> 4, 'reserved')} "
                                           "from a client")

    def _require_connected(self) -> None:
        if self.state != CONNECTED:
            raise MQTTError(rc.PROTOCOL_ERROR, "packet before CONNECT")


def _on_reserved(ch, byte0, body):
    raise MQTTError(rc.MALFORMED_PACKET, "reserved packet type 0")


_HANDLERS = (
    _on_reserved, Channel._on_connect, Channel._on_server_only, Channel._on_publish,
    Channel._on_puback, Channel._on_pubrec, Channel._on_pubrel, Channel._on_pubcomp,
    Channel._on_subscribe, Channel._on_server_only, Channel._on_unsubscribe,
    Channel._on_server_only, Channel._on_pingreq, Channel._on_server_only,
    Channel._on_disconnect, Channel._on_auth,
)

_REASON_NAMES = {
    rc.MALFORMED_PACKET: "malformed_packet", rc.PROTOCOL_ERROR: "protocol_error",
    rc.PACKET_TOO_LARGE: "frame_too_large", rc.TOPIC_ALIAS_INVALID: "topic_alias_invalid",
    rc.TOPIC_NAME_INVALID: "topic_name_invalid", rc.NOT_AUTHORIZED: "not_authorized",
    rc.BAD_USERNAME_OR_PASSWORD: "bad_username_or_password", rc.BANNED: "banned",
    rc.CLIENT_IDENTIFIER_NOT_VALID: "client_identifier_not_valid",
    rc.QOS_NOT_SUPPORTED: "qos_not_supported", rc.RETAIN_NOT_SUPPORTED: "retain_not_supported",
    rc.RECEIVE_MAXIMUM_EXCEEDED: "receive_maximum_exceeded",
    rc.KEEP_ALIVE_TIMEOUT: "keepalive_timeout", rc.SESSION_TAKEN_OVER: "takenover",
    rc.SERVER_SHUTTING_DOWN: "shutdown", rc.ADMINISTRATIVE_ACTION: "kicked",
    rc.DISCONNECT_WITH_WILL: "disconnect_with_will",
}


def _reason_name(code: int) -> str:
    return _REASON_NAMES.get(code, f"reason_0x{code:02x}")
