"""Shared fixtures: a real broker on free loopback ports, built on emqpy's pytest plugin
(emqpy.testing: `mqtt_broker`, `make_mqtt_broker`); helpers live in tests/support.

`broker` is one broker per test module with default config. `make_broker(overrides)` starts a
broker with EMQX-shaped config overrides, e.g. ``make_broker({"mqtt": {"max_inflight": 2}})``.
Both give a `support.node.Node`.

Set EMQPY_TEST_TARGET=mosquitto to run the protocol tests against a local Mosquitto instead
(useful to check that a test encodes MQTT behaviour, not an emqpy quirk); tests marked
``emqpy_only`` and tests that need config overrides are skipped then.
"""
from __future__ import annotations

import importlib.metadata
import os

import pytest

from emqpy import features
from support.node import Node
from support.servers import MosquittoServer, PostgresServer, RedisServer

TARGET = os.environ.get("EMQPY_TEST_TARGET", "emqpy")
PROBE_MODULE = "support.probe_api"

# The plugin is found through its pytest11 entry point once emqpy is installed with it; until
# then (an older install of this checkout) or with entry points off, load it here. Registering
# it twice is an error.
if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") or not any(
        ep.value == "emqpy.testing" for ep in importlib.metadata.entry_points(group="pytest11")):
    pytest_plugins = ["emqpy.testing"]


def pytest_configure(config):
    config.addinivalue_line("markers", "emqpy_only: EMQX/emqpy-specific behaviour, not Mosquitto's")


def pytest_collection_modifyitems(config, items):
    if TARGET != "mosquitto":
        return
    skip = pytest.mark.skip(reason="emqpy-specific (EMQPY_TEST_TARGET=mosquitto)")
    for item in items:
        if "emqpy_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _probe_routes():
    """Mount the test-only probe router (support/probe_api.py) the way a feature's router is
    mounted (its manifest appended to the feature list), on every broker the tests start."""
    saved = features.FEATURES
    features.FEATURES = saved + (PROBE_MODULE,)
    yield
    features.FEATURES = saved


@pytest.fixture(scope="module")
def broker(request):
    """A broker with the default config shared by a module's tests: a Node, or Mosquitto."""
    if TARGET == "mosquitto":
        m = MosquittoServer()
        yield m
        m.stop()
        return
    n = Node(request.getfixturevalue("mqtt_broker"))
    yield n
    n.stop()


@pytest.fixture
def make_broker(make_mqtt_broker, request):
    """make_broker(overrides=None, data_dir=None) -> a started Node, stopped after the test."""
    def factory(overrides: dict | None = None, data_dir=None) -> Node:
        if TARGET == "mosquitto":
            pytest.skip("needs emqpy config overrides")
        n = Node(make_mqtt_broker(overrides, data_dir))
        request.addfinalizer(n.stop)
        return n

    return factory


@pytest.fixture(scope="module")
def api(broker):
    """The module's broker, for tests of the HTTP API (skipped against Mosquitto)."""
    if not broker.is_emqpy:
        pytest.skip("HTTP API")
    return broker


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A broker sampling its metrics every second (nodes, stats, monitor, prometheus)."""
    if TARGET == "mosquitto":
        pytest.skip("HTTP API")
    from emqpy.testing import BrokerThread  # here: the plugin module is imported by pytest

    n = Node(BrokerThread({"dashboard": {"sample_interval": "1s"}},
                          data_dir=str(tmp_path_factory.mktemp("emqpy-data"))).start())
    yield n
    n.stop()


@pytest.fixture(scope="module")
def redis_server():
    s = RedisServer()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def pg_server():
    s = PostgresServer()
    yield s
    s.stop()


@pytest.fixture
def env(make_broker):
    """A broker of its own for one test, with the default config (tests that count clients,
    sessions or messages and must not see another test's)."""
    return make_broker()
