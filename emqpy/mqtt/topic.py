"""Topic names and filters: validation, shared-subscription parsing, matching. The one place
that says what a valid topic name or filter is (the codec's inline PUBLISH parse only routes
the common case, and the rest comes here)."""
from __future__ import annotations

from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.reason_codes import MQTTError

MAX_TOPIC_BYTES = 65535


def validate_topic_name(topic: str, max_levels: int = 128) -> None:
    """Raise MQTTError(TOPIC_NAME_INVALID) unless `topic` is a valid PUBLISH topic name."""
    if not topic:
        raise MQTTError(rc.TOPIC_NAME_INVALID, "empty topic name")
    if "+" in topic or "#" in topic:
        raise MQTTError(rc.TOPIC_NAME_INVALID, "wildcard in topic name")
    if "\x00" in topic:
        raise MQTTError(rc.TOPIC_NAME_INVALID, "U+0000 in topic name")
    if len(topic) * 4 > MAX_TOPIC_BYTES and len(topic.encode()) > MAX_TOPIC_BYTES:
        raise MQTTError(rc.TOPIC_NAME_INVALID, "topic name too long")
    if max_levels and topic.count("/") >= max_levels:
        raise MQTTError(rc.TOPIC_NAME_INVALID, "too many topic levels")


def validate_topic_filter(flt: str, max_levels: int = 128) -> None:
    """Raise MQTTError(TOPIC_FILTER_INVALID) unless `flt` is a valid topic filter."""
    if not flt:
        raise MQTTError(rc.TOPIC_FILTER_INVALID, "empty topic filter")
    if "\x00" in flt:
        raise MQTTError(rc.TOPIC_FILTER_INVALID, "U+0000 in topic filter")
    if len(flt.encode()) > MAX_TOPIC_BYTES:
        raise MQTTError(rc.TOPIC_FILTER_INVALID, "topic filter too long")
    levels = flt.split("/")
    if max_levels and len(levels) > max_levels:
        raise MQTTError(rc.TOPIC_FILTER_INVALID, "too many topic levels")
    last = len(levels) - 1
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != last):
            raise MQTTError(rc.TOPIC_FILTER_INVALID, "'#' must be the last, whole level")
        if "+" in level and level != "+":
            raise MQTTError(rc.TOPIC_FILTER_INVALID, "'+' must be a whole level")


def parse_share(flt: str) -> tuple[str | None, str, bool]:
    """Split a subscription filter into (share group, real filter, exclusive).

    `$share/<group>/<filter>` -> (group, filter); `$queue/<filter>` -> ("$queue", filter) as EMQX
    treats it; `$exclusive/<filter>` -> (None, filter, True). Raises TOPIC_FILTER_INVALID for a
    malformed share.
    """
    if flt.startswith("$share/"):
        rest = flt[7:]
        group, sep, real = rest.partition("/")
        if not sep or not group or not real or "+" in group or "#" in group:
            raise MQTTError(rc.TOPIC_FILTER_INVALID, "invalid shared subscription")
        return group, real, False
    if flt.startswith("$queue/"):
        real = flt[7:]
        if not real:
            raise MQTTError(rc.TOPIC_FILTER_INVALID, "invalid $queue subscription")
        return "$queue", real, False
    if flt.startswith("$exclusive/"):
        real = flt[11:]
        if not real:
            raise MQTTError(rc.TOPIC_FILTER_INVALID, "invalid $exclusive subscription")
        return None, real, True
    return None, flt, False


def matches(flt: str, topic: str) -> bool:
    """True when `topic` matches `flt` (no `$`-topic is matched by a leading wildcard). `topic`
    may itself be a filter (EMQX's ``match_topic`` query): a ``+`` in `flt` matches any one of
    its levels, wildcards included."""
    if topic.startswith("$") and (flt.startswith("+") or flt.startswith("#")):
        return False
    f = flt.split("/")
    t = topic.split("/")
    for i, level in enumerate(f):
        if level == "#":
            return True
        if i >= len(t):
            return False
        if level != "+" and level != t[i]:
            return False
    return len(f) == len(t)
