"""REST API of data integration: /connectors*, /actions*, /action_types, /sources*,
/source_types, the probes and the per-node operations (EMQX's emqx_connector_api and emqx_bridge_v2_api), for the types built."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.responses import JSONResponse

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_body, error_responses
from emqpy.api.openapi import model_schema, one_of
from emqpy.config.bridges import (ACTION_MODELS, ACTION_TYPES, CONNECTOR_MODELS, CONNECTOR_TYPES,
                                  SOURCE_MODELS, SOURCE_TYPES)
from emqpy.config.secrets import mask_secrets

from .metrics import metrics_answer
from .service import AlreadyExists, Disabled, InUse, Invalid, NotFound, clean_body, parse_id

router = APIRouter(tags=["Connectors", "Actions"], dependencies=[Depends(authenticated)],
                   responses={**AUTH_RESPONSES,
                              **error_responses({503: ["SERVICE_UNAVAILABLE"]})})
Operation = Literal["start"]


class _OperationConvertor(StringConvertor):
    # `/actions/{id}/{operation}` must not catch `/actions/{id}/metrics` (or `enable`, or
    # emqpy's `dead_letters`): a method those paths do not have is answered 405 there, as
    # EMQX does
    regex = "(?!(?:metrics|enable|dead_letters)$)[^/]+"


register_url_convertor("bridge_operation", _OperationConvertor())

E400 = error_responses({400: ["BAD_REQUEST"]})
E404 = error_responses({404: ["NOT_FOUND"]})
E400_404 = error_responses({400: ["BAD_REQUEST"], 404: ["NOT_FOUND"]})
E_CREATE = error_responses({400: ["ALREADY_EXISTS", "BAD_REQUEST"]})
E_PROBE = error_responses({400: ["TEST_FAILED", "BAD_REQUEST"]})


def _schema(model) -> dict:
    """The model's JSON schema; the config's Int() bounds shown as JSON Schema bounds."""
    def walk(node):
        if isinstance(node, list):
            return [walk(x) for x in node]
        if not isinstance(node, dict):
            return node
        names = {"ge": "minimum", "le": "maximum"} if node.get("type") == "integer" else {}
        return {names.get(k, k): walk(v) for k, v in node.items()}
    return walk(model_schema(model))


def _typed(model, etype: str, with_name: bool) -> dict:
    schema = _schema(model)
    props = {"type": {"type": "string", "enum": [etype]}}
    if with_name:
        props["name"] = {"type": "string", "example": f"my_{etype}"}
    schema["properties"] = {**props, **schema.get("properties", {})}
    schema["required"] = [*props, *schema.get("required", [])]
    schema.pop("additionalProperties", None)
    return schema


# EMQX's schema names per type (its namespaces differ by type)
_CONNECTOR_NS = {"http": "bridge_http", "mqtt": "connector_mqtt"}
_ACTION_NS = {"http": "bridge_http", "mqtt": "bridge_mqtt_publisher"}
_CONNECTOR_POST = one_of({f"{_CONNECTOR_NS[t]}.post_connector":
                          _typed(CONNECTOR_MODELS[t], t, True) for t in CONNECTOR_TYPES})
_CONNECTOR_PUT = one_of({f"{_CONNECTOR_NS[t]}.put_connector": _schema(CONNECTOR_MODELS[t])
                         for t in CONNECTOR_TYPES})
_ACTION_POST = one_of({f"{_ACTION_NS[t]}.post_bridge_v2": _typed(ACTION_MODELS[t], t, True)
                       for t in ACTION_TYPES})
_ACTION_PUT = one_of({f"{_ACTION_NS[t]}.put_bridge_v2": _schema(ACTION_MODELS[t])
                      for t in ACTION_TYPES})
_SOURCE_NS = {"mqtt": "bridge_mqtt_publisher"}
_SOURCE_POST = one_of({f"{_SOURCE_NS[t]}.post_source": _typed(SOURCE_MODELS[t], t, True)
                       for t in SOURCE_TYPES})
_SOURCE_PUT = one_of({f"{_SOURCE_NS[t]}.put_source": _schema(SOURCE_MODELS[t])
                      for t in SOURCE_TYPES})


def _svc(request: Request):
    svc = request.app.state.ctx.broker.bridges
    if svc is None:
        raise ApiError(503, "SERVICE_UNAVAILABLE", "data integration is not running")
    return svc


def _bad(e: Exception) -> ApiError:
    return ApiError(400, "BAD_REQUEST", str(e))


def _not_found(e: Exception) -> ApiError:
    return ApiError(404, "NOT_FOUND", str(e))


def _type_and_name(body: Any) -> tuple[str, str, dict]:
    if not isinstance(body, dict) or not isinstance(body.get("type"), str) \
            or not isinstance(body.get("name"), str):
        raise ApiError(400, "BAD_REQUEST", "the body needs `type` and `name` (strings)")
    return body["type"], body["name"], clean_body(body)


def _node(request: Request, node: str) -> None:
    if node != request.app.state.ctx.broker.node_name:
        raise ApiError(404, "NOT_FOUND", f"Invalid node name: {node}")


# -- views ----------------------------------------------------------------------------------

def _connector_view(svc, conn, shown: dict | None = None) -> dict:
    """`shown`: the root as the API shows it, when the caller has it (lists dump it once)."""
    raw = ((shown.get(conn.type) or {}).get(conn.name) or {}) if shown is not None else \
        svc.shown_entry("connectors", conn.type, conn.name)
    node = {"node": svc.node, "status": conn.status}
    out = {**raw, "type": conn.type, "name": conn.name, "status": conn.status,
           "node_status": [node]}
    if conn.reason:
        node["status_reason"] = out["status_reason"] = conn.reason
    out["actions"] = sorted(a.name for a in svc.actions.values() if a.connector_id == conn.id)
    out["sources"] = sorted(s.name for s in svc.sources.values() if s.connector_id == conn.id)
    return mask_secrets(out)


def _action_view(svc, a, shown: dict | None = None) -> dict:
    raw = ((shown.get(a.type) or {}).get(a.name) or {}) if shown is not None else \
        svc.shown_entry("actions", a.type, a.name)
    status, error = svc.action_status(a)
    node = {"node": svc.node, "status": status, "status_reason": error}
    return mask_secrets({**raw, "type": a.type, "name": a.name, "status": status,
                         "error": error, "status_reason": error, "node_status": [node],
                         "rules": sorted(svc.rule_ids(a.id))})


def _metrics(svc, a) -> dict:
    w = a.worker
    return a.metrics.view(w.queuing if w else 0, w.inflight if w else 0)


# -- connectors -----------------------------------------------------------------------------

@router.get("/connectors", tags=["Connectors"], summary="List connectors")
async def list_connectors(request: Request) -> list[dict[str, Any]]:
    svc = _svc(request)
    shown = svc.broker.config.dump("connectors")
    return [_connector_view(svc, c, shown) for c in svc.connectors.values()]


@router.post("/connectors", tags=["Connectors"], status_code=201, responses=E_CREATE,
             openapi_extra=_CONNECTOR_POST, summary="Create connector")
async def create_connector(request: Request, body: Annotated[Any, Body()]) -> dict[str, Any]:
    svc = _svc(request)
    ctype, name, conf = _type_and_name(body)
    try:
        conn = await svc.create_connector(ctype, name, conf)
    except AlreadyExists as e:
        raise ApiError(400, "ALREADY_EXISTS", str(e)) from None
    except Invalid as e:
        raise _bad(e) from None
    return _connector_view(svc, conn)


@router.get("/connectors/{id}", tags=["Connectors"], responses=E404, summary="Get connector")
async def get_connector(request: Request, id: str) -> dict[str, Any]:
    svc = _svc(request)
    try:
        return _connector_view(svc, svc.connector(*parse_id(id, CONNECTOR_TYPES, "connector")))
    except NotFound as e:
        raise _not_found(e) from None


@router.put("/connectors/{id}", tags=["Connectors"], responses=E400_404,
            openapi_extra=_CONNECTOR_PUT, summary="Update connector")
async def update_connector(request: Request, id: str,
                           body: Annotated[Any, Body()]) -> dict[str, Any]:
    svc = _svc(request)
    try:
        ctype, name = parse_id(id, CONNECTOR_TYPES, "connector")
        conn = await svc.update_connector(ctype, name, clean_body(body))
    except NotFound as e:
        raise _not_found(e) from None
    except Invalid as e:
        raise _bad(e) from None
    return _connector_view(svc, conn)


@router.delete("/connectors/{id}", tags=["Connectors"], status_code=204, responses=E400_404,
               summary="Delete connector")
async def delete_connector(request: Request, id: str) -> Response:
    svc = _svc(request)
    try:
        await svc.delete_connector(*parse_id(id, CONNECTOR_TYPES, "connector"))
    except NotFound as e:
        raise _not_found(e) from None
    except InUse as e:
        # EMQX prints the reason as an Erlang term: {<<"...">>,[<<"channel id">>,...]}
        channels = ",".join(f'<<"{c}">>' for c in e.ids)
        raise ApiError(400, "BAD_REQUEST", f'{{<<"{e}">>,[{channels}]}}') from None
    return Response(status_code=204)


@router.put("/connectors/{id}/enable/{enable}", tags=["Connectors"], status_code=204,
            responses=E404, summary="Enable or disable connector")
async def enable_connector(request: Request, id: str, enable: bool) -> Response:
    svc = _svc(request)
    try:
        await svc.enable_connector(*parse_id(id, CONNECTOR_TYPES, "connector"), enable)
    except NotFound as e:
        raise _not_found(e) from None
    except Invalid as e:
        raise _bad(e) from None
    return Response(status_code=204)


async def _connector_operation(svc, id: str) -> Response:
    try:
        await svc.start_connector(*parse_id(id, CONNECTOR_TYPES, "connector"))
    except NotFound as e:
        raise _not_found(e) from None
    except Disabled as e:
        raise _bad(e) from None
    return Response(status_code=204)


@router.post("/connectors/{id}/{operation:bridge_operation}", tags=["Connectors"], status_code=204,
             responses=E400_404, summary="Manually start a connector")
async def connector_operation(request: Request, id: str, operation: Operation) -> Response:
    return await _connector_operation(_svc(request), id)


@router.post("/nodes/{node}/connectors/{id}/{operation:bridge_operation}", tags=["Connectors"], status_code=204,
             responses=E400_404, summary="Manually start a connector on a given node")
async def node_connector_operation(request: Request, node: str, id: str,
                                   operation: Operation) -> Response:
    _node(request, node)
    return await _connector_operation(_svc(request), id)


@router.post("/connectors_probe", tags=["Connectors"], status_code=204, responses=E_PROBE,
             openapi_extra=_CONNECTOR_POST, summary="Test creating connector")
async def probe_connector(request: Request, body: Annotated[Any, Body()]) -> Response:
    svc = _svc(request)
    ctype, name, conf = _type_and_name(body)
    try:
        await svc.probe_connector(ctype, {**conf, "name": name})
    except Invalid as e:
        raise ApiError(400, "TEST_FAILED", str(e)) from None
    return Response(status_code=204)


# -- actions --------------------------------------------------------------------------------

@router.get("/actions", tags=["Actions"], summary="List bridges")
async def list_actions(request: Request) -> list[dict[str, Any]]:
    svc = _svc(request)
    shown = svc.broker.config.dump("actions")
    return [_action_view(svc, a, shown) for a in svc.actions.values()]


@router.post("/actions", tags=["Actions"], status_code=201, responses=E_CREATE,
             openapi_extra=_ACTION_POST, summary="Create bridge")
async def create_action(request: Request, body: Annotated[Any, Body()]) -> dict[str, Any]:
    svc = _svc(request)
    atype, name, conf = _type_and_name(body)
    try:
        a = await svc.create_action(atype, name, conf)
    except AlreadyExists as e:
        raise ApiError(400, "ALREADY_EXISTS", str(e)) from None
    except Invalid as e:
        raise _bad(e) from None
    return _action_view(svc, a)


def _action(svc, id: str):
    try:
        return svc.action(*parse_id(id, ACTION_TYPES))
    except NotFound as e:
        raise _not_found(e) from None


@router.get("/actions/{id}", tags=["Actions"], responses=E404, summary="Get bridge")
async def get_action(request: Request, id: str) -> dict[str, Any]:
    svc = _svc(request)
    return _action_view(svc, _action(svc, id))


@router.put("/actions/{id}", tags=["Actions"], responses=E400_404, openapi_extra=_ACTION_PUT,
            summary="Update bridge")
async def update_action(request: Request, id: str, body: Annotated[Any, Body()]) -> dict:
    svc = _svc(request)
    a = _action(svc, id)
    try:
        a = await svc.update_action(a.type, a.name, clean_body(body))
    except NotFound as e:
        raise _not_found(e) from None
    except Invalid as e:
        raise _bad(e) from None
    return _action_view(svc, a)


@router.delete("/actions/{id}", tags=["Actions"], status_code=204, responses=E400_404,
               summary="Delete bridge")
async def delete_action(request: Request, id: str,
                        also_delete_dep_actions: bool = Query(False)) -> Response:
    svc = _svc(request)
    a = _action(svc, id)
    try:
        await svc.delete_action(a.type, a.name, also_delete_dep_actions)
    except NotFound as e:
        raise _not_found(e) from None
    except InUse as e:
        return JSONResponse({**error_body("BAD_REQUEST", str(e)), "rules": e.ids},
                            status_code=400)
    return Response(status_code=204)


@router.get("/actions/{id}/metrics", tags=["Actions"], responses=E404,
            summary="Get bridge metrics")
async def action_metrics(request: Request, id: str) -> dict[str, Any]:
    svc = _svc(request)
    return metrics_answer(svc.node, _metrics(svc, _action(svc, id)))


@router.put("/actions/{id}/metrics/reset", tags=["Actions"], status_code=204, responses=E404,
            summary="Reset bridge metrics")
async def reset_action_metrics(request: Request, id: str) -> Response:
    svc = _svc(request)
    a = _action(svc, id)
    svc.reset_metrics(a.type, a.name)
    return Response(status_code=204)


@router.put("/actions/{id}/enable/{enable}", tags=["Actions"], status_code=204, responses=E404,
            summary="Enable or disable bridge")
async def enable_action(request: Request, id: str, enable: bool) -> Response:
    svc = _svc(request)
    a = _action(svc, id)
    try:
        await svc.enable_action(a.type, a.name, enable)
    except NotFound as e:
        raise _not_found(e) from None
    except Invalid as e:
        raise _bad(e) from None
    return Response(status_code=204)


async def _action_operation(svc, id: str) -> Response:
    a = _action(svc, id)
    try:
        await svc.start_action(a.type, a.name)
    except Disabled as e:
        raise _bad(e) from None
    return Response(status_code=204)


@router.post("/actions/{id}/{operation:bridge_operation}", tags=["Actions"], status_code=204,
             responses=E400_404, summary="Manually start a bridge")
async def action_operation(request: Request, id: str, operation: Operation) -> Response:
    return await _action_operation(_svc(request), id)


@router.post("/nodes/{node}/actions/{id}/{operation:bridge_operation}", tags=["Actions"], status_code=204,
             responses=E400_404, summary="Manually start a bridge on a given node")
async def node_action_operation(request: Request, node: str, id: str,
                                operation: Operation) -> Response:
    _node(request, node)
    return await _action_operation(_svc(request), id)


@router.post("/actions_probe", tags=["Actions"], status_code=204, responses=E_PROBE,
             openapi_extra=_ACTION_POST, summary="Test creating bridge")
async def probe_action(request: Request, body: Annotated[Any, Body()]) -> Response:
    svc = _svc(request)
    atype, name, conf = _type_and_name(body)
    try:
        await svc.probe_action(atype, {**conf, "name": name})
    except Invalid as e:
        raise ApiError(400, "TEST_FAILED", str(e)) from None
    return Response(status_code=204)


@router.get("/action_types", tags=["Actions"], summary="List available action types")
async def action_types() -> list[Literal[ACTION_TYPES]]:
    return list(ACTION_TYPES)


# -- sources --------------------------------------------------------------------------------

def _source_view(svc, src, shown: dict | None = None) -> dict:
    raw = ((shown.get(src.type) or {}).get(src.name) or {}) if shown is not None else \
        svc.shown_entry("sources", src.type, src.name)
    status, error = svc.source_status(src)
    node = {"node": svc.node, "status": status, "status_reason": error}
    return mask_secrets({**raw, "type": src.type, "name": src.name, "status": status,
                         "error": error, "status_reason": error, "node_status": [node],
                         "rules": svc.source_rule_ids(src)})


def _source(svc, id: str):
    try:
        return svc.source(*parse_id(id, SOURCE_TYPES))
    except NotFound as e:
        raise _not_found(e) from None


@router.get("/sources", tags=["Sources"], summary="List sources")
async def list_sources(request: Request) -> list[dict[str, Any]]:
    svc = _svc(request)
    shown = svc.broker.config.dump("sources")
    return [_source_view(svc, src, shown) for src in svc.sources.values()]


@router.post("/sources", tags=["Sources"], status_code=201, responses=E_CREATE,
             openapi_extra=_SOURCE_POST, summary="Create source")
async def create_source(request: Request, body: Annotated[Any, Body()]) -> dict[str, Any]:
    svc = _svc(request)
    stype, name, conf = _type_and_name(body)
    try:
        src = await svc.create_source(stype, name, conf)
    except AlreadyExists as e:
        raise ApiError(400, "ALREADY_EXISTS", str(e)) from None
    except Invalid as e:
        raise _bad(e) from None
    return _source_view(svc, src)


@router.get("/sources/{id}", tags=["Sources"], responses=E404, summary="Get source")
async def get_source(request: Request, id: str) -> dict[str, Any]:
    svc = _svc(request)
    return _source_view(svc, _source(svc, id))


@router.put("/sources/{id}", tags=["Sources"], responses=E400_404, openapi_extra=_SOURCE_PUT,
            summary="Update source")
async def update_source(request: Request, id: str, body: Annotated[Any, Body()]) -> dict:
    svc = _svc(request)
    src = _source(svc, id)
    try:
        src = await svc.update_source(src.type, src.name, clean_body(body))
    except NotFound as e:
        raise _not_found(e) from None
    except Invalid as e:
        raise _bad(e) from None
    return _source_view(svc, src)


@router.delete("/sources/{id}", tags=["Sources"], status_code=204, responses=E400_404,
               summary="Delete source")
async def delete_source(request: Request, id: str,
                        also_delete_dep_actions: bool = Query(False)) -> Response:
    svc = _svc(request)
    src = _source(svc, id)
    rules = svc.source_rule_ids(src)
    if rules and not also_delete_dep_actions:
        return JSONResponse({**error_body(
            "BAD_REQUEST", "Cannot delete source while active rules are depending on it"),
            "rules": rules}, status_code=400)
    try:
        await svc.delete_source(src.type, src.name)
    except NotFound as e:
        raise _not_found(e) from None
    return Response(status_code=204)


@router.get("/sources/{id}/metrics", tags=["Sources"], responses=E404,
            summary="Get source metrics")
async def source_metrics(request: Request, id: str) -> dict[str, Any]:
    svc = _svc(request)
    return metrics_answer(svc.node, _source(svc, id).metrics.view())


@router.put("/sources/{id}/metrics/reset", tags=["Sources"], status_code=204, responses=E404,
            summary="Reset source metrics")
async def reset_source_metrics(request: Request, id: str) -> Response:
    _source(_svc(request), id).metrics.reset()
    return Response(status_code=204)


@router.put("/sources/{id}/enable/{enable}", tags=["Sources"], status_code=204, responses=E404,
            summary="Enable or disable bridge")
async def enable_source(request: Request, id: str, enable: bool) -> Response:
    svc = _svc(request)
    src = _source(svc, id)
    try:
        await svc.enable_source(src.type, src.name, enable)
    except NotFound as e:
        raise _not_found(e) from None
    except Invalid as e:
        raise _bad(e) from None
    return Response(status_code=204)


async def _source_operation(svc, id: str) -> Response:
    src = _source(svc, id)
    try:
        await svc.start_source(src.type, src.name)
    except Disabled as e:
        raise _bad(e) from None
    return Response(status_code=204)


@router.post("/sources/{id}/{operation:bridge_operation}", tags=["Sources"], status_code=204,
             responses=E400_404, summary="Manually start a bridge")
async def source_operation(request: Request, id: str, operation: Operation) -> Response:
    return await _source_operation(_svc(request), id)


@router.post("/nodes/{node}/sources/{id}/{operation:bridge_operation}", tags=["Sources"],
             status_code=204, responses=E400_404,
             summary="Manually start a bridge on a given node")
async def node_source_operation(request: Request, node: str, id: str,
                                operation: Operation) -> Response:
    _node(request, node)
    return await _source_operation(_svc(request), id)


@router.post("/sources_probe", tags=["Sources"], status_code=204, responses=E_PROBE,
             openapi_extra=_SOURCE_POST, summary="Test creating bridge")
async def probe_source(request: Request, body: Annotated[Any, Body()]) -> Response:
    svc = _svc(request)
    stype, name, conf = _type_and_name(body)
    try:
        await svc.probe_source(stype, {**conf, "name": name})
    except Invalid as e:
        raise ApiError(400, "TEST_FAILED", str(e)) from None
    return Response(status_code=204)


@router.get("/source_types", tags=["Sources"], summary="List available source types")
async def source_types() -> list[Literal[SOURCE_TYPES]]:
    return list(SOURCE_TYPES)
