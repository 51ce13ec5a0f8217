"""REST API of auto subscribe (EMQX's emqx_auto_subscribe_api, tag "Auto Subscribe")."""
from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, Field

from emqpy.api.auth import authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.config import ConfigError, config_lock, update_root
from emqpy.config.modules import MAX_AUTO_SUBSCRIBE

router = APIRouter(tags=["Auto Subscribe"], dependencies=[Depends(authenticated)])


class TopicModel(BaseModel):
    topic: str = Field(description="Topic name, placeholders are supported. For example: "
                       "client/${clientid}/username/${username}/host/${host}/port/${port}",
                       examples=["/clientid/${clientid}/username/${username}"])
    qos: int = Field(0, ge=0, le=2, description="Quality of service")
    rh: int = Field(0, ge=0, le=2, description="Retain Handling")
    rap: int = Field(0, ge=0, le=1, description="Retain As Published")
    nl: int = Field(0, ge=0, le=1, description="No Local")


@router.get("/mqtt/auto_subscribe", response_model=list[TopicModel],
            description="Get auto subscribe topic list")
async def list_topics(request: Request):
    return request.app.state.ctx.broker.config.dump("auto_subscribe")["topics"]


@router.put("/mqtt/auto_subscribe", response_model=list[TopicModel],
            description="Update auto subscribe topic list",
            responses=error_responses({400: ["BAD_REQUEST"], 409: ["EXCEED_LIMIT"]}))
async def put_topics(request: Request, body: list[TopicModel] = Body()):
    from emqpy.mgmt.configs_api import apply

    if len(body) > MAX_AUTO_SUBSCRIBE:
        raise ApiError(409, "EXCEED_LIMIT",
                       f"Max auto subscribe topic count is  {MAX_AUTO_SUBSCRIBE}")
    broker = request.app.state.ctx.broker
    async with config_lock(broker):
        try:
            new = update_root(broker.config, "auto_subscribe",
                              {"topics": [t.model_dump() for t in body]})
        except ConfigError as e:
            raise ApiError(400, "BAD_REQUEST", str(e)) from None
        await apply(broker, new, ["auto_subscribe"])
    return new.dump("auto_subscribe")["topics"]
