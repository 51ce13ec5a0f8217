"""EMQX's "Publish" endpoints: POST /publish and /publish/bulk route a message like a client's.

Answers as EMQX 5.8 does: 200 ``{"id"}`` when at least one subscriber got (or queued) it, 202
``{"reason_code": 16, "message": "no_matching_subscribers"}`` otherwise, and 400 with
``reason_code`` 144 (bad topic), 151 (larger than ``mqtt.max_packet_size``) or 131 (e.g. bad
base64) for a message that cannot be published. Schema errors (missing topic, QoS 3, ...) are
the platform's 400 BAD_REQUEST. The publisher is ``http_api``, as in EMQX; the deprecated
``clientid`` field is accepted and ignored, as EMQX does.
"""
from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal, Optional

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from emqpy.api.auth import authenticated
from emqpy.broker.message import Message
from emqpy.mgmt.clients_api import reply
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import validate_topic_name

router = APIRouter(tags=["Publish"], dependencies=[Depends(authenticated)])

SENDER = "http_api"


class MessageProperties(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payload_format_indicator: Optional[int] = Field(None, ge=0, le=1, examples=[0])
    message_expiry_interval: Optional[int] = Field(None, ge=0, le=0xFFFFFFFF)
    response_topic: Optional[str] = Field(None, examples=["some_other_topic"])
    correlation_data: Optional[str] = None
    user_properties: Optional[dict[str, str]] = Field(None, examples=[{"foo": "bar"}])
    content_type: Optional[str] = Field(None, examples=["text/plain"])


class PublishMessage(BaseModel):
    payload_encoding: Literal["plain", "base64"] = Field(
        "plain", description="MQTT Payload Encoding, <code>base64</code> or <code>plain</code>. "
                             "When set to <code>base64</code>, the message is decoded before it "
                             "is published.")
    topic: str = Field(description="Topic Name", examples=["api/example/topic"])
    qos: int = Field(0, ge=0, le=2, description="MQTT message QoS", examples=[0])
    clientid: Optional[str] = Field(None, json_schema_extra={"deprecated": True})
    payload: str = Field(description="The MQTT message payload.", examples=["hello emqx api"])
    properties: Optional[MessageProperties] = Field(
        None, description="The Properties of the PUBLISH message.")
    retain: bool = Field(False, description="A boolean field to indicate if this message "
                                            "should be retained.")


_OK = {"type": "object", "properties": {"id": {
    "type": "string", "description": "A globally unique message ID for correlation/tracing."}}}
_ERR = {"type": "object", "properties": {
    "reason_code": {"type": "integer", "example": 16},
    "message": {"type": "string", "example": "no_matching_subscribers"}}}
_BAD = {"type": "object", "properties": {
    "code": {"type": "string", "description": "BAD_REQUEST"},
    "reason_code": {"type": "integer", "example": 144},
    "message": {"type": "string", "example": "topic_name_invalid"}}}


def _resp(schema):
    return {"content": {"application/json": {"schema": schema}}}


class _Invalid(Exception):
    def __init__(self, reason_code: int, message: str):
        super().__init__(message)
        self.body = {"code": "BAD_REQUEST", "reason_code": reason_code, "message": message}


def _make(broker, m: PublishMessage) -> Message:
    """The broker Message for one request item; raises _Invalid for EMQX's 400 cases."""
    if m.payload_encoding == "base64":
        try:
            payload = base64.b64decode(m.payload, validate=True)
        except (binascii.Error, ValueError):
            raise _Invalid(rc.IMPLEMENTATION_SPECIFIC_ERROR,
                           "decode_base64_payload_failed") from None
    else:
        payload = m.payload.encode("utf-8")
    try:
        validate_topic_name(m.topic, broker.max_topic_levels)
    except MQTTError:
        raise _Invalid(rc.TOPIC_NAME_INVALID, "topic_name_invalid") from None
    props: dict[str, Any] = {}
    p = m.properties
    if p is not None:
        if p.payload_format_indicator is not None:
            props["payload_format_indicator"] = p.payload_format_indicator
        if p.message_expiry_interval is not None:
            props["message_expiry_interval"] = p.message_expiry_interval
        if p.response_topic is not None:
            try:
                validate_topic_name(p.response_topic, broker.max_topic_levels)
            except MQTTError:
                raise _Invalid(rc.IMPLEMENTATION_SPECIFIC_ERROR,
                               "response_topic_invalid") from None
            props["response_topic"] = p.response_topic
        if p.correlation_data is not None:
            props["correlation_data"] = p.correlation_data.encode("utf-8")
        if p.user_properties:
            props["user_property"] = list(p.user_properties.items())
        if p.content_type is not None:
            props["content_type"] = p.content_type
    if len(m.topic.encode("utf-8")) + len(payload) > broker.config.mqtt.max_packet_size:
        # 0x95 Packet Too Large is no PUBACK code; EMQX answers with 0x97 Quota Exceeded.
        raise _Invalid(rc.QUOTA_EXCEEDED, "packet_too_large")
    return Message(m.topic, payload, m.qos, m.retain, props or None, SENDER)


def _publish(broker, msg: Message) -> tuple[int, dict]:
    broker.metrics.c["messages.publish"] += 1
    if broker.publish(msg):
        return 200, {"id": msg.id.upper()}
    return 202, {"reason_code": rc.NO_MATCHING_SUBSCRIBERS, "message": "no_matching_subscribers"}


@router.post(
    "/publish", summary="Publish a message",
    description="Possible HTTP status response codes are:<br/><br/><code>200</code>: The "
                "message is delivered to at least one subscriber;<br/><br/><code>202</code>: No "
                "matched subscribers;<br/><br/><code>400</code>: Message is invalid. for example "
                "bad topic name, or QoS is out of range;<br/><br/><code>503</code>: Failed to "
                "deliver the message to subscriber(s)",
    responses={200: {"description": "", **_resp(_OK)}, 202: {"description": "", **_resp(_ERR)},
               400: {"description": "", **_resp(_BAD)},
               503: {"description": "", **_resp(_ERR)}})
async def publish(request: Request, body: PublishMessage):
    broker = request.app.state.ctx.broker
    try:
        msg = _make(broker, body)
    except _Invalid as e:
        return reply(e.body, 400)
    status, out = _publish(broker, msg)
    return reply(out, status)


@router.post(
    "/publish/bulk", summary="Publish a batch of messages",
    description="Possible HTTP response status code are:<br/><br/>200: All messages are "
                "delivered to at least one subscriber;<br/><br/>202: At least one message was "
                "not delivered to any subscriber;<br/><br/>400: At least one message is "
                "invalid. For example bad topic name, or QoS is out of range;<br/><br/>503: "
                "Failed to deliver at least one of the messages;<br/><br/>In case there is at "
                "lest one invalid message in the batch, the HTTP response body is the same as "
                "for <code>/publish</code> API.<br/><br/>Otherwise the HTTP response body is an "
                "array of JSON objects indicating the publish result of each individual message "
                "in the batch.",
    responses={200: {"description": "", **_resp({"type": "array", "items": _OK})},
               202: {"description": "", **_resp({"type": "array", "items": _ERR})},
               400: {"description": "", **_resp({"oneOf": [
                   {"type": "array", "items": _ERR}, _BAD]})},
               503: {"description": "", **_resp({"type": "array", "items": _ERR})}})
async def publish_bulk(request: Request, body: Annotated[list[PublishMessage], Body()]):
    broker = request.app.state.ctx.broker
    if not body:
        return reply({"code": "BAD_REQUEST", "reason_code": rc.IMPLEMENTATION_SPECIFIC_ERROR,
                     "message": "empty_batch"}, 400)
    try:  # all or nothing: one invalid message publishes none
        msgs = [_make(broker, m) for m in body]
    except _Invalid as e:
        return reply(e.body, 400)
    results = [_publish(broker, m) for m in msgs]
    status = 200 if all(s == 200 for s, _ in results) else 202
    return reply([r for _, r in results], status)
