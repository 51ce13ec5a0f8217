import pytest

from listeners import helpers
from support.servers import HttpSink, MosquittoServer

pki = helpers.pki  # the session's test certificates (CA, server, client)


@pytest.fixture
def mosquitto():
    """A Mosquitto of its own for one test: the remote broker of MQTT connectors."""
    m = MosquittoServer()
    yield m
    m.stop()


@pytest.fixture
def sink():
    """A real HTTP target (tests/support/http_sink.py) in its own process, one per test (tests
    change what it answers)."""
    s = HttpSink()
    yield s
    s.stop()
