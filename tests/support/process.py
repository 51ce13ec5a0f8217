"""A broker in its own process (tests/support/bridge_node.py), to be killed with SIGKILL and
started again on the same data dir: the kill -9 tests of action buffers and sessions."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from support.servers import free_port

SCRIPT = Path(__file__).parent / "bridge_node.py"
ROOT = Path(__file__).resolve().parents[2]


class BrokerProcess:
    """`args`: bridge_node.py's options (--forward ACTION FILTER); `config`: EMQX config
    merged into the node's."""

    def __init__(self, data_dir: Path, *args: str, config: dict | None = None):
        self.data_dir = data_dir
        self.mqtt_port, self.api_port = free_port(), free_port()
        self.args = [sys.executable, str(SCRIPT), str(data_dir), str(self.mqtt_port),
                     str(self.api_port), *args]
        if config:
            self.args += ["--config", json.dumps(config)]
        self.proc = None

    def start(self) -> "BrokerProcess":
        log = open(self.data_dir / "broker.log", "ab")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=log,
                                     env=dict(os.environ, PYTHONPATH=str(ROOT)), text=True)
        log.close()
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", (self.data_dir / "broker.log").read_text()[-3000:]
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}/api/v5",
                                auth=("admin", "public"), timeout=30)
        return self

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc.stdout.close()
        self.api.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc.stdout.close()
            self.api.close()
