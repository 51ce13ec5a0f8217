"""GET/PUT /opentelemetry (EMQX's emqx_otel_api): the ``opentelemetry`` config root. A PUT is
merged onto the root, validated, applied at once (the metrics exporter restarts with it) and
saved to cluster.hocon."""
from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.config import ConfigError, commit, config_lock, persist, update_root
from emqpy.config.secrets import mask_secrets, unmask
from emqpy.mgmt.configs_api import root_schema
from emqpy.opentelemetry import apply

router = APIRouter(tags=["Monitor"], dependencies=[Depends(authenticated)],
                   responses=AUTH_RESPONSES)

_EXAMPLE = {"exporter": {"ssl_options": {}, "endpoint": "http://localhost:4317"},
            "metrics": {"enable": True}, "traces": {"filter": {"trace_all": False},
                                                    "enable": False},
            "logs": {"level": "warning", "enable": False}}
_CONF = {"application/json": {"schema": root_schema("opentelemetry"), "example": _EXAMPLE}}


@router.get("/opentelemetry", description="Get opentelmetry configuration",
            responses={200: {"description": "", "content": _CONF}})
async def get_config(request: Request):
    return _view(request.app.state.ctx.broker.config)


def _view(config) -> dict:
    return mask_secrets(config.dump("opentelemetry", redact=True))


@router.put("/opentelemetry", description="Update opentelmetry configuration",
            responses={200: {"description": "", "content": _CONF},
                       **error_responses({400: ["BAD_REQUEST"]})},
            openapi_extra={"requestBody": {"required": True, "content": _CONF}})
async def put_config(request: Request):
    broker = request.app.state.ctx.broker
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError as e:
        raise ApiError(400, "BAD_REQUEST", f"malformed JSON body: {e}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "BAD_REQUEST", "a JSON object is expected")
    for signal in ("traces", "logs"):
        if (body.get(signal) or {}).get("enable") is True:
            raise ApiError(400, "BAD_REQUEST", f"{signal}.enable: emqpy exports metrics "
                                               f"only, not {signal}")
    async with config_lock(broker):
        old = broker.config
        try:
            body = unmask(body, old.dump("opentelemetry", hidden=True))
            new = update_root(old, "opentelemetry", body)
        except ConfigError as e:
            raise ApiError(400, "BAD_REQUEST", str(e)) from None
        commit(broker, new)
        try:
            await apply(broker)
        except (OSError, ValueError) as e:  # the exporter cannot start: keep what ran
            commit(broker, old)
            await apply(broker)
            raise ApiError(400, "BAD_REQUEST", f"Update Config Failed: {e}") from None
        await persist(broker, "opentelemetry")
    return _view(new)
