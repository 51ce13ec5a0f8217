"""Brokers in their own processes: `Proc`, emqpy started as its users start it (`python -m
emqpy start`, on free loopback ports, the well-known ones left alone, with `emqpy ctl` and the
HTTP API at hand), and `BrokerProcess` (tests/support/bridge_node.py), to be killed with SIGKILL
and started again on the same data dir: the kill -9 tests of action buffers and sessions."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from support.servers import free_port

START_WAIT = 60


class Proc:
    """A broker started with `python -m emqpy start`, env-configured to loopback ports."""

    def __init__(self, data_dir, env: dict | None = None):
        self.data_dir = str(data_dir)
        self.mqtt_port, self.http_port = free_port(), free_port()
        self.env = {**os.environ,
                    "EMQX_LISTENERS__TCP__DEFAULT__BIND": f"127.0.0.1:{self.mqtt_port}",
                    "EMQX_DASHBOARD__LISTENERS__HTTP__BIND": f"127.0.0.1:{self.http_port}"}
        for t in ("ssl", "ws", "wss"):  # keep the well-known ports free
            self.env[f"EMQX_LISTENERS__{t.upper()}__DEFAULT__ENABLE"] = "false"
        self.env.update(env or {})
        self.output: list[str] = []  # what the broker printed (stdout and stderr)
        self.proc = None

    def start(self) -> "Proc":
        self.proc = subprocess.Popen([sys.executable, "-m", "emqpy", "start", "--data-dir",
                                      self.data_dir], env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue = queue.Queue()

        def read():
            for line in self.proc.stdout:
                self.output.append(line)
                lines.put(line)
            lines.put(None)
        threading.Thread(target=read, daemon=True).start()
        while True:
            line = lines.get(timeout=START_WAIT)
            assert line is not None, \
                "the broker exited during start:\n" + "".join(self.output[-30:])
            if "is running" in line:
                return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "emqpy", "ctl", "--data-dir",
                               self.data_dir, *args], env=self.env, capture_output=True,
                              text=True, timeout=120)

    def out(self, *args: str) -> str:
        r = self.ctl(*args)
        assert r.returncode == 0, (r.stdout, r.stderr)
        return r.stdout

    def api(self) -> httpx.Client:
        """The HTTP API (/api/v5) as the default dashboard user."""
        return httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}/api/v5",
                            auth=("admin", "public"), timeout=30)


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
