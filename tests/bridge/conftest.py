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


@pytest.fixture(scope="module")
def sink():
    """An HTTP server the module's HTTP connectors send to (modules that want a fresh one per
    test define their own)."""
    s = HttpSink()
    yield s
    s.stop()
