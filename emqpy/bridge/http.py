"""The HTTP connector and action (EMQX's emqx_bridge_http): a pooled aiohttp client to one base
URL, and per action the request templates rendered from a rule's output.

What is retried follows EMQX: 2xx is success; 429, 503 and connection failures (refused, reset,
closed, timed out) are recoverable and retried; any other status, or a request that cannot be
made (bad URL, bad header), is a final failure.
"""
from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from emqpy.templates import Template, to_text
from emqpy.listeners.certs import resolve_path
from emqpy.listeners.tls import set_versions_and_ciphers

from .worker import FAIL, OK, RETRY

_KEEPALIVE_SECONDS = 30.0  # how long an idle pooled connection is kept (EMQX's ehttpc: 30s)


class ConnectorError(ValueError):
    """A connector config that cannot be used (e.g. a TLS file that does not load)."""


def _pem_file(value: str, data_dir: Path, what: str) -> str:
    """EMQX accepts a file path or the PEM text itself; text is saved under the data dir."""
    if value.lstrip().startswith("-----BEGIN"):
        folder = data_dir / "certs" / "connectors"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{what}-{hashlib.sha256(value.encode()).hexdigest()[:16]}.pem"
        if not path.exists():
            path.write_text(value)
        return str(path)
    return str(resolve_path(value, data_dir))


def client_ssl_context(opts, data_dir: Path) -> ssl.SSLContext:
    """EMQX's client `ssl` options as an SSLContext; ConnectorError names the bad option."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    verify = opts.verify == "verify_peer"
    ctx.check_hostname = verify and opts.server_name_indication != "disable"
    ctx.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    try:
        if opts.cacertfile:
            ctx.load_verify_locations(_pem_file(opts.cacertfile, data_dir, "ca"))
        elif verify:
            ctx.load_default_certs()
    except (ssl.SSLError, OSError) as e:
        raise ConnectorError(f"ssl.cacertfile: cannot load: {e}") from None
    if opts.certfile:
        if not opts.keyfile:
            raise ConnectorError("ssl.keyfile: required with ssl.certfile")
        try:
            ctx.load_cert_chain(_pem_file(opts.certfile, data_dir, "cert"),
                                _pem_file(opts.keyfile, data_dir, "key"), opts.password or None)
        except (ssl.SSLError, OSError) as e:
            raise ConnectorError(f"ssl.certfile/keyfile: cannot load: {e}") from None
    set_versions_and_ciphers(ctx, opts.versions, opts.ciphers, "ssl", ConnectorError)
    return ctx


def join_paths(base: str, path: str) -> str:
    """EMQX's join of the connector URL and an action's path: one slash between them, none
    added before a query string."""
    if not path:
        return base
    if path.startswith("?"):
        return base + path
    return base.rstrip("/") + "/" + path.lstrip("/")


def readable(exc: BaseException) -> str:
    """A connection failure as EMQX names it (its status_reason)."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, aiohttp.ServerTimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
        return "econnrefused"
    if isinstance(exc, socket.gaierror) or isinstance(
            getattr(exc, "os_error", None), socket.gaierror):
        return "nxdomain"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "closed"
    return str(exc) or type(exc).__name__


class HttpConnector:
    """`connectors.http.<name>` running: the pool and its health check."""

    type = "http"

    def __init__(self, cfg, data_dir: Path, name: str = "", node: str = ""):
        self.cfg = cfg
        u = urlsplit(cfg.url)
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.tls = u.scheme == "https"
        self.ssl_ctx = None
        if self.tls:
            self.ssl_ctx = client_ssl_context(cfg.ssl, data_dir) if cfg.ssl.enable else \
                client_ssl_context(type(cfg.ssl)(enable=True), data_dir)
        self.headers = {k.lower(): Template(v) for k, v in cfg.headers.items()}
        self.session: aiohttp.ClientSession | None = None
        # the TLS server name to send: the URL's host, another name, or none ("disable")
        sni = cfg.ssl.server_name_indication if self.tls else None
        self.server_hostname = None if sni is None else "" if sni == "disable" else sni

    def open(self) -> None:
        """Create the pool (in the event loop); connections are made as requests need them."""
        conn = aiohttp.TCPConnector(limit=self.cfg.pool_size, limit_per_host=self.cfg.pool_size,
                                    ssl=self.ssl_ctx if self.tls else False,
                                    keepalive_timeout=_KEEPALIVE_SECONDS)
        # no cookies, no added headers: measurably less work per request (bench/README.md)
        self.session = aiohttp.ClientSession(
            connector=conn, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.cfg.connect_timeout))

    async def stop(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            await session.close()

    async def health_check(self) -> str | None:
        """None when the server accepts connections, else the reason (EMQX's words)."""
        try:
            _, w = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl_ctx,
                    server_hostname=(self.server_hostname if self.server_hostname is not None
                                     else self.host) if self.tls else None),
                self.cfg.connect_timeout)
        except Exception as e:  # what a health check is for: any failure is a reason
            return readable(e)
        w.close()
        return None

    def action(self, params) -> "HttpAction":
        return HttpAction(self, params)


class HttpAction:
    """The request one `actions.http.<name>` makes per message."""

    def __init__(self, connector: HttpConnector, params):
        self.connector = connector
        self.method = params.method.upper()
        self.path = Template(params.path or "")
        headers = dict(connector.headers)
        headers.update({k.lower(): Template(v) for k, v in params.headers.items()})
        if self.method in ("GET", "DELETE"):
            headers.pop("content-type", None)
        self.headers = headers
        self.body = Template(params.body) if params.body is not None else None
        # the event columns its templates may read (what the buffer keeps of the envelope)
        self.envelope_keys = frozenset().union(
            self.path.names, *(t.names for t in headers.values()),
            self.body.names if self.body is not None else ())
        self.max_retries = params.max_retries
        self.request_timeout = params.request_timeout
        self.base = connector.cfg.url
        self._urls: dict[str, URL] = {}  # parsed URLs by text: most actions have a few

    def _url(self, text: str) -> URL:
        url = self._urls.get(text)
        if url is None:
            if len(self._urls) >= 1024:
                self._urls.clear()
            url = self._urls[text] = URL(text)
        return url

    def render(self, selected: dict, envelope: dict) -> tuple[str, dict, bytes | None]:
        url = join_paths(self.base, self.path.render(selected, envelope))
        headers = {k: t.render(selected, envelope) for k, t in self.headers.items()}
        if self.method in ("GET", "DELETE"):
            body = None
        elif self.body is None:
            body = to_text(selected).encode("utf-8", "surrogateescape")
        else:
            body = self.body.render(selected, envelope).encode("utf-8", "surrogateescape")
        return url, headers, body

    async def send(self, selected: dict, envelope: dict, timeout: float) -> tuple[int, str]:
        """One delivery: (OK | RETRY | FAIL, reason); recoverable failures are retried here up
        to max_retries times first, as EMQX's HTTP connector does."""
        try:
            url, headers, body = self.render(selected, envelope)
        except Exception as e:  # a template that cannot render this message: final
            return FAIL, f"bad request: {e}"
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            outcome, reason = await self._once(url, headers, body, timeout)
            if outcome != RETRY:
                return outcome, reason
        return outcome, reason

    async def _once(self, url, headers, body, timeout) -> tuple[int, str]:
        session = self.connector.session
        if session is None:
            return RETRY, "connector stopped"
        try:
            resp = await session.request(self.method, self._url(url), data=body,
                                         headers=headers,
                                         server_hostname=self.connector.server_hostname,
                                         timeout=aiohttp.ClientTimeout(total=timeout))
            try:
                await resp.read()
            finally:
                resp.release()
            status = resp.status
        except (aiohttp.ClientConnectionError, asyncio.TimeoutError, OSError) as e:
            return RETRY, readable(e)
        except (aiohttp.ClientError, ValueError) as e:  # the request itself is bad
            return FAIL, str(e) or type(e).__name__
        if 200 <= status < 300:
            return OK, ""
        if status in (429, 503):
            return RETRY, f"status_code {status}"
        return FAIL, f"status_code {status}"
