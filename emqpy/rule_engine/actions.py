"""A rule's actions (EMQX's emqx_rule_actions): the built-in `republish` and `console`, and
references to data-integration actions (``"http:my_action"``).

`parse(conf)` turns one configured action into an object with `run(broker, rule_id, selected,
envs)`; it raises ActionError for an action the engine cannot have (EMQX's validation errors).
`run` returns normally on success and raises on failure: ActionDiscarded (the action does not
exist, EMQX's `actions.discarded`), OutOfService, or anything else (`actions.failed.unknown`).
An action whose `deferred` is true (data integration: the outcome comes later) takes one more
argument, `on_result(ok)`, called once when the outcome is final.

Republish loops: a rule whose republished message matches its own FROM is stopped at the
second turn (EMQX's `recursive_republish_detected`, logged); loops through several rules are
not detected, in EMQX either.
"""
from __future__ import annotations

import logging
import re
import sys

from emqpy.broker.message import Message
from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import validate_topic_name
from emqpy.rule_engine.events import REPUBLISHED
from emqpy.templates import Template, TemplateError, to_text

log = logging.getLogger("emqpy.rule_engine")

# Data-integration action types EMQX 5.8.1 (open source edition) knows, old bridge names
# included: a reference to another type is refused as EMQX refuses it.
ACTION_TYPES = frozenset({"http", "webhook", "mqtt"})
_NAME = re.compile(r"^[0-9a-zA-Z][-0-9a-zA-Z_]*$")

# EMQX's MQTT 5 property names of a republish -> emqpy's, and those whose value is an integer
_PROPS = {"Payload-Format-Indicator": "payload_format_indicator",
          "Message-Expiry-Interval": "message_expiry_interval",
          "Content-Type": "content_type", "Response-Topic": "response_topic",
          "Correlation-Data": "correlation_data"}
_INT_PROPS = {"Payload-Format-Indicator", "Message-Expiry-Interval"}


class ActionError(ValueError):
    """A configured action that cannot be used (the rule is refused)."""


class ActionDiscarded(Exception):
    pass


class OutOfService(Exception):
    pass


class DataIntegrationAction:
    """``"type:name"``: an action of the data-integration feature (emqpy.bridge, the broker's
    `bridges` slot), which queues the output on disk and reports the outcome later. As EMQX
    does for a rule naming an action that does not exist, the rule is accepted (with a
    warning) and every call is discarded until it does."""
    deferred = True

    def __init__(self, ref: str):
        self.ref = ref
        raw = ref[len("bridge:"):] if ref.startswith("bridge:") else ref
        parts = raw.split(":")
        if len(parts) != 2:
            raise ActionError(f"should be of pattern {{type}}:{{name}}, but got: {ref}")
        typ, name = parts
        if typ not in ACTION_TYPES:
            raise ActionError(f"unknown resource type: {typ}")
        if not name:
            raise ActionError("Name cannot be empty string")
        if len(name) >= 255:
            raise ActionError("Name length must be less than 255")
        if not _NAME.match(name):
            raise ActionError(
                "Invalid name format. The name must begin with a letter or number (0-9, a-z, "
                "A-Z) and can only include underscores and hyphens as non-initial characters. "
                f"Got: {name}")
        self.type = "http" if typ == "webhook" else typ
        self.name = name

    def describe(self):
        return f"{self.type}:{self.name}"

    def run(self, broker, rule_id, selected, envs, on_result):
        bridges = broker.bridges
        ref = self.describe()
        if bridges is None or not bridges.action_exists(ref):
            raise ActionDiscarded("bridge_not_found")
        try:
            bridges.send(ref, selected, envs, on_result)
        except LookupError:  # removed in between
            raise ActionDiscarded("bridge_not_found") from None


class ConsoleAction:
    """Prints the output and the environment, as EMQX's console action (to standard output)."""
    deferred = False

    def describe(self):
        return {"function": "console"}

    def run(self, broker, rule_id, selected, envs):
        print(f"[rule action] {rule_id}\n\tAction Data: {selected!r}\n\tEnvs: {envs!r}",
              file=sys.stdout, flush=True)


def _simple(value):
    return Template(value) if isinstance(value, str) else value


class RepublishAction:
    deferred = False

    def __init__(self, args):
        self.args = args
        try:
            self.topic = Template(args.topic)
            self.payload = Template(args.payload if args.payload else "${.}")
            self.qos = _simple(args.qos)
            self.retain = _simple(args.retain)
            self.direct = _simple(args.direct_dispatch)
            self.props = {k: Template(v) for k, v in args.mqtt_properties.items()}
            up = args.user_properties
            if up.strip() in ("${pub_props.'User-Property'}", "${.pub_props.'User-Property'}"):
                self.user_props = "original"  # (taken from the event, selected or not)
            elif up.startswith("${"):
                self.user_props = Template(up)
            else:
                self.user_props = None  # EMQX ignores anything else
        except TemplateError as e:
            raise ActionError(str(e)) from None

    def describe(self):
        return {"function": "republish", "args": self.args.model_dump(mode="json")}

    @staticmethod
    def _var(t, selected, default):
        return t.value(selected, default) if isinstance(t, Template) else t

    def run(self, broker, rule_id, selected, envs):
        if envs.get("headers", {}).get("republish_by") == rule_id:
            log.error("recursive_republish_detected: rule %s, topic %s", rule_id,
                      envs.get("topic"))
            return
        topic = self.topic.render(selected)
        payload = self.payload.render(selected)
        qos = self._var(self.qos, selected, 0)
        retain = self._var(self.retain, selected, False)
        direct = self._var(self.direct, selected, False)
        qos = int(qos) if not isinstance(qos, bool) else int(qos)
        if qos not in (0, 1, 2):
            raise ValueError(f"bad QoS {qos!r}")
        retain = retain if isinstance(retain, bool) else to_text(retain) == "true"
        direct = direct if isinstance(direct, bool) else to_text(direct) == "true"
        try:
            validate_topic_name(topic, broker.max_topic_levels)
        except MQTTError as e:
            raise ValueError(f"cannot republish to {topic!r}: {e}") from None
        props = self._user_props(selected, envs)
        for k, t in self.props.items():
            v = t.render(selected)
            if k in _INT_PROPS:
                try:
                    v = int(v)
                except ValueError:
                    log.debug("bad_mqtt_property_value_ignored: rule %s, %s=%r", rule_id, k, v)
                    continue
            elif k == "Correlation-Data":
                v = v.encode("utf-8", "surrogateescape")
            props[_PROPS[k]] = v
        msg = Message(topic, payload.encode("utf-8", "surrogateescape"), qos, retain,
                      props or None, sender=rule_id)
        flags = envs.get("flags")  # (a republish of a system message is one too, as in EMQX)
        msg.flags = REPUBLISHED | (1 if isinstance(flags, dict) and flags.get("sys") else 0)
        broker.metrics.c["messages.publish"] += 1
        broker.publish(msg, bypass_hooks=direct)

    def _user_props(self, selected, envs) -> dict:
        up = self.user_props
        if up is None:
            return {}
        if up == "original":
            pairs = (envs.get("pub_props") or {}).get("User-Property") or {}
        else:
            pairs = up.value(selected, {})
        if not isinstance(pairs, dict) or not pairs:
            return {}
        return {"user_property": [(str(k), v if isinstance(v, str) else to_text(v))
                                  for k, v in pairs.items()]}


def parse(conf):
    """One configured action (emqpy.config.rule_engine's union) -> an action object."""
    if isinstance(conf, str):
        return DataIntegrationAction(conf)
    fn = conf.function
    if fn == "republish":
        return RepublishAction(conf.args)
    if fn in ("console", "emqx_rule_actions:console"):
        return ConsoleAction()
    if ":" in fn and fn.count(":") > 1:
        raise ActionError("invalid_action_function")
    raise ActionError(f"unknown_action_function: {fn}")

