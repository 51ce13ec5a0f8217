"""REST API of slow subscriptions (EMQX's emqx_slow_subs_api, tag "Slow Subscriptions")."""
from __future__ import annotations

from typing import Literal, Union

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from emqpy.api.auth import authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.config import ConfigError, config_lock, update_root

router = APIRouter(tags=["Slow Subscriptions"], dependencies=[Depends(authenticated)])


class Record(BaseModel):
    clientid: str = Field(description="Message clientid")
    node: str = Field(description="Message node name")
    topic: str = Field(description="Message topic")
    timespan: int = Field(description="Timespan for message transmission")
    last_update_time: int = Field(description="The timestamp of last update")


class Records(BaseModel):
    data: list[Record]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enable: bool = Field(False, description="Enable Slow Subscriptions")
    threshold: Union[str, int] = Field("500ms", description="Latency above which a consumer "
                                       "is recorded")
    expire_interval: Union[str, int] = Field("300s", description="Expiration time of a record "
                                             "not updated")
    top_k_num: int = Field(10, description="The maximum number of slow-subscription records, "
                           "up to a maximum of 1000.")
    stats_type: Literal["whole", "internal", "response"] = Field(
        "whole", description="Message latency calculation method")


@router.get("/slow_subscriptions", response_model=Records,
            description="View slow subs")
async def list_slow(request: Request):
    return {"data": request.app.state.ctx.broker.slow_subs.ranking()}


@router.delete("/slow_subscriptions", status_code=204, response_class=Response,
               description="Clear current data and re count slow topic")
async def clear(request: Request):
    request.app.state.ctx.broker.slow_subs.clear()
    return Response(status_code=204)


_SETTINGS = {200: {"model": Settings, "description": "The settings"}}


@router.get("/slow_subscriptions/settings", response_model=None, responses=_SETTINGS,
            description="View slow subs settings")
async def get_settings(request: Request):
    return request.app.state.ctx.broker.config.dump("slow_subs")


@router.put("/slow_subscriptions/settings", response_model=None,
            responses={**_SETTINGS, **error_responses({400: ["BAD_REQUEST"]})},
            description="Update slow subs settings")
async def put_settings(request: Request, body: Settings):
    from emqpy.mgmt.configs_api import apply

    broker = request.app.state.ctx.broker
    async with config_lock(broker):
        try:
            new = update_root(broker.config, "slow_subs", body.model_dump(exclude_unset=True))
        except ConfigError as e:
            raise ApiError(400, "BAD_REQUEST", f"Update slow subs config failed {e}") from None
        await apply(broker, new, ["slow_subs"])
    return new.dump("slow_subs")
