"""REST API of the retainer (EMQX's "Retainer" tag): its config and the retained messages."""
from __future__ import annotations

import base64
from typing import Annotated, Literal, Optional, Union

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from emqpy.api.auth import authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.api.pagination import MAX_LIMIT, Page, page_response, paginate
from emqpy.config import ConfigError, commit, config_lock, persist, update_root
from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import validate_topic_filter
from emqpy.timefmt import rfc3339

router = APIRouter(tags=["Retainer"], dependencies=[Depends(authenticated)])

# Detail views carry the payload only up to this size, as EMQX does.
MAX_PAYLOAD_SIZE = 1048576


# -- models (the OpenAPI document; the config itself is validated by emqpy.config) -------------

Duration = Union[str, int]


class RetainerBackend(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["built_in_database"] = Field("built_in_database", description="Backend type.")
    storage_type: Literal["ram", "disc"] = Field(
        "ram", description="Specifies whether the messages are stored in RAM or persisted on "
                           "disc. (emqpy always keeps them on disc.)")
    max_retained_messages: int = Field(0, ge=0, description="Maximum number of retained "
                                                            "messages. 0 means no limit.")
    index_specs: list[list[int]] = Field([[1, 2, 3], [1, 3], [2, 3], [3]],
                                         description="Retainer index specifications.")
    enable: bool = Field(True, description="Enable built-in Mnesia backend.")


class RetainerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enable: bool = Field(True, description="Enable retainer feature")
    msg_expiry_interval: Duration = Field(
        "0s", description="Expired retained messages will not be delivered again; 0 means "
                          "retained messages never expire.", examples=["32s"])
    msg_clear_interval: Duration = Field(
        "0s", description="The time interval for checking and clearing expired retained "
                          "messages.", examples=["32s"])
    max_payload_size: Union[str, int] = Field(
        "1MB", description="The maximum size of retained messages allowed to be stored. "
                           "0 means unlimited.", examples=["32MB"])
    stop_publish_clear_msg: bool = Field(
        False, description="When the retained flag of the PUBLISH message is set and Payload "
                           "is empty, whether to continue to publish the message.")
    delivery_rate: str = Field("1000/s", description="The maximum rate of delivering retained "
                                                     "messages", examples=["1000/s"])
    backend: Optional[RetainerBackend] = Field(
        None, description="Settings for the database storing the retained messages.")


class MessageSummary(BaseModel):
    msgid: str = Field(description="Message ID.")
    topic: str = Field(description="Topic.")
    qos: int = Field(ge=0, le=2, description="QoS.", examples=[0])
    publish_at: str = Field(description="Message publish time, RFC 3339 format.")
    from_clientid: str = Field(description="The clientid of publisher.")
    from_username: str = Field(description="The username of publisher.")


class MessageDetail(MessageSummary):
    payload: Optional[str] = Field(None, description="Payload.")


class RetainerMeta(BaseModel):
    page: int = Field(1, ge=1, description="Page number of the results to fetch.")
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="Results per page(max 10000)")
    count: Optional[int] = Field(None, ge=0, description="Total number of records matching "
                                                         "the query.")
    hasnext: bool = Field(description="Flag indicating whether there are more results "
                                      "available on next pages.")


class MessagePage(BaseModel):
    data: list[MessageSummary] = Field(description="Retained messages list.")
    meta: RetainerMeta


# -- helpers --------------------------------------------------------------------------------------

def _broker(request: Request):
    return request.app.state.ctx.broker


def _summary(msg) -> dict:
    return {"msgid": msg.id, "qos": msg.qos, "topic": msg.topic,
            "publish_at": rfc3339(msg.timestamp, ms=True),
            "from_clientid": msg.sender or "", "from_username": msg.username or ""}


def _detail(msg) -> dict:
    out = _summary(msg)
    if len(msg.payload) <= MAX_PAYLOAD_SIZE:
        out["payload"] = base64.b64encode(msg.payload).decode()
    return out


def _check_filter(topic: str, broker) -> None:
    try:
        validate_topic_filter(topic, broker.max_topic_levels)
    except MQTTError as e:
        raise ApiError(400, "BAD_REQUEST", f"invalid topic filter {topic!r}: {e}") from None


_NOT_FOUND = error_responses({404: ["NOT_FOUND"]})
_BAD = error_responses({400: ["BAD_REQUEST"]})


# -- config ---------------------------------------------------------------------------------------

# The config is returned as emqpy.config dumps it (documented by the model, not filtered by it).
_CONFIG_200 = {200: {"model": RetainerConfig, "description": "The config content"}}


@router.get("/mqtt/retainer", response_model=None, description="View config",
            responses={**_CONFIG_200, **_NOT_FOUND})
async def get_config(request: Request):
    return _broker(request).config.dump("retainer")


@router.put("/mqtt/retainer", response_model=None, description="Update retainer config.",
            responses={**_CONFIG_200,
                       **error_responses({400: ["UPDATE_FAILED", "BAD_REQUEST"]})})
async def put_config(request: Request, body: RetainerConfig):
    broker = _broker(request)
    change = body.model_dump(exclude_unset=True)
    async with config_lock(broker):
        try:
            new = update_root(broker.config, "retainer", change)
        except ConfigError as e:
            raise ApiError(400, "UPDATE_FAILED", str(e)) from None
        commit(broker, new)
        broker.retainer.apply_config()
        await persist(broker, "retainer")
    return new.dump("retainer")


# -- messages -------------------------------------------------------------------------------------

@router.get("/mqtt/retainer/messages", response_model=MessagePage,
            response_model_exclude_none=True, description="List retained messages.",
            responses=_BAD)
async def list_messages(
    request: Request, page: Page,
    topic: Annotated[Optional[str], Query(description="Topic filter, supports wildcards, omit "
                                                      "this to match all messages.")] = None,
):
    broker = _broker(request)
    ret = broker.retainer
    if topic is None:
        msgs = ret.all()
    else:
        _check_filter(topic, broker)
        msgs = ret.lookup(topic)
    # As EMQX: the total only for the unfiltered listing.
    return await page_response(paginate(msgs, page, count=topic is None), _summary)


@router.delete("/mqtt/retainer/messages", status_code=204, response_class=Response,
               description="Delete all retained messages")
async def delete_messages(request: Request):
    _broker(request).retainer.clear()
    return Response(status_code=204)


TopicPath = Annotated[str, Path(description="Topic.")]


@router.get("/mqtt/retainer/message/{topic:path}", response_model=MessageDetail,
            response_model_exclude_none=True,
            description="Lookup a message by a topic without wildcards.",
            responses={**_BAD, **_NOT_FOUND})
async def get_message(request: Request, topic: TopicPath):
    broker = _broker(request)
    _check_filter(topic, broker)
    msgs = broker.retainer.lookup(topic)
    if not msgs:
        raise ApiError(404, "NOT_FOUND", "Viewed message doesn't exist")
    return _detail(msgs[0])


@router.delete("/mqtt/retainer/message/{topic:path}", status_code=204, response_class=Response,
               description="Delete matching messages.", responses={**_BAD, **_NOT_FOUND})
async def delete_message(request: Request, topic: TopicPath):
    broker = _broker(request)
    _check_filter(topic, broker)
    if not broker.retainer.delete_matching(topic):
        raise ApiError(404, "NOT_FOUND", "Viewed message doesn't exist")
    return Response(status_code=204)
