"""ApiServer: the dashboard HTTP(S) listeners, run by uvicorn inside the broker's event loop.

    api = ApiServer(broker)      # uses broker.config and broker.store
    await api.start()            # binds dashboard.listeners.http.bind (and https when set)
    api.port, api.https_port     # real bound ports (bind port 0 picks a free one)
    await api.stop()
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from typing import Any

import uvicorn

from emqpy.api.app import ApiContext, create_app
from emqpy.api.auth import LoginLock
from emqpy.api.cfg import cfg_get
from emqpy.dashboard import admin

log = logging.getLogger("emqpy.api")


def parse_bind(bind: Any, default_port: int) -> tuple[str, int] | None:
    """EMQX ``bind``: ``18083``, ``"18083"``, ``"127.0.0.1:18083"``, ``"[::1]:18083"``.
    ``0`` disables the listener; ``"host:0"`` binds a free port."""
    if bind is None:
        return ("0.0.0.0", default_port)
    if isinstance(bind, int) and not isinstance(bind, bool):
        return None if bind == 0 else ("0.0.0.0", bind)
    if isinstance(bind, (tuple, list)) and len(bind) == 2:
        return (str(bind[0]), int(bind[1]))
    text = str(bind).strip()
    if text.isdigit():
        return None if int(text) == 0 else ("0.0.0.0", int(text))
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"bad dashboard listener bind: {bind!r}")
    return (host.strip("[]"), int(port))


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def _path(value: Any) -> str:
    # EMQX config keeps ${EMQX_ETC_DIR} in file names until use.
    return str(value).replace("${EMQX_ETC_DIR}", os.environ.get("EMQX_ETC_DIR", "etc"))


def _ssl_context(opts: Any) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certfile, keyfile = cfg_get(opts, "certfile"), cfg_get(opts, "keyfile")
    if not certfile or not keyfile:
        raise ValueError("dashboard.listeners.https.ssl_options needs certfile and keyfile")
    ctx.load_cert_chain(_path(certfile), _path(keyfile), cfg_get(opts, "password") or None)
    if str(cfg_get(opts, "verify", "verify_none")) == "verify_peer":
        cacert = cfg_get(opts, "cacertfile")
        if cacert:
            ctx.load_verify_locations(_path(cacert))
        ctx.verify_mode = (ssl.CERT_REQUIRED if cfg_get(opts, "fail_if_no_peer_cert", False)
                           else ssl.CERT_OPTIONAL)
    return ctx


class _Listener:
    def __init__(self, app, sock: socket.socket, ssl_ctx: ssl.SSLContext | None):
        config = uvicorn.Config(app, lifespan="off", access_log=False, log_config=None,
                                timeout_graceful_shutdown=5, server_header=False)
        config.load()
        # uvicorn builds its SSLContext from file names; we hand it ours (same object type).
        config.ssl = ssl_ctx
        self.server = uvicorn.Server(config)
        self.server.lifespan = config.lifespan_class(config)
        self.sock = sock
        self.port = sock.getsockname()[1]
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        # startup()/main_loop() rather than serve(): serve() installs signal handlers, and
        # signals belong to the broker.
        await self.server.startup(sockets=[self.sock])
        self._task = asyncio.get_running_loop().create_task(self.server.main_loop())

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
        await self.server.shutdown(sockets=[self.sock])


class ApiServer:
    def __init__(self, broker):
        self.broker = broker
        self.port: int | None = None
        self.https_port: int | None = None
        self.app = None
        self._listeners: list[_Listener] = []

    @property
    def config(self):
        return self.broker.config

    def _prepare_store(self) -> None:
        store, conf = self.broker.store, self.config
        store.migrate("dashboard")
        username = str(cfg_get(conf, "dashboard.default_username", "admin"))
        password = str(cfg_get(conf, "dashboard.default_password", "public"))
        if admin.ensure_default_user(store, username, password):
            log.info("created default dashboard user %s", username)
        bootstrap = cfg_get(conf, "api_key.bootstrap_file", "")
        if bootstrap:
            try:
                n = admin.load_bootstrap_file(store, str(bootstrap), log)
                log.info("api_key.bootstrap_file %s: %d key(s)", bootstrap, n)
            except OSError as e:
                log.error("cannot read api_key.bootstrap_file %s: %s", bootstrap, e)

    async def start(self) -> None:
        conf = self.config
        await asyncio.to_thread(self._prepare_store)
        lock = LoginLock(
            max_attempts=int(cfg_get(conf, "dashboard.unsuccessful_login_max_attempts", 5)),
            interval=float(cfg_get(conf, "dashboard.unsuccessful_login_interval", 300)),
            lock_duration=float(cfg_get(conf, "dashboard.unsuccessful_login_lock_duration", 600)))
        ctx = ApiContext(self.broker, self.broker.store, conf, login_lock=lock)
        self.app = create_app(ctx)
        if cfg_get(conf, "dashboard.cors", False):
            from starlette.middleware.cors import CORSMiddleware
            self.app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"],
                                    allow_headers=["*"])
        try:
            # HTTP is on 18083 unless configured off; HTTPS only when given a bind.
            http = await self._listener("http", 18083, 18083)
            if http is not None:
                self.port = http.port
            https = await self._listener("https", 0, 18084)
            if https is not None:
                self.https_port = https.port
        except BaseException:
            await self.stop()
            raise

    async def _listener(self, scheme: str, default_bind, default_port: int):
        """Start the dashboard.listeners.<scheme> listener, or None when it is off."""
        key = f"dashboard.listeners.{scheme}."
        bind = parse_bind(cfg_get(self.config, key + "bind", default_bind), default_port)
        if bind is None or not cfg_get(self.config, key + "enable", True):
            return None
        ssl_ctx = _ssl_context(cfg_get(self.config, key + "ssl_options")) \
            if scheme == "https" else None
        backlog = int(cfg_get(self.config, key + "backlog", 1024))
        lst = _Listener(self.app, _listen(*bind, backlog), ssl_ctx)
        await lst.start()
        self._listeners.append(lst)
        log.info("dashboard %s listener on %s:%d", scheme.upper(), bind[0], lst.port)
        return lst

    async def stop(self) -> None:
        listeners, self._listeners = self._listeners, []
        for lst in listeners:
            try:
                await lst.stop()
            except Exception:  # keep stopping the others
                log.exception("error stopping dashboard listener")
