"""GET /prometheus/stats (Prometheus text format, or EMQX's JSON with
``Accept: application/json``) and GET/PUT /prometheus (the ``prometheus`` config root).
As in EMQX, the scrape endpoint needs no authentication unless
``prometheus.enable_basic_auth`` is true."""
from __future__ import annotations

import asyncio
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.api.openapi import model_schema
from emqpy.config import ConfigError, save_cluster_override, update_root
from emqpy.prometheus import collector, config

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
    if config.current(broker.config)["enable_basic_auth"]:
        await authenticated(request, None, None)
    families = collector.collect(broker, mode)
    if request.headers.get("accept", "").split(";")[0].strip().lower() == "application/json":
        return JSONResponse(collector.render_json(broker, families, mode))
    text = collector.render_text(families + collector.process_families(broker))
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


_SETTING_SCHEMA = model_schema(config.RecommendSetting)
_SETTING = {"description": "The prometheus settings (always in the recommend form)",
            "content": {"application/json": {"schema": _SETTING_SCHEMA,
                                             "example": config.DEFAULTS}}}
_BODY = {"required": True, "content": {"application/json": {"schema": {"oneOf": [
    model_schema(config.LegacySetting), _SETTING_SCHEMA]}}}}


@settings.get("/prometheus", description="Get Prometheus config info",
              responses={200: _SETTING})
async def get_settings(request: Request):
    return config.current(request.app.state.ctx.broker.config)


@settings.put("/prometheus", description="Update Prometheus config",
              responses={200: _SETTING, **error_responses({400: ["BAD_REQUEST"]})},
              openapi_extra={"requestBody": _BODY})
async def put_settings(request: Request):
    broker = request.app.state.ctx.broker
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError as e:
        raise ApiError(400, "BAD_REQUEST", f"malformed JSON body: {e}") from None
    try:
        new = config.updated(broker.config, body)
        cfg = update_root(broker.config, "prometheus", new)
    except (ValueError, ConfigError) as e:
        raise ApiError(400, "BAD_REQUEST", f"prometheus: {e}") from None
    await asyncio.to_thread(save_cluster_override, broker.data_dir, "prometheus",
                            config.current(cfg))
    broker.config = cfg
    pusher = getattr(broker, "prometheus_pusher", None)
    if pusher is not None:
        pusher.wake.set()  # pick up the new push settings now
    return config.current(cfg)


router.include_router(settings)
