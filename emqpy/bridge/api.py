"""REST API of data integration: /connectors*, /actions*, /action_types, /sources*,
/source_types, the probes and the per-node operations (EMQX's emqx_connector_api and
emqx_bridge_v2_api), for the types built. One route factory (`add_routes`) makes the routes of
each root."""
from __future__ import annotations

from typing import Annotated, Any, Callable, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from starlette.convertors import StringConvertor, register_url_convertor
from starlette.responses import JSONResponse

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_body, error_responses
from emqpy.api.openapi import model_schema, one_of
from emqpy.config.bridges import (ACTION_MODELS, ACTION_TYPES, CONNECTOR_MODELS, CONNECTOR_TYPES,
                                  SOURCE_MODELS, SOURCE_TYPES)
from emqpy.config.secrets import mask_secrets

from .kinds import Kind
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

def _shown(svc, kind: Kind, entry, shown: dict | None) -> dict:
    """`shown`: the root as the API shows it, when the caller has it (lists dump it once)."""
    if shown is None:
        return kind.shown(entry.type, entry.name)
    return (shown.get(entry.type) or {}).get(entry.name) or {}


def _connector_view(svc, kind: Kind, conn, shown: dict | None = None) -> dict:
    node = {"node": svc.node, "status": conn.status}
    out = {**_shown(svc, kind, conn, shown), "type": conn.type, "name": conn.name,
           "status": conn.status, "node_status": [node]}
    if conn.reason:
        node["status_reason"] = out["status_reason"] = conn.reason
    out["actions"] = sorted(a.name for a in svc.actions.values() if a.connector_id == conn.id)
    out["sources"] = sorted(s.name for s in svc.sources.values() if s.connector_id == conn.id)
    return mask_secrets(out)


def _channel_view(svc, kind: Kind, entry, shown: dict | None = None) -> dict:
    """An action or a source."""
    status, error = kind.status(entry, kind.running(entry))
    node = {"node": svc.node, "status": status, "status_reason": error}
    return mask_secrets({**_shown(svc, kind, entry, shown), "type": entry.type,
                         "name": entry.name, "status": status, "error": error,
                         "status_reason": error, "node_status": [node],
                         "rules": kind.rules(entry)})


def _connector_in_use(e: InUse) -> Response:
    # EMQX prints the reason as an Erlang term: {<<"...">>,[<<"channel id">>,...]}
    channels = ",".join(f'<<"{c}">>' for c in e.ids)
    return JSONResponse(error_body("BAD_REQUEST", f'{{<<"{e}">>,[{channels}]}}'),
                        status_code=400)


def _rules_in_use(e: InUse) -> Response:
    return JSONResponse({**error_body("BAD_REQUEST", str(e)), "rules": e.ids}, status_code=400)


# -- the route factory ------------------------------------------------------------------------

def add_routes(router: APIRouter, root: str, tag: str, types: tuple[str, ...], view: Callable,
               post_schema: dict, put_schema: dict, noun: str, op_noun: str,
               in_use: Callable[[InUse], Response], with_metrics: bool = True,
               delete_deps: bool = True) -> None:
    """The routes of one root (`/{root}`, `/{root}/{id}`, its enable, operations, metrics,
    probe, `/nodes/{node}/{root}/...`) over `svc.kinds[root]`. `noun`/`op_noun`: the words
    of EMQX's summaries; `view(svc, kind, entry, shown=None)`: an entry as the API shows it;
    `in_use`: the answer to deleting what others use."""
    tags = [tag]

    def kind_of(request: Request) -> Kind:
        return _svc(request).kinds[root]

    def entry_of(kind: Kind, id: str):
        try:
            return kind.get(*parse_id(id, types, kind.id_what))
        except NotFound as e:
            raise _not_found(e) from None

    async def change(kind: Kind, id: str, how: Callable):
        """Run `how(type, name)` on the entry `id`: EMQX's 404 and 400 for what it raises."""
        entry = entry_of(kind, id)
        try:
            return await how(entry.type, entry.name)
        except NotFound as e:
            raise _not_found(e) from None
        except (Invalid, Disabled) as e:
            raise _bad(e) from None

    @router.get(f"/{root}", tags=tags, summary=f"List {noun}s")
    async def list_entries(request: Request) -> list[dict[str, Any]]:
        kind = kind_of(request)
        shown = kind.svc.broker.config.dump(root)
        return [view(kind.svc, kind, e, shown) for e in kind.entries.values()]

    @router.post(f"/{root}", tags=tags, status_code=201, responses=E_CREATE,
                 openapi_extra=post_schema, summary=f"Create {noun}")
    async def create_entry(request: Request, body: Annotated[Any, Body()]) -> dict[str, Any]:
        kind = kind_of(request)
        etype, name, conf = _type_and_name(body)
        try:
            entry = await kind.create(etype, name, conf)
        except AlreadyExists as e:
            raise ApiError(400, "ALREADY_EXISTS", str(e)) from None
        except Invalid as e:
            raise _bad(e) from None
        return view(kind.svc, kind, entry)

    @router.get(f"/{root}/{{id}}", tags=tags, responses=E404, summary=f"Get {noun}")
    async def get_entry(request: Request, id: str) -> dict[str, Any]:
        kind = kind_of(request)
        return view(kind.svc, kind, entry_of(kind, id))

    @router.put(f"/{root}/{{id}}", tags=tags, responses=E400_404, openapi_extra=put_schema,
                summary=f"Update {noun}")
    async def update_entry(request: Request, id: str,
                           body: Annotated[Any, Body()]) -> dict[str, Any]:
        kind = kind_of(request)
        entry = await change(kind, id, lambda t, n: kind.update(t, n, clean_body(body)))
        return view(kind.svc, kind, entry)

    async def delete(request: Request, id: str, force: bool) -> Response:
        kind = kind_of(request)
        try:
            await change(kind, id, lambda t, n: kind.delete(t, n, force))
        except InUse as e:
            return in_use(e)
        return Response(status_code=204)

    delete_summary = dict(tags=tags, status_code=204, responses=E400_404,
                          summary=f"Delete {noun}")
    if delete_deps:
        @router.delete(f"/{root}/{{id}}", **delete_summary)
        async def delete_entry(request: Request, id: str,
                               also_delete_dep_actions: bool = Query(False)) -> Response:
            return await delete(request, id, also_delete_dep_actions)
    else:
        @router.delete(f"/{root}/{{id}}", **delete_summary)
        async def delete_entry(request: Request, id: str) -> Response:
            return await delete(request, id, False)

    @router.put(f"/{root}/{{id}}/enable/{{enable}}", tags=tags, status_code=204,
                responses=E404, summary=f"Enable or disable {op_noun}")
    async def enable_entry(request: Request, id: str, enable: bool) -> Response:
        kind = kind_of(request)
        await change(kind, id, lambda t, n: kind.enable(t, n, enable))
        return Response(status_code=204)

    async def operate(request: Request, id: str) -> Response:
        kind = kind_of(request)
        await change(kind, id, kind.operate)
        return Response(status_code=204)

    @router.post(f"/{root}/{{id}}/{{operation:bridge_operation}}", tags=tags,
                 status_code=204, responses=E400_404, summary=f"Manually start a {op_noun}")
    async def operation(request: Request, id: str, operation: Operation) -> Response:
        return await operate(request, id)

    @router.post(f"/nodes/{{node}}/{root}/{{id}}/{{operation:bridge_operation}}", tags=tags,
                 status_code=204, responses=E400_404,
                 summary=f"Manually start a {op_noun} on a given node")
    async def node_operation(request: Request, node: str, id: str,
                             operation: Operation) -> Response:
        _node(request, node)
        return await operate(request, id)

    @router.post(f"/{root}_probe", tags=tags, status_code=204, responses=E_PROBE,
                 openapi_extra=post_schema, summary=f"Test creating {op_noun}")
    async def probe(request: Request, body: Annotated[Any, Body()]) -> Response:
        kind = kind_of(request)
        etype, name, conf = _type_and_name(body)
        try:
            await kind.probe(etype, {**conf, "name": name})
        except Invalid as e:
            raise ApiError(400, "TEST_FAILED", str(e)) from None
        return Response(status_code=204)

    if not with_metrics:
        return

    @router.get(f"/{root}/{{id}}/metrics", tags=tags, responses=E404,
                summary=f"Get {noun} metrics")
    async def metrics(request: Request, id: str) -> dict[str, Any]:
        kind = kind_of(request)
        return metrics_answer(kind.svc.node, kind.metrics(entry_of(kind, id)))

    @router.put(f"/{root}/{{id}}/metrics/reset", tags=tags, status_code=204, responses=E404,
                summary=f"Reset {noun} metrics")
    async def reset_metrics(request: Request, id: str) -> Response:
        entry_of(kind_of(request), id).metrics.reset()
        return Response(status_code=204)


add_routes(router, "connectors", "Connectors", CONNECTOR_TYPES, _connector_view,
           _CONNECTOR_POST, _CONNECTOR_PUT, "connector", "connector", _connector_in_use,
           with_metrics=False, delete_deps=False)
add_routes(router, "actions", "Actions", ACTION_TYPES, _channel_view, _ACTION_POST,
           _ACTION_PUT, "bridge", "bridge", _rules_in_use)
add_routes(router, "sources", "Sources", SOURCE_TYPES, _channel_view, _SOURCE_POST,
           _SOURCE_PUT, "source", "bridge", _rules_in_use)


@router.get("/action_types", tags=["Actions"], summary="List available action types")
async def action_types() -> list[Literal[ACTION_TYPES]]:
    return list(ACTION_TYPES)


@router.get("/source_types", tags=["Sources"], summary="List available source types")
async def source_types() -> list[Literal[SOURCE_TYPES]]:
    return list(SOURCE_TYPES)
