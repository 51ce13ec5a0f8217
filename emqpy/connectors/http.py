"""The HTTP connector: EMQX's request config (url, method, headers, body, timeouts, pool) and
a pooled aiohttp client that renders the `${var}` templates of url, headers and body. (aiohttp
is the one HTTP client of emqpy's runtime: the data-integration HTTP action uses it too.)"""
from __future__ import annotations

import asyncio
from typing import Literal
from urllib.parse import urlsplit

import json

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator

from emqpy.connectors.placeholders import render, render_obj
from emqpy.config import parse_duration
from emqpy.connectors import duration

_DEFAULT_HEADERS = {"accept": "application/json", "cache-control": "no-cache",
                    "connection": "keep-alive", "content-type": "application/json",
                    "keep-alive": "timeout=30, max=1000"}


class HttpConnectorCfg(BaseModel):
    """The request fields; a subclass sets its own `request_timeout` default (EMQX: 5s for
    authentication, 30s for authorization)."""
    model_config = ConfigDict(extra="forbid")
    method: Literal["post", "get"] = "post"
    url: str
    headers: dict[str, str] | None = None
    body: dict = {}
    request_timeout: str = "5s"
    connect_timeout: str = "15s"
    pool_size: int = Field(8, ge=1)
    enable_pipelining: int = Field(100, ge=1)
    ssl: dict = {"enable": False}
    max_retries: int | None = None
    retry_interval: str | None = None
    request: dict | None = None

    @field_validator("ssl")
    @classmethod
    def _tls_supported(cls, v: dict):
        # https with the system's CAs works; client certificates and private CAs do not yet,
        # and are refused rather than ignored.
        if v.get("enable") in (True, "true") and any(
                v.get(k) for k in ("certfile", "keyfile", "cacertfile")):
            raise ValueError("ssl: certfile/keyfile/cacertfile for HTTP backends are not "
                             "supported by emqpy yet")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str):
        if not v.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return v

    @field_validator("request_timeout", "connect_timeout", mode="before")
    @classmethod
    def _dur(cls, v):
        return duration(v)

    def model_post_init(self, _ctx) -> None:
        if self.headers is None:  # a GET has no body, so no content-type
            h = dict(_DEFAULT_HEADERS)
            if self.method == "get":
                h.pop("content-type")
            self.headers = h


class HttpReply:
    """What a request answered: the status and the body (``json()`` parses it)."""
    __slots__ = ("status_code", "content")

    def __init__(self, status_code: int, content: bytes):
        self.status_code, self.content = status_code, content

    def json(self):
        return json.loads(self.content)


class HttpClient:
    """A pooled aiohttp client rendering EMQX templates; shared by authn and authz. The session
    is made at the first request (it belongs to the running loop)."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.method = cfg.get("method", "post").upper()
        self.headers = {str(k).lower(): str(v) for k, v in (cfg.get("headers") or {}).items()}
        self.timeout = parse_duration(cfg.get("request_timeout", "5s"))
        self.connect_timeout = min(parse_duration(cfg.get("connect_timeout", "15s")),
                                   self.timeout)
        self.pool_size = int(cfg.get("pool_size", 8))
        self.verify = (cfg.get("ssl") or {}).get("verify") == "verify_peer"
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.pool_size,
                                               ssl=None if self.verify else False),
                timeout=aiohttp.ClientTimeout(total=self.timeout,
                                              connect=self.connect_timeout),
                cookie_jar=aiohttp.DummyCookieJar(), skip_auto_headers=("User-Agent",))
        return self._session

    async def request(self, variables: dict) -> HttpReply:
        """Send the rendered request; raises ``aiohttp.ClientError``, ``OSError`` or
        ``asyncio.TimeoutError`` when the service cannot answer."""
        url = render(self.cfg["url"], variables)
        body = render_obj(self.cfg.get("body") or {}, variables)
        headers = {k: render(v, variables) for k, v in self.headers.items()}
        kw: dict = {}
        if self.method == "GET":
            headers.pop("content-type", None)
            kw["params"] = {str(k): v if isinstance(v, str) else json.dumps(v)
                            for k, v in body.items()}
        elif headers.get("content-type", "application/json").startswith(
                "application/x-www-form-urlencoded"):
            kw["data"] = {str(k): v if isinstance(v, str) else json.dumps(v)
                          for k, v in body.items()}
        else:
            kw["data"] = json.dumps(body).encode()
        # asyncio's timeout also bounds pool waits, so a stuck backend cannot stall a client.
        async with asyncio.timeout(self.timeout + 1):
            async with self._client().request(self.method, url, headers=headers, **kw) as r:
                return HttpReply(r.status, await r.read())

    async def reachable(self) -> bool:
        u = urlsplit(self.cfg["url"])
        port = u.port or (443 if u.scheme == "https" else 80)
        try:
            _, w = await asyncio.wait_for(asyncio.open_connection(u.hostname, port), 5)
        except (OSError, asyncio.TimeoutError):
            return False
        w.close()
        return True

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
