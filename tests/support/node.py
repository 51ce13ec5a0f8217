"""`Node`: a started broker as the tests use it (the `broker` and `make_broker` fixtures).

It wraps the `emqpy.testing.BrokerThread` that the pytest plugin's `make_mqtt_broker` started
and adds what tests need around it: an HTTP client on the management API with the default
dashboard user, login tokens and API keys, MQTT clients (paho and raw) that are closed when the
node stops, and a restart on the same data dir.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from support.mqttclient import MqttClient, props, uid
from support.rawmqtt import RawClient
from support.waiting import wait_until

if TYPE_CHECKING:
    from emqpy.testing import BrokerThread

ADMIN = ("admin", "public")


class Node:
    is_emqpy = True  # tests that also run against Mosquitto look at this

    def __init__(self, bt: BrokerThread):
        self.bt = bt
        self.host = bt.host
        self._mqtt: list = []
        self.api = self._admin_client()

    def _admin_client(self) -> httpx.Client:
        """The management API (base URL /api/v5) as the default dashboard user."""
        return httpx.Client(base_url=self.bt.api_url, auth=ADMIN, timeout=30)

    # the broker ----------------------------------------------------------------------------
    @property
    def broker(self):
        return self.bt.broker

    @property
    def port(self) -> int:
        return self.bt.port

    @property
    def http_port(self) -> int | None:
        return self.bt.http_port

    @property
    def base(self) -> str:
        """The HTTP listener's root URL (``http://127.0.0.1:<port>``)."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def api_url(self) -> str:
        return self.bt.api_url

    @property
    def name(self) -> str:
        return self.broker.node_name

    @property
    def data_dir(self) -> Path:
        return Path(self.bt.data_dir)

    @property
    def store(self):
        return self.broker.store

    def listener_port(self, listener_id: str) -> int | None:
        return self.bt.listener_port(listener_id)

    def call(self, fn, *args, timeout: float = 10):
        """Run `fn(*args)` in the broker's event loop (awaited if it is a coroutine)."""
        return self.bt.call(fn, *args, timeout=timeout)

    def stop(self) -> None:
        for c in self._mqtt:
            c.close()
        self._mqtt.clear()
        self.api.close()
        self.bt.stop()

    def start(self) -> "Node":
        """Start again after `stop`, on the same config and data dir (the ports change)."""
        self.bt.restart()
        self.api = self._admin_client()
        return self

    def restart(self) -> "Node":
        self.stop()
        return self.start()

    # HTTP ----------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base + path

    def client(self, **kw) -> httpx.Client:
        """An HTTP client on the listener's root, unauthenticated unless `auth`/`headers`."""
        return httpx.Client(base_url=self.base, timeout=30, **kw)

    def ok(self, method: str, path: str, status: int = 200, **kw):
        """`method path` on the API, which must answer `status`; returns the body (JSON
        decoded when it is JSON, None when empty)."""
        r = self.api.request(method, path, **kw)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"
        if not r.content:
            return None
        if r.headers.get("content-type", "").startswith("application/json"):
            return r.json()
        return r.text

    def get(self, path: str, status: int = 200, **kw):
        return self.ok("GET", path, status, **kw)

    def token(self, username="admin", password="public") -> str:
        with self.client() as c:
            r = c.post("/api/v5/login", json={"username": username, "password": password})
            assert r.status_code == 200, r.text
            return r.json()["token"]

    def bearer(self, username="admin", password="public") -> httpx.Client:
        return self.client(headers={"Authorization": "Bearer " + self.token(username, password)})

    def new_key(self, name: str, **body) -> dict:
        return self.ok("POST", "/api_key", json={"name": name, **body})

    # MQTT ----------------------------------------------------------------------------------
    def mqtt(self, client_id: str | None = None, *, version: int = 5, clean: bool = True,
             manual_ack: bool = False, connect: bool = True, **connect_kw) -> MqttClient:
        """A paho client (connected unless connect=False), closed when the node stops."""
        c = MqttClient(self.host, self.port, client_id, version=version, clean=clean,
                       manual_ack=manual_ack)
        self._mqtt.append(c)
        if connect:
            c.connect(**connect_kw)
        return c

    def offline_session(self, prefix: str, topic_filter: str) -> str:
        """A persistent session (expiry 300 s) subscribed to `topic_filter` at QoS 1 whose
        client has gone: messages for it queue. Returns its client id."""
        cid = uid(prefix)
        c = self.mqtt(cid, clean=False, properties=props("CONNECT", SessionExpiryInterval=300))
        c.subscribe(topic_filter, 1)
        c.disconnect()
        wait_until(lambda: not self.ok("GET", f"/clients/{cid}")["connected"])
        return cid

    def raw(self, version: int = 5) -> RawClient:
        """An unconnected raw MQTT socket, closed when the node stops."""
        c = RawClient(self.host, self.port, version)
        self._mqtt.append(c)
        return c

    def connect(self, clientid: str, username=None, password=None, version=5, **kw):
        """CONNECT on a raw socket; returns (client, CONNACK reason code)."""
        c = self.raw(version)
        if isinstance(password, str):
            password = password.encode()
        ack = c.connect(clientid, username=username, password=password, version=version, **kw)
        return c, ack.rc

    def connack(self, *a, **kw) -> int:
        c, code = self.connect(*a, **kw)
        c.close()
        return code


def assert_error(resp, status: int, code: str, *fragments: str) -> None:
    """An EMQX error answer: `status`, JSON body with `code`, a message holding `fragments`."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["code"] == code, body
    assert body["message"] and body["reason"] == body["message"]
    for f in fragments:
        assert f in body["message"], body["message"]
