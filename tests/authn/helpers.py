"""Shared by the authn/authz/flapping tests: a real broker in a thread with its HTTP API, and
raw MQTT clients (tests/protocol/rawmqtt.py) to read exact reason codes."""
from __future__ import annotations

import httpx

from emqpy.testing import BrokerThread
from protocol.rawmqtt import (  # noqa: F401  (re-exported for the tests)
    CONNACK, DISCONNECT, PUBACK, PUBREC, SUBACK, Closed, RawClient, connect_packet,
    publish_packet, subscribe_packet,
)


class Node:
    """A started broker: `.api` (httpx client with admin auth), `.mqtt(...)`, `.restart()`."""

    def __init__(self, data_dir, overrides: dict | None = None):
        self.data_dir, self.overrides = str(data_dir), overrides or {}
        self.bt = None
        self.clients: list[RawClient] = []

    def start(self) -> "Node":
        self.bt = BrokerThread(self.overrides, data_dir=self.data_dir).start()
        self.broker = self.bt.broker
        self.port = self.bt.port
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.bt.http_port}/api/v5",
                                auth=("admin", "public"), timeout=30)
        return self

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.clients.clear()
        if self.bt is not None:
            self.api.close()
            self.bt.stop()
            self.bt = None

    def restart(self) -> "Node":
        self.stop()
        return self.start()

    def raw(self, version: int = 5) -> RawClient:
        c = RawClient("127.0.0.1", self.port, version)
        self.clients.append(c)
        return c

    def connect(self, clientid: str, username=None, password=None, version=5, **kw):
        """CONNECT and return (client, CONNACK reason code)."""
        c = self.raw(version)
        if isinstance(password, str):
            password = password.encode()
        ack = c.connect(clientid, username=username, password=password, version=version, **kw)
        return c, ack.rc

    def connack(self, *a, **kw) -> int:
        c, code = self.connect(*a, **kw)
        c.close()
        return code


def assert_error(resp, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json()["code"] == code, resp.text
