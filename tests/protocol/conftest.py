"""Fixtures for the protocol suite: client factories that clean up after each test."""
from __future__ import annotations

import pytest

from support.mqttclient import MqttClient
from support.rawmqtt import RawClient


@pytest.fixture
def mqtt():
    """mqtt(handle, client_id=None, version=5, clean=True, **connect_kw) -> connected MqttClient.

    Pass connect=False to get an unconnected client (to set a will first, or to expect failure).
    """
    made: list[MqttClient] = []

    def factory(handle, client_id=None, *, version=5, clean=True, manual_ack=False,
                connect=True, **kw):
        c = MqttClient(handle.host, handle.port, client_id, version=version, clean=clean,
                       manual_ack=manual_ack)
        made.append(c)
        if connect:
            c.connect(**kw)
        return c

    yield factory
    for c in made:
        c.close()


@pytest.fixture
def raw():
    """raw(handle, version=5) -> RawClient (an unconnected socket)."""
    made: list[RawClient] = []

    def factory(handle, version=5):
        r = RawClient(handle.host, handle.port, version)
        made.append(r)
        return r

    yield factory
    for r in made:
        r.close()
