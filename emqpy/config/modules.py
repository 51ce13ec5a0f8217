"""EMQX 5.8.1 config roots of the MQTT extensions (emqx_modules, emqx_auto_subscribe,
emqx_slow_subs): ``delayed``, ``rewrite``, ``topic_metrics``, ``auto_subscribe``, ``slow_subs``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import validate_topic_name

from .base import Section
from .sections import Int
from .types import Duration

# EMQX's maxima (emqx_rewrite_api's ?MAX_RULES_LIMIT is "fewer than 20", emqx_auto_subscribe's
# ?MAX_AUTO_SUBSCRIBE, emqx_topic_metrics' ?MAX_TOPICS, emqx_slow_subs' ?MAX_SIZE).
MAX_REWRITE_RULES = 20
MAX_AUTO_SUBSCRIBE = 20
MAX_TOPIC_METRICS = 512
MAX_SLOW_SUBS = 1000


class Delayed(Section):
    """Root ``delayed``: `$delayed/{seconds}/{topic}` publishes (emqpy.delayed)."""

    enable: bool = Field(True, description="Enable this feature")
    max_delayed_messages: Int() = Field(0, description="Maximum number of delayed messages "
                                                       "(0 is no limit).")


class RewriteRule(Section):
    """One element of the root ``rewrite`` (emqpy.rewrite)."""

    action: Literal["subscribe", "publish", "all"]
    source_topic: str
    dest_topic: str
    re: str

    @field_validator("re")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"bad regular expression {v!r}: {e}") from None
        return v

    @model_validator(mode="after")
    def _dest_is_a_name(self) -> "RewriteRule":
        # As EMQX's rewrite_validator: a rule that rewrites PUBLISH topics must produce a topic
        # name, so its destination cannot hold a wildcard.
        if self.action != "subscribe":
            try:
                validate_topic_name(self.dest_topic, 0)
            except MQTTError:
                raise ValueError("cannot_use_wildcard_for_destination_topic: "
                                 f"{self.dest_topic!r}") from None
        return self


class TopicMetric(Section):
    """One element of the root ``topic_metrics`` (emqpy.topic_metrics): a topic name."""

    topic: str

    @field_validator("topic")
    @classmethod
    def _a_name(cls, v: str) -> str:
        if "+" in v or "#" in v:
            raise ValueError("Wildcard topic is not supported")
        return v


def _topic_metrics_limit(topics: list) -> list:
    if len(topics) > MAX_TOPIC_METRICS:
        raise ValueError(f"Max topic metrics count is {MAX_TOPIC_METRICS}")
    return topics


TopicMetrics = Annotated[list[TopicMetric], AfterValidator(_topic_metrics_limit)]


class AutoSubscribeTopic(Section):
    topic: str = Field(min_length=1)
    qos: Int(0, 2) = 0
    rh: Int(0, 2) = 0
    rap: Int(0, 1) = 0
    nl: Int(0, 1) = 0


class AutoSubscribe(Section):
    """Root ``auto_subscribe`` (emqpy.auto_subscribe)."""

    topics: list[AutoSubscribeTopic] = []


class SlowSubs(Section):
    """Root ``slow_subs`` (emqpy.slow_subs); durations are float seconds."""

    enable: bool = False
    threshold: Duration = "500ms"
    expire_interval: Duration = "300s"
    top_k_num: Int(1, MAX_SLOW_SUBS) = 10
    stats_type: Literal["whole", "internal", "response"] = "whole"
