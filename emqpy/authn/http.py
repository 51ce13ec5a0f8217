"""`password_based:http`: ask a user's HTTP service, EMQX's request and response shapes."""
from __future__ import annotations

import asyncio
import logging

import aiohttp

from emqpy.authn.core import Authenticator, credentials
from emqpy.connectors.http import HttpClient, HttpReply
from emqpy.connectors.placeholders import client_vars
from emqpy.mqtt import reason_codes as rc

log = logging.getLogger("emqpy.authn")


def parse_result(resp: HttpReply) -> tuple[str, dict] | None:
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
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
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
