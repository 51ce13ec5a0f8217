"""EMQX 5.8.1's v1 bridge API (emqx_bridge_api): /bridges*, /bridges_probe and the per-node
operation, over the connectors + actions/sources that v1 bridges are (v1.py)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from starlette.responses import JSONResponse

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_body, error_responses
from emqpy.api.openapi import one_of
from emqpy.config.bridges import (ActionResourceOpts, HttpActionParameters, HttpConnector,
                                  MqttConnector, name_problem)
from emqpy.config.bridges_v1 import V1_TYPES

from .api import _bad, _node, _not_found, _schema, _svc
from .errors import AlreadyExists, Disabled, InUse, Invalid, NotFound
from .metrics import metrics_answer
from .service import clean_body
from .v1 import NotCompatible, not_found

router = APIRouter(tags=["Bridges"], dependencies=[Depends(authenticated)],
                   responses={**AUTH_RESPONSES,
                              **error_responses({503: ["SERVICE_UNAVAILABLE"]})})
V1Operation = Literal["start", "stop", "restart"]

E404 = error_responses({404: ["NOT_FOUND"]})
E400_404 = error_responses({400: ["BAD_REQUEST"], 404: ["NOT_FOUND"]})
E_PUT = error_responses({400: ["ALREADY_EXISTS", "BAD_REQUEST"], 404: ["NOT_FOUND"]})
E_CREATE = error_responses({400: ["ALREADY_EXISTS", "BAD_REQUEST"]})
E_PROBE = error_responses({400: ["TEST_FAILED", "BAD_REQUEST"]})


def _v1_schema(v1: str, with_name: bool) -> dict:
    """A v1 bridge body: its connector's keys and its action's (http) or its ingress/egress
    (mqtt)."""
    if v1 == "http":
        params = _schema(HttpActionParameters)["properties"]
        schema = _schema(HttpConnector)
        extra = {**{k: v for k, v in params.items() if k not in ("path", "headers")},
                 "local_topic": {"type": "string"},
                 "resource_opts": _schema(ActionResourceOpts)}
        types = ["webhook", "http"]
    else:
        schema = _schema(MqttConnector)
        part = {"type": "object", "properties": {
            "pool_size": {"type": "integer", "minimum": 1, "default": 8},
            "remote": {"type": "object"}, "local": {"type": "object"}}}
        extra = {"ingress": part, "egress": part}
        types = ["mqtt"]
    props = {k: v for k, v in schema["properties"].items() if k != "pool_size" or v1 == "http"}
    props.update(extra)
    required = [k for k in schema.get("required", []) if k in props]
    if with_name:
        props = {"type": {"type": "string", "enum": types}, "name": {"type": "string"},
                 **props}
        required = ["type", "name", *required]
    return {"type": "object", "properties": props, "required": required}


_POST = one_of({f"bridge_{t}.post": _v1_schema(t, True) for t in ("http", "mqtt")})
_PUT = one_of({f"bridge_{t}.put": _v1_schema(t, False) for t in ("http", "mqtt")})


def _v1(request: Request):
    return _svc(request).v1


def _parse(id: str) -> tuple[str, str]:
    """`type:name` of a v1 bridge -> (v1 type, name); 404 with EMQX's "Invalid bridge ID"."""
    parts = id.split(":")
    if len(parts) != 2:
        raise ApiError(404, "NOT_FOUND", "Invalid bridge ID, should be of pattern "
                       f"{{type}}:{{name}}, but got: {id}")
    if parts[0] not in V1_TYPES:
        raise ApiError(404, "NOT_FOUND", f"Invalid bridge ID, unknown resource type: {parts[0]}")
    problem = name_problem(parts[1])
    if problem:
        raise ApiError(404, "NOT_FOUND", f"Invalid bridge ID, {problem}")
    return parts[0], parts[1]


def _lookup(v1, id: str):
    """(kind, entry) of the bridge `id`; EMQX's 404 for a bridge that is not one in v1."""
    try:
        return v1.lookup(*_parse(id))
    except NotFound as e:
        raise _not_found(e) from None
    except NotCompatible:
        raise _not_found(not_found(*_parse(id))) from None


def _rules_in_use(e: InUse) -> Response:
    return JSONResponse({**error_body("BAD_REQUEST", str(e)), "rules": e.ids}, status_code=400)


@router.get("/bridges", summary="List bridges")
async def list_bridges(request: Request) -> list[dict[str, Any]]:
    return _v1(request).list()


@router.post("/bridges", status_code=201, responses=E_CREATE, openapi_extra=_POST,
             summary="Create bridge")
async def create_bridge(request: Request, body: Annotated[Any, Body()]) -> dict[str, Any]:
    v1 = _v1(request)
    if not isinstance(body, dict) or not isinstance(body.get("type"), str) \
            or not isinstance(body.get("name"), str):
        raise ApiError(400, "BAD_REQUEST", "the body needs `type` and `name` (strings)")
    try:
        kind, entry = await v1.create(body["type"], body["name"], clean_body(body))
    except AlreadyExists as e:
        raise ApiError(400, "ALREADY_EXISTS", str(e)) from None
    except Invalid as e:
        raise _bad(e) from None
    return v1.view(kind, entry)


@router.get("/bridges/{id}", responses=E404, summary="Get bridge")
async def get_bridge(request: Request, id: str) -> dict[str, Any]:
    v1 = _v1(request)
    return v1.view(*_lookup(v1, id))


@router.put("/bridges/{id}", responses=E_PUT, openapi_extra=_PUT, summary="Update bridge")
async def update_bridge(request: Request, id: str,
                        body: Annotated[Any, Body()]) -> dict[str, Any]:
    v1 = _v1(request)
    try:
        kind, entry = await v1.update(*_parse(id), clean_body(body))
    except NotFound as e:
        raise _not_found(e) from None
    except NotCompatible as e:
        raise ApiError(400, "ALREADY_EXISTS", str(e)) from None
    except Invalid as e:
        raise _bad(e) from None
    except InUse as e:
        return _rules_in_use(e)
    return v1.view(kind, entry)


async def _change(request: Request, id: str, how) -> Response:
    """Run `how(v1, type, name)` on the bridge `id`: EMQX's 404 and 400 for what it raises."""
    try:
        await how(_v1(request), *_parse(id))
    except NotFound as e:
        raise _not_found(e) from None
    except (NotCompatible, Disabled, Invalid) as e:
        raise _bad(e) from None
    except InUse as e:
        return _rules_in_use(e)
    return Response(status_code=204)


@router.delete("/bridges/{id}", status_code=204, responses=E400_404, summary="Delete bridge")
async def delete_bridge(request: Request, id: str,
                        also_delete_dep_actions: bool = Query(False)) -> Response:
    return await _change(request, id, lambda v1, t, n: v1.delete(t, n, also_delete_dep_actions))


@router.put("/bridges/{id}/enable/{enable}", status_code=204, responses=E400_404,
            summary="Enable or disable bridge")
async def enable_bridge(request: Request, id: str, enable: bool) -> Response:
    return await _change(request, id, lambda v1, t, n: v1.enable(t, n, enable))


@router.get("/bridges/{id}/metrics", responses=E404, summary="Get bridge metrics")
async def bridge_metrics(request: Request, id: str) -> dict[str, Any]:
    v1 = _v1(request)
    kind, entry = _lookup(v1, id)
    return metrics_answer(v1.svc.node, kind.metrics(entry))


@router.put("/bridges/{id}/metrics/reset", status_code=204, responses=E404,
            summary="Reset bridge metrics")
async def reset_bridge_metrics(request: Request, id: str) -> Response:
    _kind, entry = _lookup(_v1(request), id)
    entry.metrics.reset()
    return Response(status_code=204)


@router.post("/bridges/{id}/{operation:bridge_operation}", status_code=204,
             responses=E400_404, summary="Stop or restart bridge")
async def bridge_operation(request: Request, id: str, operation: V1Operation) -> Response:
    return await _change(request, id, lambda v1, t, n: v1.operate(t, n, operation))


@router.post("/nodes/{node}/bridges/{id}/{operation:bridge_operation}", status_code=204,
             responses=E400_404, summary="Stop/restart bridge")
async def node_bridge_operation(request: Request, node: str, id: str,
                                operation: V1Operation) -> Response:
    _node(request, node)
    return await _change(request, id, lambda v1, t, n: v1.operate(t, n, operation))


@router.post("/bridges_probe", status_code=204, responses=E_PROBE, openapi_extra=_POST,
             summary="Test creating bridge")
async def probe_bridge(request: Request, body: Annotated[Any, Body()]) -> Response:
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise ApiError(400, "BAD_REQUEST", "the body needs `type` (a string)")
    conf = clean_body(body)
    if isinstance(body.get("name"), str):  # an existing bridge's masked secrets are its own
        conf["name"] = body["name"]
    try:
        await _v1(request).probe(body["type"], conf)
    except Invalid as e:
        raise ApiError(400, "TEST_FAILED", str(e)) from None
    return Response(status_code=204)

