"""REST API of dashboard users, login tokens and API keys (EMQX's "Dashboard" and "API Keys").

API keys may not manage users or API keys (401 API_KEY_NOT_ALLOW, as in EMQX 5.8): only a
dashboard user (Basic auth with username/password, or a bearer token) may.
"""
from __future__ import annotations

import asyncio
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from emqpy import EMQX_VERSION
from emqpy.api.auth import USER_ONLY_401_CODES, USER_ONLY_RESPONSES, Actor, dashboard_user
from emqpy.api.errors import ApiError, error_responses
from emqpy.dashboard import admin
from emqpy.timefmt import parse_expiry

public = APIRouter(tags=["Dashboard"])
users = APIRouter(tags=["Dashboard"], dependencies=[Depends(dashboard_user)],
                  responses=USER_ONLY_RESPONSES)
keys = APIRouter(tags=["API Keys"], dependencies=[Depends(dashboard_user)],
                 responses=USER_ONLY_RESPONSES)

Username = Annotated[str, Field(max_length=100, description="Dashboard Username",
                                examples=["admin"])]
Password = Annotated[str, Field(max_length=100, description="Dashboard Password",
                                examples=["public"])]
UsernameInPath = Annotated[str, Path(description="Dashboard Username", examples=["admin"])]
KeyName = Annotated[str, Path(description="^[A-Za-z]+[A-Za-z0-9-_]*$", max_length=256,
                              pattern=admin.API_KEY_NAME_RE.pattern,
                              examples=["EMQX-API-KEY-1"])]

_EXPIRED_AT_SCHEMA = {
    "description": "No longer valid datetime: RFC 3339, epoch seconds, or \"infinity\"",
    "default": "infinity", "example": "2021-12-05T02:01:34.186Z",
    "oneOf": [{"type": "integer", "description": "epoch-second", "example": 1640995200},
              {"type": "string", "format": "date-time", "example": "2022-01-01T00:00:00.000Z"},
              {"type": "string", "enum": ["infinity"]}]}
ExpiredAt = Annotated[Any, WithJsonSchema(_EXPIRED_AT_SCHEMA)]


async def _run(fn, *args, **kwargs):
    """Admin operations hash passwords (slow on purpose): keep them off the event loop."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except admin.AdminError as e:
        raise ApiError(e.status, e.code, e.message) from None


def _ctx(request: Request):
    return request.app.state.ctx


# -- models -----------------------------------------------------------------------------------

class LoginBody(BaseModel):
    username: Username
    password: Password


class License(BaseModel):
    edition: str = Field(description="EMQX License. opensource or enterprise",
                         examples=["opensource"])


class LoginResult(BaseModel):
    token: str = Field(description="Dashboard Auth Token")
    version: str = Field(description="EMQX Version", examples=[EMQX_VERSION])
    license: License


class LogoutBody(BaseModel):
    username: Optional[Username] = None


class User(BaseModel):
    username: Username
    description: str = Field("", description="Dashboard User Description",
                             examples=["administrator"])
    backend: str = Field("local", description="User account source", examples=["local"])


class UserCreate(BaseModel):
    username: Username
    password: Password
    description: str = Field("", description="Dashboard User Description",
                             examples=["administrator"])


class UserUpdate(BaseModel):
    description: str = Field(description="Dashboard User Description", examples=["administrator"])


class ChangePwd(BaseModel):
    old_pwd: str = Field(description="Old password")
    new_pwd: str = Field(description="New password")


class _ExpiryMixin(BaseModel):
    @field_validator("expired_at", check_fields=False)
    @classmethod
    def _expiry(cls, v):
        return parse_expiry(v)


class ApiKeyCreate(_ExpiryMixin):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=256,
                      description="Unique and format by [a-zA-Z0-9-_]",
                      examples=["EMQX-API-KEY-1"])
    expired_at: ExpiredAt = Field("infinity", validate_default=True)
    desc: str = Field("", examples=["Note"])
    enable: bool = Field(True, description="Enable/Disable")


class ApiKeyUpdate(_ExpiryMixin):
    model_config = ConfigDict(extra="ignore")
    expired_at: ExpiredAt = None
    desc: Optional[str] = Field(None, examples=["Note"])
    enable: Optional[bool] = Field(None, description="Enable/Disable")


class _KeyId(BaseModel):
    api_key: str = Field(examples=["a4697a5c75a769f6"])


class _KeySecret(BaseModel):
    api_secret: str = Field(description="Returned only once, when the key is created",
                            examples=["LECuyY4VAnndsYRkjtWO2vFTi80FvohmhVgOeNeorMN"])


class _KeyInfo(BaseModel):
    created_at: str = Field(description="ApiKey create datetime (RFC 3339)",
                            examples=["2022-06-21T22:28:23+02:00"])
    desc: str = Field(examples=["Note"])
    enable: bool
    expired: bool
    expired_at: str = Field(description="RFC 3339 date-time, or \"infinity\"",
                            examples=["2022-12-05T03:01:34+01:00"])
    name: str = Field(examples=["EMQX-API-KEY-1"])


# Fields come from the last base first: api_key, then api_secret (the seed's order), then info.
class ApiKey(_KeyInfo, _KeyId):
    pass


class ApiKeyWithSecret(_KeyInfo, _KeySecret, _KeyId):
    pass


# -- login ------------------------------------------------------------------------------------

@public.post("/login", summary="Dashboard authentication",
             description="Get a bearer token for a dashboard user.", response_model=LoginResult,
             responses=error_responses({400: ["BAD_REQUEST"],
                                        401: ["WRONG_USERNAME_OR_PWD", "LOGIN_LOCKED"]}))
async def login(body: LoginBody, request: Request):
    ctx = _ctx(request)
    if ctx.login_lock.locked(body.username):
        raise ApiError(401, "LOGIN_LOCKED", "Login locked after too many failed attempts; "
                                            "try again later")
    ok = await asyncio.to_thread(admin.check_user_password, ctx.store, body.username,
                                 body.password)
    if not ok:
        ctx.login_lock.failed(body.username)
        raise ApiError(401, "WRONG_USERNAME_OR_PWD", "Auth failed: wrong username or password")
    ctx.login_lock.succeeded(body.username)
    token = await asyncio.to_thread(admin.sign_token, ctx.store, body.username, ctx.token_ttl)
    return {"token": token, "version": ctx.version, "license": {"edition": "opensource"}}


@users.post("/logout", summary="Dashboard user logout", status_code=204,
            description="Ends the session of the bearer token in the Authorization header. "
                        "Only for bearer tokens from /login, not API keys.",
            responses=error_responses({401: USER_ONLY_401_CODES + ["WRONG_TOKEN_OR_USERNAME"]}))
async def logout(request: Request, body: Optional[LogoutBody] = None,
                 actor: Actor = Depends(dashboard_user)):
    if actor.token_jti is None:
        raise ApiError(401, "AUTHORIZATION_HEADER_ERROR",
                       "Logout needs the bearer token from POST /api/v5/login")
    if body is not None and body.username is not None and body.username != actor.name:
        raise ApiError(401, "WRONG_TOKEN_OR_USERNAME", "Ensure your token & username")
    await asyncio.to_thread(admin.destroy_token, _ctx(request).store, actor.token_jti)
    return Response(status_code=204)


# -- users ------------------------------------------------------------------------------------

@users.get("/users", summary="Dashboard list users", response_model=list[User])
async def list_users(request: Request):
    return await _run(admin.list_users, _ctx(request).store)


@users.post("/users", summary="Create dashboard user", response_model=User,
            responses=error_responses({400: ["BAD_REQUEST"], 409: ["ALREADY_EXISTS"]}))
async def create_user(body: UserCreate, request: Request):
    return await _run(admin.add_user, _ctx(request).store, body.username, body.password,
                      body.description)


@users.put("/users/{username}", summary="Update dashboard user description", response_model=User,
           responses=error_responses({400: ["BAD_REQUEST"], 404: ["USER_NOT_FOUND"]}))
async def update_user(username: UsernameInPath, body: UserUpdate, request: Request):
    return await _run(admin.update_user, _ctx(request).store, username, body.description)


@users.delete("/users/{username}", summary="Delete dashboard user", status_code=204,
              responses=error_responses({400: ["NOT_ALLOWED"], 404: ["USER_NOT_FOUND"]}))
async def delete_user(username: UsernameInPath, request: Request,
                      actor: Actor = Depends(dashboard_user)):
    if actor.name == username:
        raise ApiError(400, "NOT_ALLOWED", "Cannot delete self")
    await _run(admin.delete_user, _ctx(request).store, username)
    return Response(status_code=204)


@users.post("/users/{username}/change_pwd", summary="Change dashboard user password",
            status_code=204,
            description="Changes the password (the old one must be given) and ends every "
                        "session of that user.",
            responses=error_responses({400: ["BAD_REQUEST", "ERROR_PWD_NOT_MATCH"],
                                       404: ["USER_NOT_FOUND"]}))
async def change_pwd(username: UsernameInPath, body: ChangePwd, request: Request):
    if not body.old_pwd or not body.new_pwd:
        raise ApiError(400, "BAD_REQUEST", "Old password or new password undefined")
    await _run(admin.change_password, _ctx(request).store, username, body.old_pwd, body.new_pwd)
    return Response(status_code=204)


# -- API keys ---------------------------------------------------------------------------------

_KEY_DESC = " This API can only be requested by a dashboard user, not with an API key."


@keys.get("/api_key", summary="Return api_key list", description="All API keys." + _KEY_DESC,
          response_model=list[ApiKey])
async def list_api_keys(request: Request):
    return await _run(admin.list_api_keys, _ctx(request).store)


@keys.post("/api_key", summary="Create new api_key",
           description="Creates an API key; the response carries its api_secret, which is "
                       "never shown again." + _KEY_DESC,
           response_model=ApiKeyWithSecret,
           responses=error_responses({400: ["BAD_REQUEST"],
                                      409: ["ALREADY_EXISTS", "EXCEED_LIMIT"]}))
async def create_api_key(body: ApiKeyCreate, request: Request):
    return await _run(admin.create_api_key, _ctx(request).store, body.name,
                      expired_at=body.expired_at, desc=body.desc, enable=body.enable)


@keys.get("/api_key/{name}", summary="Return the specific api_key",
          description="One API key (without its secret)." + _KEY_DESC, response_model=ApiKey,
          responses=error_responses({400: ["BAD_REQUEST"], 404: ["NOT_FOUND"]}))
async def get_api_key(name: KeyName, request: Request):
    row = await _run(admin.get_api_key, _ctx(request).store, name)
    if row is None:
        raise ApiError(404, "NOT_FOUND", "Name NOT FOUND")
    return admin.api_key_view(row)


@keys.put("/api_key/{name}", summary="Update the specific api_key",
          description="Changes enable and/or desc (left out: unchanged) and expired_at "
                      "(left out: \"infinity\")." + _KEY_DESC,
          response_model=ApiKey,
          responses=error_responses({400: ["BAD_REQUEST"], 404: ["NOT_FOUND"]}))
async def update_api_key(name: KeyName, body: ApiKeyUpdate, request: Request):
    # Left out, expired_at becomes "infinity" (EMQX's ensure_expired_at), unlike desc and enable.
    changes: dict = {"expired_at": body.expired_at}
    if body.desc is not None:
        changes["desc"] = body.desc
    if body.enable is not None:
        changes["enable"] = body.enable
    return await _run(admin.update_api_key, _ctx(request).store, name, **changes)


@keys.delete("/api_key/{name}", summary="Delete the specific api_key", status_code=204,
             description="Deletes an API key." + _KEY_DESC,
             responses=error_responses({400: ["BAD_REQUEST"], 404: ["NOT_FOUND"]}))
async def delete_api_key(name: KeyName, request: Request):
    await _run(admin.delete_api_key, _ctx(request).store, name)
    return Response(status_code=204)


router = APIRouter()
router.include_router(public)
router.include_router(users)
router.include_router(keys)
