"""Fixtures shared by the security tests (authn, authz, flapping): their conftests import them."""
import pytest

from authn.helpers import Node


@pytest.fixture
def node(tmp_path):
    """node(overrides=None) -> started Node; all stopped after the test."""
    made = []

    def factory(overrides=None, data_dir=None):
        n = Node(data_dir or tmp_path / f"data{len(made)}", overrides).start()
        made.append(n)
        return n

    yield factory
    for n in made:
        n.stop()


@pytest.fixture(scope="module")
def redis_server():
    from authn.servers import RedisServer
    s = RedisServer()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def pg_server():
    from authn.servers import PostgresServer
    s = PostgresServer()
    yield s
    s.stop()
