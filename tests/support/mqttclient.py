"""A small synchronous wrapper around paho-mqtt 2.x for short, non-sleeping tests.

Every wait is on an event/queue with a timeout (WAIT, generous); nothing sleeps blindly.
"""
from __future__ import annotations

import queue
import socket
import threading
import uuid

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from support.waiting import QUIET, WAIT

VERSIONS = {5: paho.MQTTv5, 4: paho.MQTTv311, 3: paho.MQTTv31}


def uid(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def props(ptype: str = "PUBLISH", **kw) -> Properties:
    """props("CONNECT", SessionExpiryInterval=10) -> paho Properties."""
    p = Properties(getattr(PacketTypes, {"WILL": "WILLMESSAGE"}.get(ptype, ptype)))
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def rc_value(rc) -> int:
    return rc.value if hasattr(rc, "value") else int(rc)


class MqttClient:
    def __init__(self, host: str, port: int, client_id: str | None = None, *, version: int = 5,
                 clean: bool = True, manual_ack: bool = False, transport: str = "tcp",
                 ws_path: str = "/mqtt", ca=None, cert=None, key=None):
        """``transport="websockets"`` (at ``ws_path``) for the WebSocket listeners; ``ca``
        (and ``cert``/``key`` for a client certificate) for TLS."""
        self.host, self.port, self.version = host, port, version
        self.client_id = uid("c") if client_id is None else client_id
        kw = {} if version == 5 else {"clean_session": clean}
        self.clean = clean
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=VERSIONS[version], reconnect_on_failure=False,
                             manual_ack=manual_ack, transport=transport, **kw)
        if transport == "websockets":
            self.c.ws_set_options(path=ws_path)
        if ca is not None:
            self.c.tls_set(ca_certs=str(ca), certfile=cert and str(cert),
                           keyfile=key and str(key))
        self.messages: queue.Queue = queue.Queue()
        self.connack = threading.Event()
        self.connack_rc: int | None = None
        self.connack_props = None
        self.session_present = None
        self.disconnected = threading.Event()
        self.disconnect_rc: int | None = None
        self.disconnect_props = None
        self._acks: dict[int, tuple[list[int], object]] = {}
        self._ack_events: dict[int, threading.Event] = {}
        self._pubacks: dict[int, int] = {}
        self._lock = threading.Lock()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_subscribe
        self.c.on_publish = self._on_publish
        self._started = False

    # paho callbacks (network thread)
    def _on_connect(self, c, ud, flags, rc, properties):
        self.connack_rc = rc_value(rc)
        self.connack_props = properties
        self.session_present = flags.session_present
        self.connack.set()

    def _on_disconnect(self, c, ud, flags, rc, properties):
        # paho may report twice (DISCONNECT packet, then socket close): keep the first.
        if not self.disconnected.is_set():
            self.disconnect_rc = rc_value(rc)
            self.disconnect_props = properties
        self.disconnected.set()

    def _on_message(self, c, ud, msg):
        self.messages.put(msg)

    def _ev(self, mid) -> threading.Event:
        with self._lock:
            return self._ack_events.setdefault(mid, threading.Event())

    def _on_subscribe(self, c, ud, mid, rcs, properties):
        self._acks[mid] = ([rc_value(r) for r in rcs], properties)
        self._ev(mid).set()

    def _on_publish(self, c, ud, mid, rc, properties):
        self._pubacks[mid] = rc_value(rc)

    # API
    def will_set(self, topic, payload=b"", qos=0, retain=False, properties=None):
        self.c.will_set(topic, payload, qos, retain, properties)
        return self

    def connect(self, *, keepalive: int = 60, properties=None, clean_start=None,
                username=None, password=None, expect_rc: int | None = 0, wait: bool = True):
        """Send CONNECT and wait for CONNACK; asserts its code unless expect_rc is None."""
        if username is not None or password is not None:
            self.c.username_pw_set(username, password)
        kw = {}
        if self.version == 5:
            kw["clean_start"] = self.clean if clean_start is None else clean_start
            kw["properties"] = properties
        self.c.connect(self.host, self.port, keepalive, **kw)
        self.c.loop_start()
        self._started = True
        if not wait:
            return self
        assert self.connack.wait(WAIT), "no CONNACK"
        if expect_rc is not None:
            assert self.connack_rc == expect_rc, f"CONNACK rc {self.connack_rc:#x} != {expect_rc:#x}"
        return self

    def subscribe(self, topic, qos: int = 0, *, options: SubscribeOptions | None = None,
                  properties=None, many: list | None = None) -> list[int]:
        """SUBSCRIBE and wait for SUBACK; returns the per-filter reason codes."""
        if many is not None:
            rc, mid = self.c.subscribe(many, properties=properties)
        elif options is not None:
            rc, mid = self.c.subscribe(topic, options=options, properties=properties)
        else:
            rc, mid = self.c.subscribe(topic, qos, properties=properties)
        assert rc == 0, f"subscribe not sent: {rc}"
        assert self._ev(mid).wait(WAIT), "no SUBACK"
        return self._acks[mid][0]

    def unsubscribe(self, topic) -> list[int]:
        rc, mid = self.c.unsubscribe(topic)
        assert rc == 0
        assert self._ev(mid).wait(WAIT), "no UNSUBACK"
        return self._acks[mid][0]

    def publish(self, topic, payload=b"", qos: int = 0, retain: bool = False, properties=None,
                wait: bool = True) -> int | None:
        """PUBLISH; for QoS>0 waits for the flow to finish and returns the PUBACK/PUBREC code."""
        info = self.c.publish(topic, payload, qos, retain, properties)
        if not wait:
            return info
        info.wait_for_publish(WAIT)
        assert info.is_published(), f"publish of {topic} did not complete"
        return self._pubacks.get(info.mid)

    def get(self, timeout: float = WAIT) -> paho.MQTTMessage:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no message arrived") from None

    def get_many(self, n: int, timeout: float = WAIT) -> list[paho.MQTTMessage]:
        return [self.get(timeout) for _ in range(n)]

    def expect_none(self, timeout: float = QUIET) -> None:
        try:
            msg = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {msg.topic}: {msg.payload!r}")

    def drain(self) -> list:
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def ack(self, msg) -> None:
        self.c.ack(msg.mid, msg.qos)

    def wait_disconnected(self, timeout: float = WAIT) -> int:
        assert self.disconnected.wait(timeout), "client was not disconnected"
        return self.disconnect_rc

    def disconnect(self, rc: int = 0, properties=None) -> None:
        """Clean DISCONNECT (rc only on v5)."""
        if self.version == 5:
            from paho.mqtt.reasoncodes import ReasonCode
            self.c.disconnect(ReasonCode(PacketTypes.DISCONNECT, identifier=rc), properties)
        else:
            self.c.disconnect()
        self.disconnected.wait(WAIT)
        self.close()

    def drop(self) -> None:
        """Close the TCP connection without DISCONNECT (an abnormal disconnect for the broker)."""
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # paho sees EOF and ends its loop
            except OSError:
                pass
        self.disconnected.wait(WAIT)
        if self._started:
            self.c.loop_stop()
            self._started = False

    def close(self) -> None:
        if self._started:
            try:
                if self.c.is_connected():
                    self.c.disconnect()
            except Exception:
                pass
            self.c.loop_stop()
            self._started = False


def sub_opts(qos=0, no_local=False, rap=False, rh=0) -> SubscribeOptions:
    return SubscribeOptions(qos=qos, noLocal=no_local, retainAsPublished=rap, retainHandling=rh)


def client(node, cid=None, *, v5=False, clean=True, expiry=None, username=None) -> MqttClient:
    """A client (MQTT 3.1.1, or 5) connected to a test broker `node` (anything with .host and
    .port), CONNACK received whatever its code (`connack_rc`); password "pw" with `username`."""
    c = MqttClient(node.host, node.port, cid, version=5 if v5 else 4, clean=clean)
    props = None
    if expiry is not None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = expiry
    password = None if username is None else "pw"
    return c.connect(properties=props, username=username, password=password, expect_rc=None)
