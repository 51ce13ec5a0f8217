"""``EmqxConfig``: the whole EMQX config, one attribute per root.

Attribute access uses EMQX's key names (``cfg.mqtt.max_inflight``,
``cfg.listeners.tcp["default"].bind.port``).  Models are frozen: runtime
changes go through ``update_root`` which validates and returns a new config.
Roots emqpy does not model (``gateway``, ...) are kept
unvalidated in ``cfg.model_extra`` and dumped as given; nothing reads them.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, model_validator

from .base import ConfigError, Section
from .bridges import Actions, Connectors, Sources
from .bridges_v1 import upgrade_bridges
from .features import AuthenticatorChain, Authorization, OpenTelemetry, Prometheus
from .listeners import TOMBSTONE, Dashboard, Listeners
from .modules import AutoSubscribe, Delayed, RewriteRule, SlowSubs, TopicMetrics
from .rule_engine import RuleEngine
from .secrets import MASK
from .sections import (
    Alarm,
    ApiKey,
    Broker,
    Cluster,
    DurableSessions,
    FlappingDetect,
    ForceGc,
    ForceShutdown,
    Log,
    Mqtt,
    Node,
    OverloadProtection,
    Retainer,
    Rpc,
    Sysmon,
    SysTopics,
)


class EmqxConfig(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, validate_default=True, revalidate_instances="never")

    node: Node = Node()
    mqtt: Mqtt = Mqtt()
    sys_topics: SysTopics = SysTopics()
    broker: Broker = Broker()
    flapping_detect: FlappingDetect = FlappingDetect()
    alarm: Alarm = Alarm()
    sysmon: Sysmon = Sysmon()
    force_shutdown: ForceShutdown = ForceShutdown()
    force_gc: ForceGc = ForceGc()
    log: Log = Log()
    retainer: Retainer = Retainer()
    dashboard: Dashboard = Dashboard()
    listeners: Listeners = Listeners()
    api_key: ApiKey = ApiKey()
    cluster: Cluster = Cluster()
    rpc: Rpc = Rpc()
    overload_protection: OverloadProtection = OverloadProtection()
    prometheus: Prometheus = Prometheus()
    authentication: AuthenticatorChain = []
    authorization: Authorization = Authorization()
    rule_engine: RuleEngine = RuleEngine()
    connectors: Connectors = Connectors()
    actions: Actions = Actions()
    sources: Sources = Sources()
    delayed: Delayed = Delayed()
    rewrite: list[RewriteRule] = []
    topic_metrics: TopicMetrics = []
    auto_subscribe: AutoSubscribe = AutoSubscribe()
    slow_subs: SlowSubs = SlowSubs()
    durable_sessions: DurableSessions = DurableSessions()
    opentelemetry: OpenTelemetry = OpenTelemetry()

    # EMQX's v1 root `bridges` becomes connectors and actions/sources (config/bridges_v1.py)
    _bridges_v1 = model_validator(mode="before")(classmethod(
        lambda cls, data: upgrade_bridges(data) if isinstance(data, dict) else data))

    def dump(self, root: str | None = None, *, redact: bool = False, hidden: bool = False) -> dict[str, Any]:
        """EMQX's JSON form (as ``GET /api/v5/configs`` shows it): durations
        and sizes as written (or canonical), sentinels as "infinity" /
        "disabled", unset optional keys left out.  ``root`` gives just that
        root's content.  ``redact`` masks secrets as "******" (for API
        output); ``hidden`` keeps keys EMQX hides from its API (use it, and no
        redaction, when saving with ``save_cluster_override``)."""
        return _dump(self, root, public=not hidden, redact=redact)


ROOTS: tuple[str, ...] = tuple(EmqxConfig.model_fields)
# Validates one root's value as its field does (the field's own before-validators included).
_ROOT_ADAPTERS = {name: TypeAdapter(Annotated[(f.annotation, *f.metadata)]) if f.metadata
                  else TypeAdapter(f.annotation) for name, f in EmqxConfig.model_fields.items()}


def _fix(model: BaseModel, data: dict, public: bool, redact: bool) -> None:
    """Post-process a JSON dump in place, walking the models alongside."""
    cls = type(model)
    if isinstance(model, Section):
        if public:
            for k in cls.hidden_fields:
                data.pop(k, None)
        if redact:
            for k in cls.sensitive_fields:
                if data.get(k) is not None:
                    data[k] = MASK
    for name in cls.model_fields:
        if name not in data:
            continue
        sub = data[name]
        if sub is None:
            del data[name]  # unset optional key: EMQX leaves it out
            continue
        value = model.__dict__[name]
        if isinstance(value, BaseModel):
            _fix(value, sub, public, redact)
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, BaseModel):
                    _fix(v, sub[k], public, redact)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, BaseModel):
                    _fix(v, sub[i], public, redact)
    if isinstance(model, Listeners):
        for ltype, names in model.deleted.items():
            for n in names:
                data.setdefault(ltype, {})[n] = TOMBSTONE


def _dump_value(value: BaseModel | list, public: bool, redact: bool) -> Any:
    if isinstance(value, list):  # a root that is an array (authentication)
        return [_dump_value(v, public, redact) for v in value]
    data = value.model_dump(mode="json")
    _fix(value, data, public, redact)
    return data


def _dump(cfg: EmqxConfig, root: str | None, *, public: bool, redact: bool = False) -> dict[str, Any]:
    if root is None:
        data = cfg.model_dump(mode="json")
        _fix(cfg, data, public, redact)
        return data
    if root in ROOTS:
        return _dump_value(cfg.__dict__[root], public, redact)
    extra = cfg.model_extra or {}
    if root in extra:
        return copy.deepcopy(extra[root])
    raise ConfigError(root, "unknown config root")


def deep_merge(base: dict, over: dict) -> dict:
    """HOCON object merge: nested dicts merge, anything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _error_path(loc: tuple, prefix: tuple = ()) -> str:
    return ".".join(str(p) for p in (*prefix, *loc))


def _problem(err: dict) -> str:
    etype = err["type"]
    if etype == "extra_forbidden":
        return "unknown key"
    if etype == "missing":
        return "required key missing"
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    inp = err.get("input")
    if inp is not None and not isinstance(inp, (dict, list)):
        msg = f"{msg}, got {inp!r}"
    return msg


def config_error(exc: ValidationError, prefix: tuple = ()) -> ConfigError:
    """One-line ConfigError for the first problem in a pydantic error."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    problem = _problem(first)
    if len(errors) > 1:
        problem += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ConfigError(_error_path(first["loc"], prefix), problem)


def validate_config(raw: dict[str, Any]) -> EmqxConfig:
    """Validate a raw (EMQX-shaped) config dict; ConfigError on bad input."""
    if not isinstance(raw, dict):
        raise ConfigError("", f"config must be an object, got {type(raw).__name__}")
    try:
        return EmqxConfig.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc) from None


def update_root(cfg: EmqxConfig, root: str, new: dict[str, Any]) -> EmqxConfig:
    """Apply a runtime change to one root (the PUT /configs case): ``new`` is
    deep-merged onto the root's current value, as EMQX does, validated, and a
    new EmqxConfig is returned; ``cfg`` is unchanged.  ConfigError names the
    bad key (``mqtt.max_inflight: ...``).  An array root (``authentication``)
    is replaced: use ``replace_root``."""
    if isinstance(cfg.__dict__.get(root), list):
        return replace_root(cfg, root, new)
    if not isinstance(new, dict):
        raise ConfigError(root, f"expected an object, got {type(new).__name__}")
    if root in ROOTS:
        return replace_root(cfg, root, deep_merge(_dump(cfg, root, public=False), new))
    extra = dict(cfg.model_extra or {})
    extra[root] = deep_merge(extra.get(root) or {}, new)
    data = {name: cfg.__dict__[name] for name in ROOTS}
    return EmqxConfig(**data, **extra)


def replace_root(cfg: EmqxConfig, root: str, new: dict[str, Any]) -> EmqxConfig:
    """Like ``update_root`` but ``new`` replaces the root (keys it leaves out get their
    defaults) instead of being merged onto it."""
    if root not in ROOTS:
        raise ConfigError(root, "unknown config root")
    try:
        value = _ROOT_ADAPTERS[root].validate_python(new)
    except ValidationError as exc:
        raise config_error(exc, (root,)) from None
    return cfg.model_copy(update={root: value})


def raw_config(cfg: EmqxConfig) -> dict[str, Any]:
    """Complete raw form (hidden keys included, nothing masked): feeding it
    back through ``validate_config`` gives an equal config."""
    return _dump(cfg, None, public=False)
