"""REST API of topic metrics (EMQX's emqx_topic_metrics_api, tag "MQTT").

As EMQX 5.8.1 answers (its code, not its document): POST, PUT and GET of one topic answer 200
with the topic's metrics, a reset of all topics 200 with the list; `reset_time` is not shown.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field

from emqpy.api.auth import authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.config import config_lock, replace_root
from emqpy.config.modules import MAX_TOPIC_METRICS

router = APIRouter(tags=["MQTT"], dependencies=[Depends(authenticated)])


class TopicMetricsOut(BaseModel):
    topic: str = Field(description="Topic", examples=["testtopic/1"])
    create_time: str = Field(description="Create time", examples=["2022-01-14T21:48:47+08:00"])
    metrics: dict[str, float] = Field(description="Metrics: messages.{in,out,dropped,"
                                      "qos0.in,...}.{count,rate}")


class AddTopic(BaseModel):
    topic: str = Field(description="Raw topic string", examples=["testtopic/1"])


class Reset(BaseModel):
    topic: Optional[str] = Field(None, description="Topic Name. If this parameter is not "
                                 "present,all created topic metrics will be reset.")
    action: Literal["reset"] = Field(description="Action. Only support reset")


TopicPath = Annotated[str, Path(description="Topic string. Notice: Need url encode")]
_NOT_FOUND = error_responses({404: ["TOPIC_NOT_FOUND"]})


def _metrics(request: Request):
    return request.app.state.ctx.broker.topic_metrics


def _one(request: Request, topic: str) -> dict:
    tc = _metrics(request).topics.get(topic)
    if tc is None:
        raise ApiError(404, "TOPIC_NOT_FOUND", "Topic not found")
    return tc.format()


async def _set_topics(request: Request, topics: list[str]) -> None:
    from emqpy.mgmt.configs_api import apply

    broker = request.app.state.ctx.broker
    new = replace_root(broker.config, "topic_metrics", [{"topic": t} for t in topics])
    await apply(broker, new, ["topic_metrics"])


@router.get("/mqtt/topic_metrics", response_model=list[TopicMetricsOut],
            description="List topic metrics")
async def list_metrics(request: Request):
    return [tc.format() for tc in _metrics(request).topics.values()]


@router.put("/mqtt/topic_metrics", response_model=None, responses=_NOT_FOUND,
            description="Reset topic metrics by topic name. Or reset all Topic Metrics")
async def reset(request: Request, body: Reset):
    tm = _metrics(request)
    if body.topic is None:
        tm.reset()
        return [tc.format() for tc in tm.topics.values()]
    if body.topic not in tm.topics:
        raise ApiError(404, "TOPIC_NOT_FOUND", "Topic not found")
    tm.reset(body.topic)
    return _one(request, body.topic)


@router.post("/mqtt/topic_metrics", response_model=TopicMetricsOut,
             description="Create topic metrics",
             responses=error_responses({400: ["BAD_REQUEST", "BAD_TOPIC"],
                                        409: ["EXCEED_LIMIT"]}))
async def add(request: Request, body: AddTopic):
    topic = body.topic
    if not topic:
        raise ApiError(400, "BAD_REQUEST", "Topic can not be empty")
    broker = request.app.state.ctx.broker
    async with config_lock(broker):
        topics = [t.topic for t in broker.config.topic_metrics]
        if topic in topics:
            raise ApiError(400, "BAD_TOPIC", "Topic already registered")
        if "+" in topic or "#" in topic:
            raise ApiError(400, "BAD_TOPIC", "Wildcard topic is not supported")
        if len(topics) >= MAX_TOPIC_METRICS:
            raise ApiError(409, "EXCEED_LIMIT", f"Max topic metrics count is {MAX_TOPIC_METRICS}")
        await _set_topics(request, topics + [topic])
    return _metrics(request).topics[topic].format()


@router.get("/mqtt/topic_metrics/{topic}", response_model=TopicMetricsOut,
            responses=_NOT_FOUND, description="Get topic metrics")
async def get_one(request: Request, topic: TopicPath):
    return _one(request, topic)


@router.delete("/mqtt/topic_metrics/{topic}", status_code=204, response_class=Response,
               responses=_NOT_FOUND, description="Remove the topic metrics")
async def delete_one(request: Request, topic: TopicPath):
    broker = request.app.state.ctx.broker
    async with config_lock(broker):
        topics = [t.topic for t in broker.config.topic_metrics]
        if topic not in topics:
            raise ApiError(404, "TOPIC_NOT_FOUND", "Topic not found")
        topics.remove(topic)
        await _set_topics(request, topics)
    return Response(status_code=204)
