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
from emqpy.config import commit, persist
from emqpy.dashboard import admin

log = logging.getLogger("emqpy.api")


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


def _ssl_context(opts) -> ssl.SSLContext:
    """An SSLContext from ``dashboard.listeners.https.ssl_options``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(_path(opts.certfile), _path(opts.keyfile), opts.password or None)
    if opts.verify == "verify_peer":
        if opts.cacertfile:
            ctx.load_verify_locations(_path(opts.cacertfile))
        ctx.verify_mode = ssl.CERT_REQUIRED if opts.fail_if_no_peer_cert else ssl.CERT_OPTIONAL
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
        self.starts = 0  # how many times the listeners came up (a restart adds one)

    @property
    def config(self):
        return self.broker.config

    def _prepare_store(self) -> None:
        store, conf = self.broker.store, self.config
        store.migrate("dashboard")
        username, password = conf.dashboard.default_username, conf.dashboard.default_password
        if admin.ensure_default_user(store, username, password):
            log.info("created default dashboard user %s", username)
        bootstrap = conf.api_key.bootstrap_file
        if bootstrap:
            try:
                n = admin.load_bootstrap_file(store, bootstrap, log)
                log.info("api_key.bootstrap_file %s: %d key(s)", bootstrap, n)
            except OSError as e:
                log.error("cannot read api_key.bootstrap_file %s: %s", bootstrap, e)

    async def start(self) -> None:
        dashboard = self.config.dashboard
        self.port = self.https_port = None
        await asyncio.to_thread(self._prepare_store)
        lock = LoginLock(max_attempts=dashboard.unsuccessful_login_max_attempts,
                         interval=dashboard.unsuccessful_login_interval,
                         lock_duration=dashboard.unsuccessful_login_lock_duration)
        self.app = create_app(ApiContext(self.broker, self.broker.store, login_lock=lock))
        if dashboard.cors:
            from starlette.middleware.cors import CORSMiddleware
            self.app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"],
                                    allow_headers=["*"])
        try:
            # HTTP is on 18083 unless configured off; HTTPS only when given a bind.
            http = await self._listener("http")
            if http is not None:
                self.port = http.port
            https = await self._listener("https")
            if https is not None:
                self.https_port = https.port
        except BaseException:
            await self.stop()
            raise
        self.starts += 1

    async def restart(self, previous) -> None:
        """Restart the listeners on the current dashboard config (as EMQX does after a config
        change); if they cannot start (a busy port...), go back to the ``previous`` dashboard
        config so that the API stays reachable."""
        # No config lock here: stopping waits for requests in flight, which may be waiting
        # for it.
        await self.stop()
        try:
            await self.start()
        except Exception as e:
            log.error("cannot start the dashboard listeners with the new config (%s); "
                      "restoring the previous dashboard config", e)
            commit(self.broker, self.broker.config.model_copy(update={"dashboard": previous}))
            await persist(self.broker, "dashboard")
            await self.start()

    async def _listener(self, scheme: str):
        """Start the dashboard.listeners.<scheme> listener, or None when it is off (bind 0)."""
        cfg = getattr(self.config.dashboard.listeners, scheme)
        if cfg.bind.disabled:
            return None
        ssl_ctx = _ssl_context(cfg.ssl_options) if scheme == "https" else None
        lst = _Listener(self.app, _listen(cfg.bind.host, cfg.bind.port, cfg.backlog), ssl_ctx)
        await lst.start()
        self._listeners.append(lst)
        log.info("dashboard %s listener on %s:%d", scheme.upper(), cfg.bind.host, lst.port)
        return lst

    async def stop(self) -> None:
        listeners, self._listeners = self._listeners, []
        for lst in listeners:
            try:
                await lst.stop()
            except Exception:  # keep stopping the others
                log.exception("error stopping dashboard listener")
