"""One MQTT connection, the socket-facing part: an asyncio.Protocol that splits the byte
stream into frames and hands each to its packet type's handler (emqpy/broker/protocol/), which
run the protocol on the channel's state. Output and backpressure come from its base class,
`Output` (broker/output.py).

Packet processing can pause for I/O: a check that needs a server (authorization raising
`Deferred`, an asynchronous authentication) stops reading, and the frames received meanwhile
are processed once it is answered (`wait_for_io`).

Nothing here needs a socket: any object with asyncio.Transport's methods will do
(tests/broker/test_channel_sans_socket.py drives a Channel through an in-memory one).
"""
from __future__ import annotations

import asyncio
import logging
import time

from emqpy.broker.deferred import Deferred
from emqpy.broker.output import Output
from emqpy.broker.protocol import connack, deliver, keepalive
from emqpy.broker.protocol.dispatch import HANDLERS
from emqpy.broker.protocol.states import CLOSED, CONNECTED, NEW, reason_name
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.frames import FrameReader
from emqpy.mqtt.packets import Disconnect
from emqpy.mqtt.reason_codes import MQTTError

log = logging.getLogger("emqpy.channel")


class Channel(Output, asyncio.Protocol):
    __slots__ = (
        "listener", "reader", "state", "version", "session", "clientid", "username",
        "peerhost", "peerport", "_sockport", "will", "client_max_packet", "connected_at",
        "connect_pkt", "_pending", "_close_reason", "is_superuser", "client_attrs", "mountpoint",
        "proto_name", "expiry_interval", "recv_cnt", "recv_oct", "_drops_base", "created_at",
        "disconnected_at", "_peer_cert",
        # the listener's messages_rate / bytes_rate, None without them (listeners/limiter.py)
        "limiter",
        # keep alive (protocol/keepalive.py)
        "keepalive", "_recv_flag", "_deadline", "_ka_interval", "_ka_start",
        # topic aliases, incoming (protocol/publish.py) and outgoing (protocol/deliver.py)
        "_aliases", "alias_max", "_out_aliases",
        # MQTT 5 enhanced authentication (protocol/auth.py)
        "_auth_method", "_auth_state", "_auth_data",
        # QoS 2 messages between PUBREC and PUBCOMP while delivery.completed is hooked
        # (protocol/acks.py)
        "_completing",
    )

    # The protocol operations other parts of the broker call on a channel.
    accepted = connack.accepted  # the broker attached the session: send CONNACK
    start_keepalive = keepalive.start
    set_keepalive = keepalive.change
    on_deadline = keepalive.on_deadline  # (the DeadlineWheel's callback)
    send_publish = deliver.send_publish  # (Session's delivery)
    send_pubrel = deliver.send_pubrel

    def __init__(self, broker, listener):
        Output.__init__(self, broker)
        self.listener = listener
        self.reader = FrameReader(broker.max_packet_size)
        self.state = NEW
        self.version = 4
        self.session = None
        self.clientid = None
        self.username = None
        self.peerhost = self.peerport = self._sockport = None
        self.will = None
        self.client_max_packet = 0
        self.connected_at = None
        self.connect_pkt = None
        self._pending = None  # frames waiting for an I/O answer (see wait_for_io)
        self.limiter = None  # (set by the listener: on_connection_made)
        self._completing = None
        self._close_reason = None
        self.is_superuser = False
        self.client_attrs = None
        self.mountpoint = None
        self.proto_name = "MQTT"
        self.expiry_interval = 0
        # socket reads and their bytes (see stats; the frame reader counts packets)
        self.recv_cnt = self.recv_oct = 0
        self._drops_base = None  # the session's drop tally when this connection began
        self.created_at = time.time()
        self.disconnected_at = None
        self._peer_cert = None
        self.keepalive = 0
        self._recv_flag = False
        self._deadline = None  # second of the handshake or keep-alive deadline (DeadlineWheel)
        self._ka_interval = 0.0
        self._ka_start = None  # loop time keep alive started (the handshake deadline stands in)
        self._aliases = None
        self.alias_max = 0  # the client's Topic Alias Maximum: aliases we may assign (MQTT 5)
        self._out_aliases = None
        self._auth_method = self._auth_state = self._auth_data = None

    @property
    def sockport(self) -> int | None:
        """The local port the client connected to (the listener's, unless PROXY said else)."""
        return self._sockport if self._sockport is not None else self.listener.port

    @sockport.setter
    def sockport(self, port: int | None) -> None:
        self._sockport = port

    # -- asyncio.Protocol (pause_writing / resume_writing: Output's) -------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self.peerhost, self.peerport = peer[0], peer[1]
        transport.set_write_buffer_limits(high=self.high_watermark)  # every transport has it
        self.listener.on_connection_made(self)
        idle = self.broker.idle_timeout
        if idle:
            self._deadline = self.broker.deadlines.add(self, idle)

    def data_received(self, data: bytes) -> None:
        self._recv_flag = True
        self.recv_cnt += 1
        self.recv_oct += len(data)
        self.broker.metrics.c["bytes.received"] += len(data)  # EMQX node metric bytes.received
        try:
            frames = self.reader.feed(data)
        except MQTTError as e:
            self._protocol_error(e)
            return
        if self.limiter is not None and self.limiter.hold(len(data), frames):
            return  # over the listener's rate: reading paused, the frames wait
        if self._pending is not None:  # waiting for an I/O answer
            self._pending.extend(frames)
            return
        self._process(frames)

    def eof_received(self):
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc) -> None:
        if self.state != CLOSED:
            self._closed("sock_closed" if exc is None else "sock_error")
        self.transport = None

    # -- packets -----------------------------------------------------------------------------

    def _process(self, frames) -> None:
        handlers = HANDLERS
        for i, (byte0, body) in enumerate(frames):
            if self.state == CLOSED:
                return
            try:
                handlers[byte0 >> 4](self, byte0, body)
            except MQTTError as e:
                self._protocol_error(e)
                return
            except Deferred as d:  # authorization must ask a server: wait, then replay
                self.wait_for_io(d.awaitable, frames[i:])
                return
            except Exception:
                log.exception("error handling packet from %s", self.clientid or self.peerhost)
                self.close(rc.IMPLEMENTATION_SPECIFIC_ERROR, "internal_error")
                return
            if self._pending is not None:  # the packet went asynchronous: keep the rest
                self._pending.extend(frames[i + 1:])
                return

    def wait_for_io(self, awaitable, frames=(), then=None) -> None:
        """Stop reading until `awaitable` is done; then run `then(task)` (if given) and, unless
        the connection ended, read again and process `frames` and what arrived meanwhile."""
        self._pending = list(frames)
        if self.transport is not None:
            self.transport.pause_reading()
        task = asyncio.ensure_future(awaitable, loop=self.broker.loop)
        task.add_done_callback(lambda task: self._io_answered(task, then))

    def _io_answered(self, task, then) -> None:
        if self.state == CLOSED:
            return
        pending, self._pending = self._pending, None
        if then is not None:
            then(task)
            if self.state == CLOSED:
                return
            if self._pending is not None:  # `then` waits for more (an authenticated CONNECT's
                self._pending[:0] = pending  # session on another node): the frames wait too
                return
        elif not task.cancelled() and task.exception() is not None:
            log.error("deferred check failed: %r", task.exception())
        if self.transport is not None and not self._read_holds:  # (else: when they drain)
            self.transport.resume_reading()
        if pending:
            self._process(pending)

    def send_packet(self, pkt, counter: str | None = None) -> None:
        """Queue a packet other than PUBLISH (`counter`: the node metric to count it in)."""
        self.write(pkt.encode(self.version))
        self.send_other += 1
        if counter:
            self.broker.metrics.c[counter] += 1

    def stats(self) -> dict[str, int]:
        """EMQX's per-connection counters (emqx_connection / emqx_channel CHANNEL_METRICS):
        recv_cnt/send_cnt count reads from and writes to the socket, recv_oct/send_oct their
        bytes, recv_pkt/send_pkt MQTT packets (split off the stream / handed to the socket),
        recv_msg/send_msg the PUBLISH packets among them (retransmissions included). Drops
        count from when this connection began, including while its session is offline after
        it (EMQX's disconnected channel process keeps counting too). mailbox_len: received
        packets waiting for an authentication or authorization answer."""
        send_pkt = self.send_pkt + len(self.queued)  # (queued ones are counted by kind already)
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

    # -- lifecycle -------------------------------------------------------------------------

    def close(self, reason_code: int | None = None, reason: str = "normal",
              props: dict | None = None) -> None:
        """Server-side close: DISCONNECT with `reason_code` first on MQTT 5, then close."""
        if self.state == CLOSED:
            return
        if reason_code is not None and self.version == 5 and self.state == CONNECTED:
            self.send_packet(Disconnect(reason_code, props), "packets.disconnect.sent")
        self.flush_final()
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
            connack.send_error_connack(self, code)
        self.close(code, reason_name(code))

    def _closed(self, reason: str) -> None:
        """Everything that happens when the connection ends, whoever ended it. Runs once."""
        prev = self.state
        self.state = CLOSED
        self._close_reason = self._close_reason or reason
        keepalive.drop_deadline(self)
        self.discard_output()
        self.listener.on_connection_lost(self)
        if prev == CONNECTED:
            self.disconnected_at = time.time()
            self.broker.channel_closed(self, self._close_reason)
