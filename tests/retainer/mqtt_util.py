"""Small helpers shared by the retainer, banned and alarm tests: paho clients that record
what they receive, a raw MQTT 3.1.1 CONNECT, an API client, and waiting for a condition."""
from __future__ import annotations

import itertools
import queue
import socket
import time

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

WAIT = 10.0  # generous upper bound when waiting for something that must happen
_ids = itertools.count()


def uid(prefix: str) -> str:
    return f"{prefix}-{time.time_ns() % 10**9}-{next(_ids)}"


def wait_until(cond, what: str, timeout: float = WAIT):
    """Poll `cond()` until it returns something truthy (returned); fail with `what`."""
    deadline = time.monotonic() + timeout
    while True:
        res = cond()
        if res:
            return res
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Client:
    """A connected paho client; `.messages` queue, `.disconnects` queue of reason codes."""

    def __init__(self, port: int, clientid: str | None = None, *, v5: bool = True,
                 username: str | None = None, clean_start: bool = True):
        self.clientid = clientid or uid("c")
        self.v5 = v5
        self.messages: queue.Queue = queue.Queue()
        self.connacks: queue.Queue = queue.Queue()
        self.disconnects: queue.Queue = queue.Queue()
        self.subacks: queue.Queue = queue.Queue()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.clientid,
                        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                        **({} if v5 else {"clean_session": clean_start}))
        if username is not None:
            c.username_pw_set(username, "pw")
        c.on_connect = lambda cl, ud, flags, rc, props=None: self.connacks.put(rc)
        c.on_message = lambda cl, ud, msg: self.messages.put(msg)
        c.on_disconnect = lambda cl, ud, flags, rc, props=None: self.disconnects.put(rc)
        c.on_subscribe = lambda cl, ud, mid, rcs, props=None: self.subacks.put(rcs)
        self.c = c
        c.connect("127.0.0.1", port, keepalive=30,
                  **({"clean_start": clean_start} if v5 else {}))
        c.loop_start()
        self.rc = self.connacks.get(timeout=WAIT)

    @property
    def connected(self) -> bool:
        return not self.rc.is_failure

    def subscribe(self, flt: str, qos: int = 1):
        self.c.subscribe(flt, qos)
        return self.subacks.get(timeout=WAIT)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                **props):
        p = None
        if props and self.v5:
            p = Properties(PacketTypes.PUBLISH)
            for k, v in props.items():
                setattr(p, k, v)
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=p)
        if qos:
            info.wait_for_publish(WAIT)
        return info

    def get(self, timeout: float = WAIT):
        return self.messages.get(timeout=timeout)

    def expect_none(self, timeout: float = 0.3):
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message on {m.topic}: {m.payload!r}")

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


def raw_connect_v311(port: int, clientid: str, username: str | None = None) -> bytes:
    """Send an MQTT 3.1.1 CONNECT on a raw socket; returns the CONNACK bytes (4 bytes)."""
    def s(b: bytes) -> bytes:
        return len(b).to_bytes(2, "big") + b
    flags = 0x02 | (0x80 if username is not None else 0)
    payload = s(clientid.encode()) + (s(username.encode()) if username is not None else b"")
    body = s(b"MQTT") + bytes([4, flags]) + (30).to_bytes(2, "big") + payload
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(bytes([0x10, len(body)]) + body)
        data = b""
        while len(data) < 4:
            try:
                chunk = sock.recv(4 - len(data))
            except ConnectionResetError:  # closed by the server without an answer
                break
            if not chunk:
                break
            data += chunk
        return data


def api(http_port: int) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{http_port}/api/v5",
                        auth=("admin", "public"), timeout=30)
