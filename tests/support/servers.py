"""Servers the broker talks to in tests: real Redis, PostgreSQL and Mosquitto started in temp dirs
on free ports (Debian packages redis-server, postgresql and mosquitto; tests skip when the
binaries are absent), and `HttpServer`, a stand-in HTTP backend (authn/authz HTTP, JWKS,
Pushgateway) served from a thread."""
from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

REDIS_PASSWORD = "r3dis-pw"
PG_PASSWORD = "pg-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc=None, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class MosquittoServer:
    """A local Mosquitto on a free port (anonymous, no persistence); ``stop``/``start`` again
    keep the port, for outage tests. It has the attributes of a Node that tests read."""
    host, broker, http_port, is_emqpy = "127.0.0.1", None, None, False

    def __init__(self):
        if shutil.which("mosquitto") is None:
            pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mosq-")
        self.conf = os.path.join(self.dir, "m.conf")
        with open(self.conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, seconds=5)

    def stop(self, *, remove: bool = True):
        self.proc.terminate()
        self.proc.wait(5)
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer:
    def __init__(self):
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.dir = tempfile.mkdtemp(prefix="redis-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--requirepass", REDIS_PASSWORD],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def client(self):
        import redis
        return redis.Redis(port=self.port, password=REDIS_PASSWORD)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return cands[-1] if cands else None


class PostgresServer:
    """initdb + pg_ctl as the `postgres` system user when run as root (postgres refuses root)."""

    def __init__(self):
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
        self.pg_ctl = pg_ctl
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            if not shutil.which("runuser"):
                pytest.skip("running as root without runuser")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.dir = tempfile.mkdtemp(prefix="pg-")
        if self.as_user:
            shutil.chown(self.dir, "postgres")
        self.data = os.path.join(self.dir, "data")
        pw = os.path.join(self.dir, "pw")
        with open(pw, "w") as f:
            f.write(PG_PASSWORD)
        if self.as_user:
            shutil.chown(pw, "postgres")
        self.port = free_port()
        self._run([initdb, "-D", self.data, "-U", "postgres", "-A", "scram-sha-256",
                   "--pwfile", pw])
        self._run([pg_ctl, "-D", self.data, "-w", "-l", os.path.join(self.dir, "log"),
                   "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start"])
        wait_port(self.port)

    def _run(self, cmd):
        subprocess.run(self.as_user + cmd, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)

    def dsn(self, db="postgres") -> dict:
        return {"host": "127.0.0.1", "port": self.port, "user": "postgres",
                "password": PG_PASSWORD, "database": db}

    def sql(self, *statements, db="postgres"):
        import asyncio

        import asyncpg

        async def go():
            conn = await asyncpg.connect(**self.dsn(db))
            try:
                for st in statements:
                    if isinstance(st, tuple):
                        await conn.execute(st[0], *st[1:])
                    else:
                        await conn.execute(st)
            finally:
                await conn.close()
        asyncio.run(go())

    def stop(self):
        try:
            self._run([self.pg_ctl, "-D", self.data, "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler for `HttpServer`: HTTP/1.1, no access log, `send_json` for answers."""
    protocol_version = "HTTP/1.1"

    def send_json(self, code: int, body) -> None:
        """Answer `code` with `body`: JSON-encoded, bytes as they are, None for no body."""
        data = body if isinstance(body, bytes) else (b"" if body is None else
                                                      json.dumps(body).encode())
        self.send_response(code)
        if code != 204:
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
        self.end_headers()
        if code != 204:
            self.wfile.write(data)

    def log_message(self, *args):
        pass


class HttpServer:
    """`handler` (a QuietHandler subclass) served on a free loopback port until `close()`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.srv.daemon_threads = True
        self.port = self.srv.server_port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


class HttpSink:
    """tests/support/http_sink.py (an aiohttp server) in its own process on `port` (a free one
    by default); `stop()` and `start()` make an outage and end it on the same port."""

    def __init__(self, port: int | None = None, *, quiet: bool = False, tls: dict | None = None,
                 control_cert: tuple | None = None):
        """`tls`: certfile, keyfile and (to require client certificates) cafile;
        `control_cert`: the (certificate, key) the test's own control requests present."""
        self.port = port or free_port()
        self.control_cert = control_cert
        self.args = ["--quiet"] if quiet else []
        for k, v in (tls or {}).items():  # certfile, keyfile, cafile
            self.args += [f"--{k}", str(v)]
        self.scheme = "https" if tls else "http"
        self.proc = None
        self.start()

    def start(self) -> "HttpSink":
        import sys
        if self.proc is not None and self.proc.poll() is None:
            return self  # running already (the constructor starts it): never a second one
        script = os.path.join(os.path.dirname(__file__), "http_sink.py")
        self.proc = subprocess.Popen([sys.executable, script, str(self.port), *self.args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def url(self, path: str = "") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def _control(self, method: str, path: str):
        import httpx
        verify = False
        if self.control_cert:
            import ssl
            verify = ssl.create_default_context()
            verify.check_hostname, verify.verify_mode = False, ssl.CERT_NONE
            verify.load_cert_chain(*map(str, self.control_cert))
        r = httpx.request(method, f"{self.scheme}://127.0.0.1:{self.port}/_sink/{path}",
                          verify=verify, timeout=10)
        r.raise_for_status()
        return r.json() if r.content else None

    def requests(self) -> list[dict]:
        return self._control("GET", "requests")

    def clear(self) -> None:
        self._control("DELETE", "requests")

    def answer(self, status: int) -> None:
        self._control("PUT", f"status/{status}")

    def count(self) -> int:
        return self._control("GET", "count")
