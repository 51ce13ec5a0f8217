"""The running traces of a node and the events they write (EMQX's emqx_trace_handler and the
?TRACE points of emqx_connection, emqx_broker and the rule runtime).

While no trace runs, ``broker.tracer`` is None and nothing of this module is on any path: the
hooks below are registered only while a trace runs, and a traced connection gets its frame
reader and transport wrapped (so its packets in and out are decoded and written), which no other
connection pays for.

An event is ``(tag, msg, meta)``; each running trace keeps the events its filter accepts, as
EMQX's filters do: ``clientid`` (meta clientid), ``topic`` (meta topic matches the filter),
``ip_address`` (meta peername starts with the address), ``ruleid`` (meta rule_id).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from emqpy.broker.protocol.states import CLOSED
from emqpy.mqtt.frames import FrameReader
from emqpy.mqtt.packets import decode_packet
from emqpy.mqtt.topic import matches
from emqpy.trace.formatter import json_line, text_line

log = logging.getLogger("emqpy.trace")

# EMQX's trace handler halts a trace file at 512 MB (logger_disk_log_h, type halt).
MAX_FILE_BYTES = 512 * 1024 * 1024
_HOOK_PRIORITY = -1000  # message.publish: after every other callback, as EMQX logs publish_to
_ANY_FRAME = 268_435_455 + 5  # the largest MQTT packet: outgoing frames are never refused
LEVELS = {"debug": 0, "all": 0, "info": 1, "notice": 2, "warning": 3, "error": 4,
          "critical": 5, "alert": 6, "emergency": 7}


class Handler:
    """One running trace: its filter and the file it appends to."""

    def __init__(self, name: str, type_: str, filter_: str, path: Path,
                 formatter: str = "text", payload_encode: str = "text", level: str = "debug"):
        self.name = name
        self.level = "debug" if level == "all" else level
        self._min = LEVELS[level]
        self.type = type_
        self.filter = filter_
        self.path = Path(path)
        self.formatter = formatter
        self.payload_encode = payload_encode
        self._file = None
        self.size = 0
        self.halted = False

    def matches(self, meta: dict) -> bool:
        t = self.type
        if t == "clientid":
            return meta.get("clientid") == self.filter
        if t == "topic":
            topic = meta.get("topic")
            return topic is not None and matches(self.filter, topic)
        if t == "ip_address":
            peer = meta.get("peername")
            return peer is not None and peer.startswith(self.filter)
        return meta.get("rule_id") == self.filter  # ruleid

    def write(self, tag: str, msg: str, meta: dict, level: str = "debug") -> bool:
        """Append one event; False when nothing was written (halted, or the file failed)."""
        if self.halted or LEVELS.get(level, 0) < self._min:
            return False
        line = (json_line(tag, msg, meta, self.payload_encode, level)
                if self.formatter == "json" else text_line(tag, msg, meta, self.payload_encode))
        data = line.encode("utf-8", "replace")
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "ab")
                self.size = self._file.tell()
            if self.size + len(data) > MAX_FILE_BYTES:
                self.halted = True
                log.warning("trace %s reached %d bytes: no more is written", self.name,
                            MAX_FILE_BYTES)
                return False
            self._file.write(data)
        except OSError as e:
            self.halted = True
            log.error("trace %s cannot write %s: %s", self.name, self.path, e)
            return False
        self.size += len(data)
        return True

    def flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as e:
                log.error("trace %s cannot write %s: %s", self.name, self.path, e)

    def close(self) -> None:
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None


def peername(host, port) -> str | None:
    if host is None:
        return None
    return f"{host}:{port}" if port is not None else str(host)


def channel_meta(ch, pkt=None) -> dict:
    """The metadata EMQX's connection process logs with: clientid, username, peername."""
    clientid = ch.clientid if ch.clientid is not None else getattr(pkt, "clientid", None)
    username = ch.username if ch.username is not None else getattr(pkt, "username", None)
    meta = {"clientid": clientid, "peername": peername(ch.peerhost, ch.peerport)}
    if username:
        meta["username"] = username
    return meta


class _TracedReader:
    """Wraps a traced connection's frame reader: every frame it splits off is also decoded and
    written as ``mqtt_packet_received``."""
    __slots__ = ("_inner", "_ch", "_tracer")

    def __init__(self, inner, ch, tracer):
        self._inner = inner
        self._ch = ch
        self._tracer = tracer

    def feed(self, data):
        frames = self._inner.feed(data)
        for byte0, body in frames:
            self._tracer.frame(self._ch, byte0, body, "mqtt_packet_received")
        return frames

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _TracedTransport:
    """Wraps a traced connection's transport: the bytes written are split into packets and
    written as ``mqtt_packet_sent``."""

    def __init__(self, inner, ch, tracer):
        self._inner = inner
        self._ch = ch
        self._tracer = tracer
        self._frames = FrameReader(_ANY_FRAME)

    def write(self, data) -> None:
        try:
            frames = self._frames.feed(bytes(data))
        except Exception:  # (not MQTT: nothing to trace, the bytes still go out)
            frames = ()
            self._frames = FrameReader(_ANY_FRAME)
        for byte0, body in frames:
            self._tracer.frame(self._ch, byte0, body, "mqtt_packet_sent")
        self._inner.write(data)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class Tracer:
    """The node's running trace handlers; ``broker.tracer`` while there is at least one."""

    def __init__(self, broker):
        self.broker = broker
        self.handlers: dict[str, Handler] = {}
        self._traced: set = set()  # channels whose reader and transport are wrapped
        self._hooked = False
        self._flush_scheduled = False

    # -- starting and stopping handlers -------------------------------------------------------

    def start(self, handler: Handler) -> None:
        old = self.handlers.pop(handler.name, None)
        if old is not None:
            old.close()
        self.handlers[handler.name] = handler
        self._changed()
        if handler.type in ("clientid", "ip_address"):
            for ch in list(self.broker.channels.values()):
                if handler.matches(channel_meta(ch)):
                    self._wrap(ch)

    def stop(self, name: str) -> Handler | None:
        handler = self.handlers.pop(name, None)
        if handler is not None:
            handler.close()
            for ch in list(self._traced):
                if not self._wanted(channel_meta(ch)):
                    self._unwrap(ch)
            self._changed()
        return handler

    def stop_all(self) -> None:
        for name in list(self.handlers):
            self.stop(name)

    def _changed(self) -> None:
        broker = self.broker
        on = bool(self.handlers)
        broker.tracer = self if on else None
        hooks = broker.hooks
        if on and not self._hooked:
            hooks.add("client.connect", self._on_connect)
            hooks.add("client.disconnected", self._on_disconnected)
            hooks.add("message.publish", self._on_publish, _HOOK_PRIORITY)
            hooks.add("session.subscribed", self._on_subscribed)
            hooks.add("session.unsubscribed", self._on_unsubscribed)
            hooks.add("client.check_authz_complete", self._on_authz)
            self._hooked = True
        elif not on and self._hooked:
            hooks.remove("client.connect", self._on_connect)
            hooks.remove("client.disconnected", self._on_disconnected)
            hooks.remove("message.publish", self._on_publish)
            hooks.remove("session.subscribed", self._on_subscribed)
            hooks.remove("session.unsubscribed", self._on_unsubscribed)
            hooks.remove("client.check_authz_complete", self._on_authz)
            self._hooked = False

    # -- events -------------------------------------------------------------------------------

    def log(self, tag: str, msg: str, meta: dict, level: str = "debug") -> None:
        """Write one event to every running trace whose filter accepts it."""
        wrote = False
        for h in self.handlers.values():
            if h.matches(meta):
                wrote = h.write(tag, msg, meta, level) or wrote
        if wrote and not self._flush_scheduled and self.broker.loop is not None:
            # the lines of one loop iteration go to the files together
            self._flush_scheduled = True
            self.broker.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        for h in self.handlers.values():
            h.flush()

    def _wanted(self, meta: dict) -> bool:
        return any(h.type in ("clientid", "ip_address") and h.matches(meta)
                   for h in self.handlers.values())

    def frame(self, ch, byte0: int, body, msg: str) -> None:
        try:
            pkt = decode_packet(byte0, body, ch.version)
        except Exception as e:
            meta = {**channel_meta(ch), "reason": str(e)}
            self.log(self._tag(ch), "frame_error" if msg.endswith("received")
                     else "mqtt_packet_sent", meta)
            return
        self.log(self._tag(ch), msg, {**channel_meta(ch), "packet": pkt})

    @staticmethod
    def _tag(ch) -> str:
        return "WS-MQTT" if getattr(ch.listener, "type", "") in ("ws", "wss") else "MQTT"

    def _wrap(self, ch) -> None:
        if ch in self._traced:
            return
        self._traced.add(ch)
        ch.reader = _TracedReader(ch.reader, ch, self)
        if ch.transport is not None:
            ch.transport = _TracedTransport(ch.transport, ch, self)

    def _unwrap(self, ch) -> None:
        self._traced.discard(ch)
        if isinstance(ch.reader, _TracedReader):
            ch.reader = ch.reader._inner
        if isinstance(ch.transport, _TracedTransport):
            ch.transport = ch.transport._inner

    # -- hook callbacks (registered only while a trace runs) -----------------------------------

    def _on_connect(self, ch, pkt) -> None:
        # connections refused after this point never run client.disconnected: let them go
        gone = [c for c in self._traced if c.state == CLOSED]
        for c in gone:
            self._unwrap(c)
        meta = channel_meta(ch, pkt)
        if self._wanted(meta):
            self._wrap(ch)
            self.log(self._tag(ch), "mqtt_packet_received", {**meta, "packet": pkt})

    def _on_disconnected(self, ch, reason) -> None:
        if ch in self._traced:
            self.log("SOCKET", "emqx_connection_terminated",
                     {**channel_meta(ch), "reason": reason})
            self._unwrap(ch)

    def _on_publish(self, msg):
        topic = msg.topic
        if not topic.startswith("$SYS/"):
            meta = {"clientid": msg.sender, "topic": topic, "payload": msg.payload}
            if msg.username:
                meta["username"] = msg.username
            ch = self.broker.channels.get(msg.sender) if msg.sender else None
            if ch is not None:
                meta["peername"] = peername(ch.peerhost, ch.peerport)
            elif msg.peerhost:
                meta["peername"] = str(msg.peerhost)
            self.log("PUBLISH", "publish_to", meta)
        return msg

    def _session_meta(self, session) -> dict:
        ch = session.channel
        return channel_meta(ch) if ch is not None else {"clientid": session.clientid}

    def _on_subscribed(self, session, sub) -> None:
        if sub.real_filter.startswith("$SYS/"):
            return
        meta = self._session_meta(session)
        meta["topic"] = sub.topic_filter
        meta["sub_opts"] = sub.options()
        if sub.sub_id:
            meta["sub_id"] = sub.sub_id
        self.log("SUBSCRIBE", "subscribe", meta)

    def _on_unsubscribed(self, session, topic_filter) -> None:
        if topic_filter.startswith("$SYS/"):
            return
        meta = self._session_meta(session)
        meta["topic"] = topic_filter
        self.log("UNSUBSCRIBE", "unsubscribe", meta)

    def _on_authz(self, ch, action, topic, result, source) -> None:
        """The authz feature's decision, as EMQX's authz traces it (by the source that
        matched; its per-source "nomatch" lines and cache hits are not reported here)."""
        if source in ("default", "cache"):
            return
        meta = channel_meta(ch)
        meta.update(username=ch.username, topic=topic, action=action.upper())
        if source == "superuser":
            self.log("AUTHZ", "authorization_skipped_as_superuser", meta)
        else:
            meta["authorize_type"] = source
            self.log("AUTHZ", f"authorization_matched_{result}", meta)

    # -- the rule engine's events --------------------------------------------------------------

    def rule_wanted(self, rule_id: str, clientid) -> bool:
        """Whether a rule's run is traced: by its id, or by the client whose event it is."""
        for h in self.handlers.values():
            if (h.type == "ruleid" and h.filter == rule_id) or \
                    (h.type == "clientid" and clientid is not None and h.filter == clientid):
                return True
        return False


def trace_dir(data_dir) -> Path:
    return Path(data_dir) / "trace"


def file_size(path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
