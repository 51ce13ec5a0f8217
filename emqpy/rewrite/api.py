"""REST API of topic rewrite (EMQX's emqx_rewrite_api, tag "MQTT")."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, Field

from emqpy.api.auth import authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.config import ConfigError, config_lock, replace_root
from emqpy.config.modules import MAX_REWRITE_RULES

router = APIRouter(tags=["MQTT"], dependencies=[Depends(authenticated)])


class RewriteRuleModel(BaseModel):
    action: Literal["subscribe", "publish", "all"] = Field(
        description="Topic rewriting takes effect on the type of operation", examples=["publish"])
    source_topic: str = Field(description="Source topic, specified by the client.",
                              examples=["x/#"])
    dest_topic: str = Field(description="Destination topic.", examples=["z/y/$1"])
    re: str = Field(description="Regular expressions", examples=["^x/y/(.+)$"])


@router.get("/mqtt/topic_rewrite", response_model=list[RewriteRuleModel],
            description="List all rewrite rules")
async def list_rules(request: Request):
    return request.app.state.ctx.broker.config.dump("rewrite")


@router.put("/mqtt/topic_rewrite", response_model=list[RewriteRuleModel],
            description="Update all rewrite rules",
            responses=error_responses({400: ["BAD_REQUEST"], 413: ["EXCEED_LIMIT"]}))
async def put_rules(request: Request, body: list[RewriteRuleModel] = Body()):
    from emqpy.mgmt.configs_api import apply

    if len(body) >= MAX_REWRITE_RULES:  # (EMQX accepts fewer than its limit)
        raise ApiError(413, "EXCEED_LIMIT", f"Max rewrite rules count is {MAX_REWRITE_RULES}")
    broker = request.app.state.ctx.broker
    async with config_lock(broker):
        try:
            new = replace_root(broker.config, "rewrite", [r.model_dump() for r in body])
        except ConfigError as e:
            raise ApiError(400, "BAD_REQUEST", str(e)) from None
        await apply(broker, new, ["rewrite"])
    return new.dump("rewrite")
