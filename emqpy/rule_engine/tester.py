"""Trying SQL and rules on a made-up event (EMQX's emqx_rule_sqltester): POST /rule_test and
POST /rules/{id}/test.

The context names its event (`event_type`, e.g. ``message_publish``); the columns the context
leaves out are taken from the event's example columns (catalog.py). A message event's topic
must match one of the FROM filters; another event's topic is its ``$events/...`` topic.
"""
from __future__ import annotations

import json
import secrets

from emqpy.mqtt.topic import matches
from emqpy.rule_engine import catalog
from emqpy.rule_engine.events import EVENT_TOPICS

# a context's event_type -> the event (EMQX's hook point name)
EVENT_TYPES = {
    "message_publish": "message.publish", "session_subscribed": "session.subscribed",
    "session_unsubscribed": "session.unsubscribed", "message_delivered": "message.delivered",
    "message_acked": "message.acked", "message_dropped": "message.dropped",
    "client_connected": "client.connected", "client_disconnected": "client.disconnected",
    "client_connack": "client.connack",
    "client_check_authz_complete": "client.check_authz_complete",
    "client_check_authn_complete": "client.check_authn_complete",
    "delivery_dropped": "delivery.dropped", "$bridges/mqtt:*": "$bridges/mqtt:*",
}
_POINTS = {topic: point for point, topic in EVENT_TOPICS.items()}


class TestError(Exception):
    """status (400, 404, 412), EMQX code and message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


NOMATCH = (412, "NOT_MATCH", "SQL Not Match")


def check_context(context) -> dict:
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise TestError(400, "BAD_REQUEST", "Bad Arguments: context: a JSON object is expected")
    ctx = dict(context)
    etype = ctx.pop("event_type", None)
    if etype is not None:
        event = EVENT_TYPES.get(etype)
        if event is None:
            raise TestError(400, "BAD_REQUEST",
                            f"Bad Arguments: context.event_type: unknown event type {etype!r}")
        ctx.setdefault("event", event)
    qos = ctx.get("qos")
    if qos is not None and (isinstance(qos, bool) or not isinstance(qos, int)
                            or not 0 <= qos <= 2):
        raise TestError(400, "BAD_REQUEST", "Bad Arguments: context.qos: expected 0, 1 or 2")
    return ctx


def _in_topic(ctx: dict) -> str:
    if "event_topic" in ctx:
        return ctx["event_topic"]
    event = ctx.get("event")
    if event is None or event == "message.publish":
        return ctx.get("topic", "")
    return EVENT_TOPICS.get(event, event)


def _is_publish_topic(flt: str) -> bool:
    return not flt.startswith(("$events/", "$bridges/"))


def _matches(topic: str, froms, exact: bool) -> bool:
    if exact:
        return topic in froms
    return any(matches(f, topic) for f in froms)


def _full_context(ctx: dict, froms, node: str) -> dict:
    event = ctx.get("event") or _POINTS.get(froms[0], "message.publish")
    try:
        example = dict(catalog.columns_with_examples(event, node))
    except KeyError:
        example = {}
    return {**example, **ctx}


def test_sql(eng, sql: str, context) -> object:
    """POST /rule_test: the rule's output (a map; a list for FOREACH)."""
    from emqpy.rule_engine.sql import SqlError, compile_sql

    try:
        compiled = compile_sql(sql)
    except SqlError as e:
        raise TestError(400, "BAD_REQUEST", str(e)) from None
    ctx = check_context(context)
    froms = list(compiled.froms)
    if not _matches(_in_topic(ctx), froms, exact=False):
        raise TestError(*NOMATCH)
    columns = _full_context(ctx, froms, eng.broker.node_name)
    columns["metadata"] = {"rule_id": "sql_tester:" + secrets.token_hex(8)}
    try:
        result = compiled.test(columns)
    except Exception as e:
        raise TestError(400, "BAD_REQUEST", error_text(e, compiled.is_foreach)) from None
    if result is None:  # WHERE false (FOREACH that keeps nothing gives [])
        raise TestError(*NOMATCH)
    return result


def error_text(e: Exception, foreach: bool = False) -> str:
    """A rule's run-time error as EMQX's rule test reports it: JSON naming the clause and the
    reason (``{"select_and_transform_error":"decode_json_failed"}``). The compiled rule does
    not say which clause failed: SELECT (FOREACH) is named."""
    clause = "select_and_collect_error" if foreach else "select_and_transform_error"
    details = getattr(e, "details", None)
    if callable(details):
        reason = details()
    else:
        text = str(e) or type(e).__name__
        word = text.split(":", 1)[0]
        reason = word if word.replace("_", "").isalnum() else text
    return json.dumps({clause: reason}, ensure_ascii=False, separators=(",", ":"),
                      default=str)


def apply_rule(eng, rule_id: str, context, stop_after_render: bool = True) -> list:
    """POST /rules/{id}/test: run a rule on the context. Its actions run unless
    `stop_after_render` (the default): then they are only counted, as failed, as EMQX counts an
    action stopped after rendering its templates."""
    rule = eng.get(rule_id)
    if rule is None:
        raise TestError(404, "RULE_NOT_FOUND", "The rule could not be found")
    ctx = check_context(context)
    froms = list(rule.froms)
    exact = not all(_is_publish_topic(f) for f in froms)
    if not _matches(_in_topic(ctx), froms, exact=exact):
        raise TestError(*NOMATCH)
    columns = _full_context(ctx, froms, eng.broker.node_name)
    outputs: list = []
    try:
        eng.apply(rule, columns, collect=outputs)
    except Exception as e:
        raise TestError(400, "BAD_REQUEST", error_text(e, rule.compiled.is_foreach)) from None
    if not outputs:
        raise TestError(*NOMATCH)
    m = rule.metrics.c
    results = []
    env = {**columns, "metadata": {"rule_id": rule.id}}
    for out in outputs:
        per_output = []
        for action in rule.actions:
            if stop_after_render:
                m["actions.total"] += 1
                m["actions.failed"] += 1
                m["actions.failed.unknown"] += 1
            else:
                eng._run_action(rule, action, out, env)
            per_output.append("ok")
        results.append(per_output)
    return results if rule.compiled.is_foreach else (results[0] if results else [])
