"""REST API of authorization: settings, sources, built-in database rules, the cache."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.api.openapi import model_schema, one_of
from emqpy.api.pagination import Page, page_response, sliced_page
from emqpy.authz import TYPES, Invalid, NotFound
from emqpy.authz.config import MODELS as IO_MODELS
from emqpy.connectors.api import (
    E400, E400_404, E404, E409, E503, entry, move, service, status_body,
)

router = APIRouter(tags=["Authorization"], dependencies=[Depends(authenticated)],
                   responses={**AUTH_RESPONSES, **E503})
SourceType = Literal["file", "built_in_database", "http", "redis", "mysql", "postgresql",
                     "mongodb", "ldap"]
RULES = "/authorization/sources/built_in_database/rules"


class Position(BaseModel):
    position: str


class OrderItem(BaseModel):
    type: str


_ENABLE = {"type": "boolean", "default": True}
# The request body of POST and PUT: one of the source types, each a component named as EMQX
# names it where the type is the same (one emqpy type covers e.g. EMQX's http_get and http_post).
_BODY = one_of({
    "authz.api_file": {
        "type": "object", "required": ["type"], "additionalProperties": False,
        "description": "ACL rules in EMQX's file format, given as `rules` text or as the "
                       "`path` of a file on the node",
        "properties": {"type": {"type": "string", "enum": ["file"]}, "enable": _ENABLE,
                       "rules": {"type": "string",
                                 "example": '{allow, all, subscribe, ["open/#"]}.'},
                       "path": {"type": "string"}}},
    "authz.builtin_db": {
        "type": "object", "required": ["type"], "additionalProperties": False,
        "properties": {"type": {"type": "string", "enum": ["built_in_database"]},
                       "enable": _ENABLE,
                       "max_rules": {"type": "integer", "minimum": 1, "default": 100}}},
    **{f"authz.{t}": model_schema(model) for t, model in IO_MODELS.items()}})


def _svc(request: Request):
    return service(request.app.state.ctx.broker.authz, "authorization")


def _source(svc, t: str):
    return entry(svc, t, NotFound, "Not found")


def _view(src) -> dict:
    from emqpy.config.secrets import mask_secrets
    return mask_secrets(src.view() if hasattr(src, "view") else dict(src.cfg))


def _bad(e: Exception):
    return ApiError(400, "BAD_REQUEST", str(e))


# -- settings, cache --------------------------------------------------------------------------

@router.get("/authorization/settings", summary="Get authorization settings")
async def get_settings(request: Request) -> dict[str, Any]:
    return _svc(request).settings


@router.put("/authorization/settings", responses=E400, summary="Update authorization settings")
async def put_settings(request: Request, body: Annotated[dict[str, Any], Body()]) -> dict:
    try:
        return _svc(request).update_settings(body)
    except Invalid as e:
        raise _bad(e) from None


@router.delete("/authorization/cache", status_code=204, responses=E400,
               summary="Clean all authorization cache in the cluster.")
async def clean_cache(request: Request) -> Response:
    _svc(request).clean_cache()
    return Response(status_code=204)


def _client(request: Request, clientid: str):
    if clientid not in request.app.state.ctx.broker.channels:
        raise ApiError(404, "CLIENTID_NOT_FOUND", "Client ID not found")


@router.get("/clients/{clientid}/authorization/cache", tags=["Clients"],
            responses=error_responses({404: ["CLIENTID_NOT_FOUND"]}),
            summary="Get client authz cache in the cluster.")
async def client_cache(request: Request, clientid: str) -> list[dict[str, Any]]:
    _client(request, clientid)
    return _svc(request).client_cache(clientid)


@router.delete("/clients/{clientid}/authorization/cache", tags=["Clients"], status_code=204,
               responses=error_responses({404: ["CLIENTID_NOT_FOUND"]}),
               summary="Clean client authz cache in the cluster.")
async def clean_client_cache(request: Request, clientid: str) -> Response:
    _client(request, clientid)
    _svc(request).clean_cache(clientid)
    return Response(status_code=204)


# -- sources ---------------------------------------------------------------------------------

@router.get("/authorization/sources", summary="List all authorization sources")
async def list_sources(request: Request) -> dict[str, Any]:
    return {"sources": [_view(s) for s in _svc(request).sources]}


@router.post("/authorization/sources", status_code=204, responses=E400, openapi_extra=_BODY,
             summary="Add a new source")
async def add_source(request: Request, body: Annotated[Any, Body()]) -> Response:
    try:
        await _svc(request).add_source(body)
    except Invalid as e:
        raise _bad(e) from None
    return Response(status_code=204)


@router.put("/authorization/sources/order", status_code=204, responses=E400,
            summary="Reorder all authorization sources.")
async def reorder_sources(request: Request, body: list[OrderItem]) -> Response:
    try:
        _svc(request).reorder([i.type for i in body])
    except Invalid as e:
        raise _bad(e) from None
    return Response(status_code=204)


# The built-in database's rule routes come before /authorization/sources/{type} so that
# "built_in_database/rules" is never taken for a source type.

def _db(request: Request):
    svc = _svc(request)
    src = svc.find("built_in_database")
    if src is None:
        raise ApiError(404, "NOT_FOUND", "built_in_database source is not configured")
    return svc, src


def _set_rules(request, kind, who, rules, create_only=False):
    """Raises FileExistsError when `create_only` and `who` has rules already."""
    from emqpy.authz.builtin import RuleError
    svc, src = _db(request)
    try:
        src.set(kind, who, rules, create_only)
    except RuleError as e:
        raise _bad(e) from None
    svc.clean_cache()


@router.get(RULES + "/all", responses=E404, summary="Show the list of rules for 'all'")
async def get_all_rules(request: Request) -> dict[str, Any]:
    return {"rules": _db(request)[1].get("all", "") or []}


@router.post(RULES + "/all", status_code=204, responses=E400_404,
             summary="Create/Update the list of rules for 'all'.")
async def set_all_rules(request: Request, body: Annotated[dict[str, Any], Body()]) -> Response:
    _set_rules(request, "all", "", body.get("rules", []))
    return Response(status_code=204)


@router.delete(RULES + "/all", status_code=204, responses=E404,
               summary="Delete rules for 'all'")
async def delete_all_rules(request: Request) -> Response:
    svc, src = _db(request)
    src.delete("all", "")
    svc.clean_cache()
    return Response(status_code=204)


@router.delete(RULES, status_code=204, responses=E400_404,
               summary="Delete all rules for all 'users', 'clients' and 'all'")
async def delete_every_rule(request: Request) -> Response:
    svc, src = _db(request)
    src.delete_everything()
    svc.clean_cache()
    return Response(status_code=204)


def _who_routes(plural: str, kind: str, field: str):
    like = "like_" + field

    @router.get(f"{RULES}/{plural}", name=f"list_{plural}_rules", responses=E404,
                summary=f"Show the list of rules for {plural}")
    async def list_rules(request: Request, page: Page,
                         like_value: Annotated[str | None, Query(
                             alias=like, description=f"Fuzzy search `{field}` as substring"
                         )] = None) -> dict[str, Any]:
        rows, total = _db(request)[1].list(kind, page.offset, page.limit, like_value)
        return await page_response(sliced_page(rows, total, page),
                                   lambda row: {field: row[0], "rules": row[1]})

    @router.post(f"{RULES}/{plural}", status_code=204, name=f"add_{plural}_rules",
                 responses={**E400_404, **E409},
                 summary=f"Add new rule for '{field}'")
    async def add_rules(request: Request, body: Annotated[list[dict[str, Any]], Body()]
                        ) -> Response:
        from emqpy.authz.builtin import RuleError, normalise_rule
        svc, src = _db(request)
        entries = []
        for e in body:
            who = e.get(field) if isinstance(e, dict) else None
            if not isinstance(who, str) or not who:
                raise ApiError(400, "BAD_REQUEST", f"{field} is required")
            if src.get(kind, who) is not None:
                raise ApiError(409, "ALREADY_EXISTS", f"Rules for {who} already exist")
            try:
                entries.append((who, [normalise_rule(r) for r in e.get("rules", [])]))
            except RuleError as err:
                raise _bad(err) from None
        try:
            for who, rules in entries:
                _set_rules(request, kind, who, rules, create_only=True)
        except FileExistsError as e:  # the same name twice in the body
            raise ApiError(409, "ALREADY_EXISTS", f"Rules for {e} already exist") from None
        return Response(status_code=204)

    @router.get(f"{RULES}/{plural}/{{{field}}}", name=f"get_{field}_rules", responses=E404,
                summary=f"Get rule for '{field}'")
    async def get_rules(request: Request, who: str = _path(field)) -> dict[str, Any]:
        rules = _db(request)[1].get(kind, who)
        if rules is None:
            raise ApiError(404, "NOT_FOUND", f"Not found: {who}")
        return {field: who, "rules": rules}

    @router.put(f"{RULES}/{plural}/{{{field}}}", status_code=204, name=f"set_{field}_rules",
                responses=E400_404, summary=f"Set rule for '{field}'")
    async def set_rules(request: Request, body: Annotated[dict[str, Any], Body()],
                        who: str = _path(field)) -> Response:
        if body.get(field, who) != who:
            raise ApiError(400, "BAD_REQUEST", f"{field} in the body differs from the path")
        _set_rules(request, kind, who, body.get("rules", []))
        return Response(status_code=204)

    @router.delete(f"{RULES}/{plural}/{{{field}}}", status_code=204, name=f"del_{field}_rules",
                   responses=E400_404, summary=f"Delete rule for '{field}'")
    async def delete_rules(request: Request, who: str = _path(field)) -> Response:
        svc, src = _db(request)
        if not src.delete(kind, who):
            raise ApiError(404, "NOT_FOUND", f"Not found: {who}")
        svc.clean_cache()
        return Response(status_code=204)


def _path(name: str):
    from fastapi import Path
    return Path(alias=name)


_who_routes("users", "username", "username")
_who_routes("clients", "clientid", "clientid")


@router.get("/authorization/sources/{type}", responses=E404,
            summary="Get a authorization source")
async def get_source(request: Request, type: SourceType) -> dict[str, Any]:
    return _view(_source(_svc(request), type))


@router.put("/authorization/sources/{type}", status_code=204, responses=E400_404,
            openapi_extra=_BODY,
            summary="Update source")
async def update_source(request: Request, type: SourceType,
                        body: Annotated[Any, Body()]) -> Response:
    svc = _svc(request)
    _source(svc, type)  # only an existing source is updated (POST adds one), as in EMQX
    try:
        await svc.update_source(type, body)
    except Invalid as e:
        raise _bad(e) from None
    return Response(status_code=204)


@router.delete("/authorization/sources/{type}", status_code=204, responses=E400_404,
               summary="Delete source")
async def delete_source(request: Request, type: SourceType) -> Response:
    svc = _svc(request)
    _source(svc, type)
    await svc.delete_source(type)
    return Response(status_code=204)


@router.get("/authorization/sources/{type}/status", responses=E400_404,
            summary="Get a authorization source")
async def source_status(request: Request, type: SourceType) -> dict[str, Any]:
    svc = _svc(request)
    src = _source(svc, type)
    status = await src.status() if src.cfg.get("enable", True) else "disconnected"
    m = svc.metrics[type].as_dict()
    answered = m["allow"] + m["deny"]
    return status_body(request.app.state.ctx.broker.node_name, status, m, answered, answered, 0)


@router.post("/authorization/sources/{type}/move", status_code=204, responses=E400_404,
             summary="Change the exection order of sources")
async def move_source(request: Request, type: SourceType, body: Position) -> Response:
    move(_svc(request), type, body.position, NotFound, "Not found", Invalid)
    return Response(status_code=204)


assert set(TYPES) == set(SourceType.__args__)
