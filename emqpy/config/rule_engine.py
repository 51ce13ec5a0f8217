"""EMQX 5.8.1 config root ``rule_engine`` (emqx_rule_engine_schema): the engine's settings and
the rules themselves (``rule_engine.rules.<id>``), which is where EMQX keeps every rule, also
those created through the REST API.

The SQL of a rule is text here: the rule engine feature compiles it (and skips, logging, a rule
whose SQL it cannot compile, as the authz feature does with a bad source). An action is EMQX's
union: a data-integration action id (``"http:my_action"``), or an object whose ``function``
picks the built-in ``republish`` / ``console`` or a user-provided ``module:function``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Discriminator, Tag

from .base import Section
from .types import TimeoutDuration


def _qos(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError(f"expected a QoS (0, 1, 2) or a template, got {v!r}")
    if isinstance(v, int) and not 0 <= v <= 2:
        raise ValueError(f"expected a QoS (0, 1, 2) or a template, got {v!r}")
    if not isinstance(v, (int, str)):
        raise ValueError(f"expected a QoS (0, 1, 2) or a template, got {v!r}")
    return v


def _bool_or_template(v: Any) -> Any:
    if not isinstance(v, (bool, str)):
        raise ValueError(f"expected a boolean or a template, got {v!r}")
    return v


QosOrTemplate = Annotated[Union[int, str], BeforeValidator(_qos)]
BoolOrTemplate = Annotated[Union[bool, str], BeforeValidator(_bool_or_template)]


MQTT_PROPERTY_KEYS = ("Payload-Format-Indicator", "Message-Expiry-Interval", "Content-Type",
                      "Response-Topic", "Correlation-Data")


def _mqtt_properties(v: Any) -> Any:
    if not isinstance(v, dict):
        raise ValueError(f"expected an object, got {v!r}")
    for k, t in v.items():
        if k not in MQTT_PROPERTY_KEYS:
            raise ValueError(f"unknown MQTT property {k!r} (one of {', '.join(MQTT_PROPERTY_KEYS)})")
        if not isinstance(t, str):
            raise ValueError(f"{k}: expected a template string, got {t!r}")
    return v


# MQTT 5 PUBLISH properties of a republished message, each a template (EMQX's names as keys).
RepublishMqttProperties = Annotated[dict[str, str], BeforeValidator(_mqtt_properties)]


class RepublishArgs(Section):
    topic: str
    qos: QosOrTemplate = "${qos}"
    retain: BoolOrTemplate = "${retain}"
    payload: str = "${payload}"
    mqtt_properties: RepublishMqttProperties = {}
    user_properties: str = "${user_properties}"
    direct_dispatch: BoolOrTemplate = False


class RepublishAction(Section):
    function: Literal["republish"]
    args: RepublishArgs


class ConsoleAction(Section):
    hidden_fields = frozenset({"args"})

    function: Literal["console"]
    # EMQX keeps accepting (and ignoring) args here: rules saved before 5.2.1 may carry them.
    args: dict[str, Any] = {}


class FunctionAction(Section):
    """A user-provided ``module:function`` (EMQX: an Erlang function). The rule engine refuses
    the functions it does not have."""

    function: str
    args: dict[str, Any] = {}


def _action_kind(v: Any) -> str | None:
    if isinstance(v, str):
        return "id"
    if isinstance(v, (dict, Section)):
        fn = v.get("function") if isinstance(v, dict) else v.function
        if fn == "republish":
            return "republish"
        if fn == "console":
            return "console"
        if isinstance(fn, str):
            return "function"
    return None  # pydantic: "unable to extract tag" (EMQX: "unknown action type")


def _republish_defaults(v: Any) -> Any:
    # EMQX: args default to {} (then topic is required inside)
    if isinstance(v, dict) and v.get("function") == "republish" and "args" not in v:
        return {**v, "args": {}}
    return v


Action = Annotated[
    Union[Annotated[str, Tag("id")], Annotated[RepublishAction, Tag("republish")],
          Annotated[ConsoleAction, Tag("console")], Annotated[FunctionAction, Tag("function")]],
    Discriminator(_action_kind, custom_error_type="invalid_action",
                  custom_error_message="unknown action type"),
    BeforeValidator(_republish_defaults),
]


class Rule(Section):
    """One rule, ``rule_engine.rules.<id>``."""

    name: str = ""
    sql: str
    actions: list[Action] = []
    enable: bool = True
    description: str = ""
    # EMQX: "Rule metadata, do not change manually"; the API stores created_at (ms) here.
    metadata: dict[str, Any] | None = None


class RuleEngine(Section):
    """Root ``rule_engine``."""

    hidden_fields = frozenset({"jq_implementation_module"})

    ignore_sys_message: bool = True
    jq_function_default_timeout: TimeoutDuration = "10s"
    # deprecated since EMQX 5.0.22, hidden; accepted so that old configs load
    jq_implementation_module: Literal["jq_nif", "jq_port"] = "jq_nif"
    rules: dict[str, Rule] = {}
