"""REST API of telemetry (EMQX's "Telemetry" tag): ``/telemetry/status`` (always disabled:
emqpy never sends telemetry, so it cannot be enabled) and ``/telemetry/data`` (what EMQX would
report)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.telemetry import data

router = APIRouter(tags=["Telemetry"], dependencies=[Depends(authenticated)],
                   responses=AUTH_RESPONSES)


class Status(BaseModel):
    model_config = ConfigDict(extra="ignore")
    enable: bool = Field(True, description="Enable telemetry", examples=[False])


@router.get("/telemetry/status", description="Get telemetry status", response_model=Status)
async def get_status():
    return {"enable": False}


@router.put("/telemetry/status", description="Enable or disable telemetry",
            response_model=Status, responses=error_responses({400: ["BAD_REQUEST"]}))
async def put_status(body: Status):
    if not body.enable:  # EMQX's answer to disabling what is disabled
        raise ApiError(400, "BAD_REQUEST", "Telemetry status is already disabled")
    raise ApiError(400, "BAD_REQUEST", "Telemetry cannot be enabled: emqpy never sends "
                                       "telemetry (GET /telemetry/data shows what EMQX "
                                       "would report)")


_DATA_SCHEMA = {"type": "object", "properties": {
    k: {"type": t} for k, t in (
        ("emqx_version", "string"), ("license", "object"), ("os_name", "string"),
        ("os_version", "string"), ("otp_version", "string"), ("up_time", "integer"),
        ("uuid", "string"), ("nodes_uuid", "array"), ("active_plugins", "array"),
        ("num_clients", "integer"), ("messages_received", "integer"),
        ("messages_sent", "integer"))}}


@router.get("/telemetry/data", description="Get telemetry data",
            responses={200: {"description": "What EMQX's telemetry would report (emqpy sends "
                                            "nothing)",
                             "content": {"application/json": {"schema": _DATA_SCHEMA}}}})
async def get_data(request: Request):
    return await data.report(request.app.state.ctx.broker)
