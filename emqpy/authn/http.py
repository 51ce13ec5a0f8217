"""`password_based:http`: ask a user's HTTP service, EMQX's request and response shapes."""
from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import httpx

from emqpy.authn.core import Authenticator, credentials
from emqpy.authn.placeholders import client_vars, render, render_obj
from emqpy.config import parse_duration
from emqpy.mqtt import reason_codes as rc

log = logging.getLogger("emqpy.authn")


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


def parse_result(resp: httpx.Response) -> tuple[str, dict] | None:
    """(result, body) from an EMQX-style answer, or None when it says nothing usable."""
    if resp.status_code == 204:
        return "allow", {}
    if not 200 <= resp.status_code < 300:
        return None
    try:
        body = resp.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("result") not in ("allow", "deny", "ignore"):
        return None
    return body["result"], body


class HttpAuthn(Authenticator):
    needs_resource = True

    def __init__(self, broker, cfg: dict):
        super().__init__(broker, cfg)
        self.http = HttpClient(cfg)

    def check(self, ch, pkt):
        username, password = credentials(pkt)
        return self._ask(client_vars(ch, password or ""))

    async def _ask(self, variables):
        try:
            resp = await self.http.request(variables)
        except (httpx.HTTPError, asyncio.TimeoutError, OSError) as e:
            self.last_error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            log.warning("authn http: request failed: %s", self.last_error)
            return None
        self.last_error = None
        parsed = parse_result(resp)
        if parsed is None:
            return None
        result, body = parsed
        if result == "allow":
            sup = body.get("is_superuser", False)
            if isinstance(sup, str):
                sup = sup.lower() == "true"
            out = {"is_superuser": bool(sup)}
            if isinstance(body.get("client_attrs"), dict):
                out["client_attrs"] = body["client_attrs"]
            return out
        if result == "deny":
            return rc.BAD_USERNAME_OR_PASSWORD
        return None

    async def health(self) -> bool:
        return await self.http.reachable()

    async def close(self) -> None:
        await self.http.close()
