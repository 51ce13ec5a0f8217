"""`Client`: a paho client connected at construction that records what it receives (CONNACK
code, messages, SUBACKs, disconnects), as the retainer, banned and alarm tests use it."""
from __future__ import annotations

import queue

import paho.mqtt.client as mqtt

from support.mqttclient import props as make_props
from support.mqttclient import uid
from support.waiting import WAIT


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
        p = make_props("PUBLISH", **props) if props and self.v5 else None
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
