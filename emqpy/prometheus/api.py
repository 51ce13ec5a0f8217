"""GET /prometheus/stats, /prometheus/auth and /prometheus/data_integration (Prometheus text
format, or EMQX's JSON with ``Accept: application/json``) and GET/PUT /prometheus (the
``prometheus`` config root).
As in EMQX, the scrape endpoint needs no authentication unless
``prometheus.enable_basic_auth`` is true."""
from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.api.openapi import model_schema
from emqpy.config import ConfigError, commit, config_lock, persist
from emqpy.config.features import LEGACY_KEYS, Prometheus
from emqpy.prometheus import auth, collector, config, integration

router = APIRouter(tags=["Monitor"])
settings = APIRouter(dependencies=[Depends(authenticated)],
                     responses=AUTH_RESPONSES)

Mode = Annotated[Literal["node", "all_nodes_aggregated", "all_nodes_unaggregated"], Query(
    description="Metrics format mode. `node` (default): metrics of the local node. "
                "`all_nodes_aggregated`: metrics of all nodes, summed where possible. "
                "`all_nodes_unaggregated`: metrics of all nodes, each labelled with its node.",
    examples=["node"])]

_RESPONSES = {200: {"description": "Get Prometheus Data.", "content": {
    "text/plain": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "object"}}}},
    **AUTH_RESPONSES}  # only with prometheus.enable_basic_auth


@router.get("/prometheus/stats", description="Get Prometheus Metrics", responses=_RESPONSES,
            response_class=PlainTextResponse)
async def prometheus_stats(request: Request, mode: Mode = "node"):
    broker = request.app.state.ctx.broker
    if broker.config.prometheus.enable_basic_auth:
        await authenticated(request, None, None)
    families = collector.collect(broker, mode)
    if request.headers.get("accept", "").split(";")[0].strip().lower() == "application/json":
        return JSONResponse(collector.render_json(broker, families, mode))
    text = collector.render_text(families + collector.process_families(broker))
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


def _wants_json(request: Request) -> bool:
    return request.headers.get("accept", "").split(";")[0].strip().lower() == "application/json"


def _answer(request: Request, families, as_json):
    if _wants_json(request):
        return JSONResponse(as_json)
    return PlainTextResponse(collector.render_text(families),
                             media_type="text/plain; version=0.0.4")


@router.get("/prometheus/auth",
            description="Get Prometheus Metrics for AuthN, AuthZ and Banned",
            responses=_RESPONSES, response_class=PlainTextResponse)
async def prometheus_auth(request: Request, mode: Mode = "node"):
    broker = request.app.state.ctx.broker
    if broker.config.prometheus.enable_basic_auth:
        await authenticated(request, None, None)
    return _answer(request, *await auth.collect(broker, mode))


@router.get("/prometheus/data_integration",
            description="Get Prometheus Metrics for Data Integration", responses=_RESPONSES,
            response_class=PlainTextResponse)
async def prometheus_data_integration(request: Request, mode: Mode = "node"):
    broker = request.app.state.ctx.broker
    if broker.config.prometheus.enable_basic_auth:
        await authenticated(request, None, None)
    return _answer(request, *integration.collect(broker, mode))


_SETTING_SCHEMA = model_schema(Prometheus)


def _legacy_schema() -> dict:
    """The deprecated flat form: each key documented as the recommended key it stands for."""
    props = {key: {**_SETTING_SCHEMA["properties"][section]["properties"][name],
                   "description": f"Deprecated since 5.4.0, use `prometheus.{section}.{name}`"}
             for key, (section, name) in LEGACY_KEYS.items()}
    return {"type": "object", "properties": props}


_SETTING = {"description": "The prometheus settings (always in the recommend form)",
            "content": {"application/json": {"schema": _SETTING_SCHEMA,
                                             "example": Prometheus().model_dump(mode="json")}}}
_BODY = {"required": True, "content": {"application/json": {"schema": {"oneOf": [
    _legacy_schema(), _SETTING_SCHEMA]}}}}


@settings.get("/prometheus", description="Get Prometheus config info",
              responses={200: _SETTING})
async def get_settings(request: Request):
    return request.app.state.ctx.broker.config.dump("prometheus")


@settings.put("/prometheus", description="Update Prometheus config",
              responses={200: _SETTING, **error_responses({400: ["BAD_REQUEST"]})},
              openapi_extra={"requestBody": _BODY})
async def put_settings(request: Request):
    broker = request.app.state.ctx.broker
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError as e:
        raise ApiError(400, "BAD_REQUEST", f"malformed JSON body: {e}") from None
    async with config_lock(broker):
        try:
            new = config.updated(broker.config, body)
        except ConfigError as e:
            raise ApiError(400, "BAD_REQUEST", str(e)) from None
        commit(broker, new)
        await persist(broker, "prometheus")
    pusher = broker.prometheus_pusher
    if pusher is not None:
        pusher.wake.set()  # pick up the new push settings now
    return new.dump("prometheus")


router.include_router(settings)
