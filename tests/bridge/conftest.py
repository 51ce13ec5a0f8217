import pytest
from listeners import helpers

from support.servers import HttpSink

pki = helpers.pki  # the session's test certificates (CA, server, client)


@pytest.fixture
def sink():
    """A real HTTP target (tests/support/http_sink.py) in its own process."""
    s = HttpSink()
    yield s
    s.stop()
