"""Who is calling: Basic auth (API key + secret, or a dashboard user's username + password) and
Bearer tokens from ``POST /login``. Use as router dependencies:

    router = APIRouter(dependencies=[Depends(authenticated)])    # any valid credentials
    router = APIRouter(dependencies=[Depends(dashboard_user)])   # users only, not API keys

Both depend on two documentation-only security schemes, so FastAPI lists
``security: [{basicAuth: []}, {bearerAuth: []}]`` on every guarded operation; the 401 codes are
documented with ``responses=AUTH_RESPONSES`` / ``USER_ONLY_RESPONSES`` on the router (the
OpenAPI generator adds AUTH_RESPONSES to any secured operation that documents no 401).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.openapi.models import HTTPBase as HTTPBaseModel
from fastapi.security.base import SecurityBase

from emqpy.api.errors import ApiError, error_responses
from emqpy.dashboard import admin

_WWW_AUTH = {"WWW-Authenticate": 'Basic Realm="emqx-dashboard"'}

# The 401 codes each policy can answer, for the OpenAPI document.
AUTH_401_CODES = ["AUTHORIZATION_HEADER_ERROR", "WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET",
                  "TOKEN_TIME_OUT", "BAD_TOKEN", "LOGIN_LOCKED"]
USER_ONLY_401_CODES = AUTH_401_CODES + ["API_KEY_NOT_ALLOW"]
AUTH_RESPONSES = error_responses({401: AUTH_401_CODES})
USER_ONLY_RESPONSES = error_responses({401: USER_ONLY_401_CODES})


class _DocScheme(SecurityBase):
    """A security scheme that only documents: the header is checked by _authenticate()."""

    def __init__(self, name: str, scheme: str, description: str):
        self.scheme_name = name
        self.model = HTTPBaseModel(scheme=scheme, description=description)

    async def __call__(self, request: Request) -> None:
        return None


basic_scheme = _DocScheme("basicAuth", "basic", "Authorize with an API key and secret (or a "
                                                "dashboard user's username and password)")
bearer_scheme = _DocScheme("bearerAuth", "bearer", "Authorize with a bearer token from "
                                                   "POST /login")


@dataclass
class Actor:
    kind: str           # "user" (dashboard user) or "api_key"
    name: str           # username or api_key
    token_jti: str | None = None  # set when authenticated by a bearer token


class LoginLock:
    """After ``max_attempts`` failed logins for one username within ``interval`` seconds, that
    username is locked for ``lock_duration`` seconds (EMQX's defaults: 5, 300 s, 600 s); a
    successful login clears the record. Kept in memory: a restart unlocks."""

    def __init__(self, max_attempts: int = 5, interval: float = 300, lock_duration: float = 600,
                 clock=time.monotonic):
        self.max_attempts, self.interval, self.lock_duration = max_attempts, interval, lock_duration
        self.clock = clock
        self._fails: dict[str, deque] = defaultdict(deque)
        self._locked_until: dict[str, float] = {}

    def locked(self, username: str) -> bool:
        until = self._locked_until.get(username)
        if until is None:
            return False
        if self.clock() >= until:
            del self._locked_until[username]
            return False
        return True

    def failed(self, username: str) -> None:
        now = self.clock()
        q = self._fails[username]
        q.append(now)
        while q and q[0] < now - self.interval:
            q.popleft()
        if len(q) >= self.max_attempts:
            self._locked_until[username] = now + self.lock_duration
            q.clear()
        if len(self._fails) > 100_000:  # bound memory under a username-spraying attack
            for name in [n for n, d in self._fails.items() if not d or d[-1] < now - self.interval]:
                del self._fails[name]

    def succeeded(self, username: str) -> None:
        self._fails.pop(username, None)
        self._locked_until.pop(username, None)


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, _WWW_AUTH)


_MISSING_MSG = ("Missing authorization header. Use Basic auth with API key/secret, or Bearer "
                "token from POST /api/v5/login. API keys can be bootstrapped from config "
                "(api_key.bootstrap_file) or created via POST /api/v5/api_key")


async def _authenticate(request: Request) -> Actor:
    ctx = request.app.state.ctx
    replica = request.scope.get("emqpy.replica")  # a change replayed from another node
    if replica is not None:  # (emqpy.cluster.replica; a network request cannot set it)
        return Actor(*replica)
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("AUTHORIZATION_HEADER_ERROR", _MISSING_MSG)
    scheme, _, cred = header.strip().partition(" ")
    scheme, cred = scheme.lower(), cred.strip()
    if scheme == "bearer" and cred:
        check = admin.verify_token(ctx.store, cred)
        # As EMQX: a bad bearer token gets no WWW-Authenticate challenge (a browser would
        # answer one with its own password prompt instead of letting the dashboard log in again).
        if check.error == "TOKEN_TIME_OUT":
            raise ApiError(401, "TOKEN_TIME_OUT", "Token expired. Get a new token by "
                                                  "POST /api/v5/login, or use an API key")
        if check.error:
            raise ApiError(401, "BAD_TOKEN", "Invalid bearer token. Get a new token by "
                                             "POST /api/v5/login")
        return Actor("user", check.username, check.jti)
    if scheme == "basic" and cred:
        try:
            user, sep, password = base64.b64decode(cred, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise _unauthorized("AUTHORIZATION_HEADER_ERROR",
                                "Malformed Basic credentials: expected base64 of key:secret")
        return await _basic(ctx, user, password)
    raise _unauthorized("AUTHORIZATION_HEADER_ERROR",
                        "Unsupported authorization scheme; use Basic or Bearer. " + _MISSING_MSG)


async def _basic(ctx, user: str, password: str) -> Actor:
    store = ctx.store
    bad = _unauthorized("WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET", "Check api_key/api_secret")
    if admin.is_api_key(store, user) or not ctx.allow_user_basic_auth:
        # Slow hash checks run off the event loop so MQTT traffic is not stalled.
        if await asyncio.to_thread(admin.check_api_key, store, user, password):
            return Actor("api_key", user)
        raise bad
    if ctx.login_lock.locked(user):
        raise _unauthorized("LOGIN_LOCKED", "Login locked after too many failed attempts; "
                                            "try again later")
    if await asyncio.to_thread(admin.check_user_password, store, user, password):
        ctx.login_lock.succeeded(user)
        return Actor("user", user)
    ctx.login_lock.failed(user)
    raise bad


async def authenticated(request: Request, _b: None = Depends(basic_scheme),
                        _t: None = Depends(bearer_scheme)) -> Actor:
    actor = await _authenticate(request)
    request.state.actor = actor
    return actor


async def dashboard_user(request: Request, _b: None = Depends(basic_scheme),
                         _t: None = Depends(bearer_scheme)) -> Actor:
    actor = await _authenticate(request)
    if actor.kind == "api_key":
        path = request.url.path
        raise _unauthorized("API_KEY_NOT_ALLOW",
                            f"Please use bearer Token instead, using API key/secret in {path} "
                            "path is not permitted")
    request.state.actor = actor
    return actor
