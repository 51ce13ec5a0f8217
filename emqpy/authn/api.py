"""REST API of the global authentication chain (EMQX's /authentication operations)."""
from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.api.openapi import model_schema, one_of
from emqpy.api.pagination import Page, page_response, sliced_page
from emqpy.authn import AlreadyExists, NotFound
from emqpy.authn.config import MODELS, ConfigInvalid
from emqpy.authn.core import authenticator_id
from emqpy.config.secrets import mask_secrets
from emqpy.connectors.api import (
    E400, E400_404, E404, E409, E503, entry, move, service, status_body,
)

router = APIRouter(tags=["Authentication"], dependencies=[Depends(authenticated)],
                   responses={**AUTH_RESPONSES, **E503})


class UserCreate(BaseModel):
    user_id: str
    password: str
    is_superuser: bool = False


class UserUpdate(BaseModel):
    password: str | None = None
    is_superuser: bool | None = None


class UserOut(BaseModel):
    user_id: str
    is_superuser: bool = False


class OrderItem(BaseModel):
    id: str = Field(examples=["password_based:built_in_database"])


# The request body of POST and PUT: one of the authenticator types, each a component named as
# EMQX names it where the type is the same (one emqpy type covers e.g. EMQX's jwt_hmac,
# jwt_public_key and jwt_jwks).
_TYPE_NAMES = {("password_based", "built_in_database"): "authn.builtin_db_api",
               ("scram", "built_in_database"): "authn.scram", ("jwt", None): "authn.jwt",
               ("password_based", "http"): "authn.http",
               ("password_based", "redis"): "authn.redis",
               ("password_based", "postgresql"): "authn.postgresql"}
_BODY = one_of({_TYPE_NAMES[key]: model_schema(model) for key, model in MODELS.items()},
               examples={"password_based:built_in_database": {"value": {
                   "mechanism": "password_based", "backend": "built_in_database",
                   "user_id_type": "username",
                   "password_hash_algorithm": {"name": "sha256", "salt_position": "suffix"}}},
                   "jwt": {"value": {"mechanism": "jwt", "algorithm": "hmac-based",
                                     "secret": "mysecret", "secret_base64_encoded": False,
                                     "use_jwks": False,
                                     "verify_claims": {"username": "${username}"}}}})


def _svc(request: Request):
    return service(request.app.state.ctx.broker.authn, "authentication")


def _view(cfg: dict) -> dict[str, Any]:
    """An authenticator as the API shows it: its id (EMQX's emqx_authn_api adds it), then its
    config with the secrets masked."""
    return {"id": authenticator_id(cfg), **mask_secrets(cfg)}


def _get(svc, aid: str):
    return entry(svc, aid, NotFound, "Authenticator not found")


def _users_of(svc, aid: str):
    a = _get(svc, aid)
    if not hasattr(a, "list_users"):
        raise ApiError(400, "BAD_REQUEST", f"Authenticator {aid} does not manage users")
    return a


@router.get("/authentication", summary="List authenticators for global authentication.")
async def list_authenticators(request: Request) -> list[dict[str, Any]]:
    return [_view(c) for c in _svc(request).configs()]


@router.post("/authentication", responses={**E400, **E409}, openapi_extra=_BODY,
             summary="Create authenticator for global authentication.")
async def create_authenticator(request: Request, body: Annotated[Any, Body()]) -> dict[str, Any]:
    try:
        cfg = await _svc(request).create(body)
    except ConfigInvalid as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    except AlreadyExists as e:
        raise ApiError(409, "ALREADY_EXISTS", f"Authenticator already exists: {e}") from None
    return _view(cfg)


@router.put("/authentication/order", status_code=204, responses=E400,
            summary="Reorder all authenticators in global authentication chain.")
async def reorder(request: Request, body: list[OrderItem]) -> Response:
    try:
        _svc(request).reorder([i.id for i in body])
    except ConfigInvalid as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    return Response(status_code=204)


@router.get("/authentication/{id}", responses=E404,
            summary="Get authenticator from global authentication chain.")
async def get_authenticator(request: Request, id: str) -> dict[str, Any]:
    return _view(_get(_svc(request), id).cfg)


@router.put("/authentication/{id}", status_code=204, responses={**E400_404, **E409},
            openapi_extra=_BODY, summary="Update authenticator from global authentication chain.")
async def update_authenticator(request: Request, id: str,
                               body: Annotated[Any, Body()]) -> Response:
    svc = _svc(request)
    _get(svc, id)
    if isinstance(body, dict) and body.get("id") == id:
        body = {k: v for k, v in body.items() if k != "id"}  # a GET answer sent back as is
    try:
        await svc.update(id, body)
    except ConfigInvalid as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    return Response(status_code=204)


@router.delete("/authentication/{id}", status_code=204, responses=E404,
               summary="Delete authenticator from global authentication chain.")
async def delete_authenticator(request: Request, id: str) -> Response:
    svc = _svc(request)
    _get(svc, id)
    await svc.delete(id)
    return Response(status_code=204)


@router.put("/authentication/{id}/position/{position}", status_code=204, responses=E400_404,
            summary="Move authenticator in global authentication chain.")
async def move_authenticator(request: Request, id: str, position: str) -> Response:
    move(_svc(request), id, position, NotFound, "Authenticator not found", ConfigInvalid)
    return Response(status_code=204)


@router.get("/authentication/{id}/status",
            responses={**E404, **error_responses({500: ["INTERNAL_ERROR"]})},
            summary="Get authenticator status from global authentication chain.")
async def authenticator_status(request: Request, id: str) -> dict[str, Any]:
    a = _get(_svc(request), id)
    status = await a.status()
    m = a.metrics.as_dict()
    return status_body(request.app.state.ctx.broker.node_name, status, m, m["total"],
                       m["success"], m["failed"], a.last_error)


# -- users of the built-in database -------------------------------------------------------------

@router.get("/authentication/{id}/users", responses=E404,
            summary="List users in authenticator in global authentication chain.")
async def list_users(request: Request, id: str, page: Page,
                     like_user_id: Annotated[str | None, Query(
                         description="Fuzzy search user_id (username or clientid).")] = None,
                     is_superuser: Annotated[bool | None, Query(
                         description="Is superuser")] = None) -> dict[str, Any]:
    a = _users_of(_svc(request), id)
    rows, total = a.list_users(page.offset, page.limit, like_user_id, is_superuser)
    return await page_response(sliced_page(rows, total, page))


@router.post("/authentication/{id}/users", status_code=201, responses={**E400_404, **E409},
             summary="Create users for authenticator in global authentication chain.")
async def create_user(request: Request, id: str, body: UserCreate) -> UserOut:
    from emqpy.authn.builtin import UserError
    a = _users_of(_svc(request), id)
    try:
        return UserOut(**a.add_user(body.user_id, body.password, body.is_superuser))
    except FileExistsError:
        raise ApiError(409, "ALREADY_EXISTS", f"User already exists: {body.user_id}") from None
    except UserError as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None


@router.get("/authentication/{id}/users/{user_id}", responses=E404,
            summary="Get user from authenticator in global authentication chain.")
async def get_user(request: Request, id: str, user_id: str) -> UserOut:
    u = _users_of(_svc(request), id).get_user(user_id)
    if u is None:
        raise ApiError(404, "NOT_FOUND", f"User not found: {user_id}")
    return UserOut(**u)


@router.put("/authentication/{id}/users/{user_id}", responses=E400_404,
            summary="Update user in authenticator in global authentication chain.")
async def update_user(request: Request, id: str, user_id: str, body: UserUpdate) -> UserOut:
    from emqpy.authn.builtin import UserError
    a = _users_of(_svc(request), id)
    try:
        u = a.update_user(user_id, body.password, body.is_superuser)
    except UserError as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    if u is None:
        raise ApiError(404, "NOT_FOUND", f"User not found: {user_id}")
    return UserOut(**u)


@router.delete("/authentication/{id}/users/{user_id}", status_code=204, responses=E404,
               summary="Delete user in authenticator in global authentication chain.")
async def delete_user(request: Request, id: str, user_id: str) -> Response:
    if not _users_of(_svc(request), id).delete_user(user_id):
        raise ApiError(404, "NOT_FOUND", f"User not found: {user_id}")
    return Response(status_code=204)


@router.post("/authentication/{id}/import_users", status_code=204, responses=E400_404,
             summary="Import users into authenticator in global authentication chain.")
async def import_users(request: Request, id: str,
                       type: Annotated[Literal["plain", "hash"], Query(
                           description="The import file template type, enum with "
                                       "`plain`,`hash`")]) -> Response:
    from emqpy.authn.builtin import UserError
    a = _users_of(_svc(request), id)
    ctype = request.headers.get("content-type", "")
    try:
        if ctype.startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("filename")
            if upload is None or isinstance(upload, str):
                raise UserError("a file in form field 'filename' is required")
            a.import_users(type, upload.filename, await upload.read())
        else:
            try:
                data = json.loads(await request.body())
            except ValueError as e:
                raise UserError(f"malformed JSON body: {e}") from None
            if not isinstance(data, list):
                raise UserError("a JSON list of users is expected")
            a.import_users(type, None, data)
    except UserError as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    return Response(status_code=204)
