"""REST API of delayed publish (EMQX's emqx_delayed_api, tag "MQTT")."""
from __future__ import annotations

import base64
import re
import time
from typing import Annotated, Optional

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from emqpy.api.auth import authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.api.pagination import Page, page_response, paginate
from emqpy.config import ConfigError, config_lock, update_root
from emqpy.timefmt import rfc3339

router = APIRouter(tags=["MQTT"], dependencies=[Depends(authenticated)])

MAX_PAYLOAD_LENGTH = 2048  # a larger payload is shown as PAYLOAD_TOO_LARGE (as EMQX)
_HEX = re.compile(r"[0-9a-fA-F]{1,32}")


class DelayedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enable: bool = Field(True, description="Enable this feature")
    max_delayed_messages: int = Field(0, description="Maximum number of delayed messages "
                                                     "(0 is no limit).")


class MessageOut(BaseModel):
    msgid: str = Field(description="Delayed Message ID")
    node: str = Field(description="The node where message from")
    publish_at: str = Field(description="Clinet publish message time, in RFC 3339 format")
    delayed_interval: int = Field(description="Delayed interval(second)")
    delayed_remaining: int = Field(description="Delayed remaining(second)")
    expected_at: str = Field(description="Expect publish time, in RFC 3339 format")
    topic: str = Field(description="Topic", examples=["/sys/#"])
    qos: int = Field(ge=0, le=2, description="QoS")
    from_clientid: str = Field(description="From ClientID")
    from_username: Optional[str] = Field(None, description="From Username")
    payload: Optional[str] = Field(None, description="Payload, base64 encoded. Payload will be "
                                   "set to 'PAYLOAD_TO_LARGE' if its length is larger than "
                                   "2048 bytes")


class MessagesMeta(BaseModel):
    page: int
    limit: int
    count: int
    hasnext: bool


class MessagesPage(BaseModel):
    data: list[MessageOut]
    meta: MessagesMeta


def _delayed(request: Request):
    return request.app.state.ctx.broker.delayed


def _format(held, node: str, with_payload: bool = False) -> dict:
    msg = held.msg
    out = {"msgid": held.msgid, "node": node, "publish_at": rfc3339(msg.timestamp, ms=True),
           "delayed_interval": held.interval,
           "delayed_remaining": int(held.due - time.time()),  # (truncated, as EMQX's div)
           "expected_at": rfc3339(held.due, ms=True), "topic": msg.topic, "qos": msg.qos,
           "from_clientid": msg.sender or "", "from_username": msg.username}
    if with_payload:
        payload = bytes(msg.payload)
        out["payload"] = ("PAYLOAD_TOO_LARGE" if len(payload) > MAX_PAYLOAD_LENGTH
                          else base64.b64encode(payload).decode())
    return out


# -- config ---------------------------------------------------------------------------------

_CONFIG_200 = {200: {"model": DelayedConfig, "description": "The config content"}}


@router.get("/mqtt/delayed", response_model=None, responses=_CONFIG_200,
            description="Get delay status")
async def get_status(request: Request):
    return request.app.state.ctx.broker.config.dump("delayed")


@router.put("/mqtt/delayed", response_model=None, description="Enable or disable delayed, "
            "set max number of delayed messages",
            responses={**_CONFIG_200, **error_responses({400: ["BAD_REQUEST"]})})
async def put_status(request: Request, body: DelayedConfig):
    from emqpy.mgmt.configs_api import apply

    change = body.model_dump(exclude_unset=True)
    if change.get("max_delayed_messages", 0) < 0:
        raise ApiError(400, "BAD_REQUEST", "Max delayed must be equal or greater than 0")
    broker = request.app.state.ctx.broker
    async with config_lock(broker):
        try:
            new = update_root(broker.config, "delayed", change)
        except ConfigError as e:
            raise ApiError(400, "BAD_REQUEST", str(e)) from None
        await apply(broker, new, ["delayed"])
    return new.dump("delayed")


# -- messages -------------------------------------------------------------------------------

@router.get("/mqtt/delayed/messages", response_model=MessagesPage,
            response_model_exclude_none=True, description="List delayed messages")
async def list_messages(request: Request, page: Page):
    node = request.app.state.ctx.broker.node_name
    return await page_response(paginate(_delayed(request).listing(), page),
                               lambda h: _format(h, node))


_ONE_ERRORS = error_responses({400: ["MESSAGE_ID_SCHEMA_ERROR", "INVALID_NODE"],
                               404: ["MESSAGE_ID_NOT_FOUND"]})
NodePath = Annotated[str, Path(description="The node where message from")]
IdPath = Annotated[str, Path(description="Delayed Message ID")]


def _check(request: Request, node: str, msgid: str) -> None:
    if node != request.app.state.ctx.broker.node_name:
        raise ApiError(400, "INVALID_NODE", f"The node name {node} is invalid")
    if not _HEX.fullmatch(msgid):
        raise ApiError(400, "MESSAGE_ID_SCHEMA_ERROR", f"Message ID {msgid} schema error")


def _not_found(msgid: str) -> ApiError:
    return ApiError(404, "MESSAGE_ID_NOT_FOUND", f"Message ID {msgid} not found")


@router.get("/mqtt/delayed/messages/{node}/{msgid}", response_model=MessageOut,
            response_model_exclude_none=True, responses=_ONE_ERRORS,
            description="Get delayed message")
async def get_message(request: Request, node: NodePath, msgid: IdPath):
    _check(request, node, msgid)
    held = _delayed(request).held.get(msgid.lower())
    if held is None:
        raise _not_found(msgid)
    return _format(held, node, with_payload=True)


@router.delete("/mqtt/delayed/messages/{node}/{msgid}", status_code=204,
               response_class=Response, responses=_ONE_ERRORS,
               description="Delete delayed message")
async def delete_message(request: Request, node: NodePath, msgid: IdPath):
    _check(request, node, msgid)
    if not _delayed(request).delete(msgid.lower()):
        raise _not_found(msgid)
    return Response(status_code=204)


@router.delete("/mqtt/delayed/messages/{topic}", status_code=204, response_class=Response,
               responses=error_responses({400: ["INVALID_TOPIC_NAME"],
                                          404: ["MESSAGE_NOT_FOUND"]}),
               description="Delete delayed messages by topic name")
async def delete_topic(request: Request,
                       topic: Annotated[str, Path(description="The topic name")]):
    if "+" in topic or "#" in topic:
        raise ApiError(400, "INVALID_TOPIC_NAME", f"The topic name {topic} is invalid")
    if not _delayed(request).delete_topic(topic):
        raise ApiError(404, "MESSAGE_NOT_FOUND", f"Not found messages for {topic}")
    return Response(status_code=204)
