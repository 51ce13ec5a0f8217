"""Shared fixtures: a real broker on free loopback ports.

`broker` is one broker per test module with default config. `make_broker(overrides)` starts a
broker with EMQX-shaped config overrides, e.g. ``make_broker({"mqtt": {"max_inflight": 2}})``.

Set EMQPY_TEST_TARGET=mosquitto to run the protocol tests against a local Mosquitto instead
(useful to check that a test encodes MQTT behaviour, not an emqpy quirk); tests marked
``emqpy_only`` and tests that need config overrides are skipped then.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import pytest

TARGET = os.environ.get("EMQPY_TEST_TARGET", "emqpy")


def pytest_configure(config):
    config.addinivalue_line("markers", "emqpy_only: EMQX/emqpy-specific behaviour, not Mosquitto's")


def pytest_collection_modifyitems(config, items):
    if TARGET != "mosquitto":
        return
    skip = pytest.mark.skip(reason="emqpy-specific (EMQPY_TEST_TARGET=mosquitto)")
    for item in items:
        if "emqpy_only" in item.keywords:
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class BrokerHandle:
    host: str
    port: int
    broker: Any = None  # the emqpy.Broker, None when the target is Mosquitto
    http_port: int | None = None

    @property
    def is_emqpy(self) -> bool:
        return self.broker is not None


class _Mosquitto:
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mosq-")
        conf = os.path.join(self.dir, "m.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def close(self):
        self.proc.terminate()
        self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def _start_emqpy(tmp_path_factory, overrides: dict | None):
    from emqpy.testing import BrokerThread

    data_dir = tmp_path_factory.mktemp("emqpy-data")
    bt = BrokerThread(overrides or {}, data_dir=str(data_dir))
    bt.start()
    return bt


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    if TARGET == "mosquitto":
        m = _Mosquitto()
        yield BrokerHandle("127.0.0.1", m.port)
        m.close()
        return
    bt = _start_emqpy(tmp_path_factory, None)
    yield BrokerHandle("127.0.0.1", bt.port, bt.broker, bt.http_port)
    bt.stop()


@pytest.fixture
def make_broker(tmp_path_factory):
    started = []

    def factory(overrides: dict | None = None) -> BrokerHandle:
        if TARGET == "mosquitto":
            pytest.skip("needs emqpy config overrides")
        bt = _start_emqpy(tmp_path_factory, overrides)
        started.append(bt)
        return BrokerHandle("127.0.0.1", bt.port, bt.broker, bt.http_port)

    yield factory
    for bt in started:
        bt.stop()
