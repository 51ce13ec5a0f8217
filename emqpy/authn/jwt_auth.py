"""`jwt` authentication: HMAC secret, a public key, or keys from a JWKS endpoint.

A token that is not a JWT or whose signature does not verify is ignored (the next authenticator
may know it); a verified token with failing claims (exp, nbf, verify_claims) is refused. With
`disconnect_after_expire` the connection is closed when `exp` passes.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time

import aiohttp
import jwt
from jwt import PyJWKSet

from emqpy.authn.core import Authenticator, credentials
from emqpy.connectors.placeholders import client_vars, render
from emqpy.mqtt import reason_codes as rc

log = logging.getLogger("emqpy.authn")
HMAC_ALGS = ["HS256", "HS384", "HS512"]
PUBKEY_ALGS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
               "EdDSA"]


class _Unverified(Exception):
    """The token is not for us: malformed or signed with another key."""


class JwtAuthn(Authenticator):
    def __init__(self, broker, cfg: dict):
        super().__init__(broker, cfg)
        self.from_ = cfg.get("from", "password")
        self.keys: list = []  # (key, [algorithms])
        self._jwks_at = 0.0
        self._jwks_lock = None
        self._timers: dict[int, tuple] = {}  # id(channel) -> (channel, expiry timer)
        if cfg.get("use_jwks"):
            self.needs_resource = True
        elif cfg.get("algorithm") == "hmac-based":
            secret = cfg["secret"]
            if cfg.get("secret_base64_encoded"):
                try:
                    key = base64.b64decode(secret, validate=True)
                except (binascii.Error, ValueError):
                    from emqpy.authn.config import ConfigInvalid
                    raise ConfigInvalid("secret: not valid base64") from None
            else:
                key = secret.encode()
            self.keys = [(key, HMAC_ALGS)]
        else:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key
            try:
                key = load_pem_public_key(cfg["public_key"].encode())
            except (ValueError, TypeError) as e:
                from emqpy.authn.config import ConfigInvalid
                raise ConfigInvalid(f"public_key: not a PEM public key ({e})") from None
            self.keys = [(key, PUBKEY_ALGS)]

    # -- JWKS -------------------------------------------------------------------------------

    async def _refresh_jwks(self, force: bool = False) -> None:
        if self._jwks_lock is None:
            self._jwks_lock = asyncio.Lock()
        async with self._jwks_lock:
            if not force and self.keys and \
                    time.monotonic() - self._jwks_at < self.cfg.get("refresh_interval", 300):
                return
            try:
                async with aiohttp.ClientSession(
                        timeout=aiohttp.ClientTimeout(total=5)) as client:
                    async with client.get(self.cfg["endpoint"],
                                          headers=self.cfg.get("headers") or {}) as r:
                        r.raise_for_status()
                        keyset = PyJWKSet.from_dict(await r.json(content_type=None))
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError,
                    jwt.PyJWTError) as e:
                self.last_error = f"JWKS fetch failed: {e}"
                log.warning("authn jwt: %s", self.last_error)
                self._jwks_at = time.monotonic()  # do not hammer a broken endpoint
                return
            self.keys = [(k.key, [k.algorithm_name], k.key_id) for k in keyset.keys]
            self._jwks_at = time.monotonic()
            self.last_error = None

    async def health(self) -> bool:
        if not self.cfg.get("use_jwks"):
            return True
        await self._refresh_jwks(force=True)
        return self.last_error is None

    # -- expiry -------------------------------------------------------------------------------

    def _expire(self, ch) -> None:
        """The token that let this connection in has expired."""
        from emqpy.broker.channel import CLOSED
        self._timers.pop(id(ch), None)
        if ch.state != CLOSED:
            ch.close(rc.NOT_AUTHORIZED, "connection_expire")

    def forget(self, ch) -> None:
        """The connection ended: drop its expiry timer (and the reference to it)."""
        entry = self._timers.pop(id(ch), None)
        if entry is not None and entry[0] is ch:
            entry[1].cancel()

    async def close(self) -> None:
        for _ch, h in self._timers.values():
            h.cancel()
        self._timers.clear()

    # -- authentication ---------------------------------------------------------------------

    def check(self, ch, pkt):
        username, password = credentials(pkt)
        token = password if self.from_ == "password" else username
        if not token:
            return None
        if self.cfg.get("use_jwks"):
            return self._check_jwks(ch, token, pkt)
        return self._verify(ch, token, pkt)

    async def _check_jwks(self, ch, token, pkt):
        await self._refresh_jwks()
        return self._verify(ch, token, pkt)

    def _decode(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise _Unverified(f"malformed token: {e}") from None
        kid = header.get("kid")
        for entry in self.keys:
            key, algs = entry[0], entry[1]
            if kid is not None and len(entry) > 2 and entry[2] not in (None, kid):
                continue
            try:
                # Claims are checked below, after the signature, as EMQX does.
                return jwt.decode(token, key, algorithms=algs,
                                  options={"verify_exp": False, "verify_nbf": False,
                                           "verify_iat": False, "verify_aud": False,
                                           "verify_iss": False})
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as e:
                raise _Unverified(str(e)) from None
        raise _Unverified("signature verification failed")

    def _verify(self, ch, token, pkt):
        try:
            claims = self._decode(token)
        except _Unverified as e:
            log.debug("authn jwt: ignoring token: %s", e)
            return None
        now = time.time()
        exp = claims.get("exp")
        if exp is not None and (not isinstance(exp, (int, float)) or exp <= now):
            return rc.BAD_USERNAME_OR_PASSWORD
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, (int, float)) or nbf > now):
            return rc.BAD_USERNAME_OR_PASSWORD
        variables = client_vars(ch)
        for name, expected in (self.cfg.get("verify_claims") or {}).items():
            if name not in claims or str(claims[name]) != render(str(expected), variables):
                return rc.BAD_USERNAME_OR_PASSWORD
        if exp is not None and self.cfg.get("disconnect_after_expire", True):
            self.forget(ch)
            self._timers[id(ch)] = (ch, self.broker.loop.call_later(max(0.0, exp - now),
                                                                    self._expire, ch))
        acl = claims.get(self.cfg.get("acl_claim_name", "acl"))
        authz = self.broker.authz
        if acl is not None and authz is not None:
            authz.set_client_acl(ch, acl, exp)
        return {"is_superuser": bool(claims.get("is_superuser", False))}


