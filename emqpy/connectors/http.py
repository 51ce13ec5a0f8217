"""The HTTP connector: EMQX's request config (url, method, headers, body, timeouts, pool) and
a pooled httpx client that renders the `${var}` templates of url, headers and body."""
from __future__ import annotations

import asyncio
from typing import Literal
from urllib.parse import urlsplit

import httpx
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


class HttpClient:
    """A pooled httpx client rendering EMQX templates; shared by authn and authz."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.method = cfg.get("method", "post").upper()
        self.headers = {str(k).lower(): str(v) for k, v in (cfg.get("headers") or {}).items()}
        self.timeout = parse_duration(cfg.get("request_timeout", "5s"))
        connect = parse_duration(cfg.get("connect_timeout", "15s"))
        limits = httpx.Limits(max_connections=int(cfg.get("pool_size", 8)),
                              max_keepalive_connections=int(cfg.get("pool_size", 8)))
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout, connect=min(connect, self.timeout)),
            limits=limits, verify=bool((cfg.get("ssl") or {}).get("verify") == "verify_peer"))

    async def request(self, variables: dict) -> httpx.Response:
        url = render(self.cfg["url"], variables)
        body = render_obj(self.cfg.get("body") or {}, variables)
        headers = {k: render(v, variables) for k, v in self.headers.items()}
        if self.method == "GET":
            headers.pop("content-type", None)
            req = self.client.build_request("GET", url, params=body, headers=headers)
        elif headers.get("content-type", "application/json").startswith(
                "application/x-www-form-urlencoded"):
            req = self.client.build_request("POST", url, data=body, headers=headers)
        else:
            req = self.client.build_request("POST", url, json=body, headers=headers)
        # asyncio's timeout also bounds pool waits, so a stuck backend cannot stall a client.
        return await asyncio.wait_for(self.client.send(req), self.timeout + 1)

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
        await self.client.aclose()
