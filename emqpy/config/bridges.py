"""Roots ``connectors`` and ``actions`` (EMQX 5.8.1's data integration): each a map
type -> name -> config, as EMQX writes them (``connectors.http.my_conn {url = ...}``).

Modelled types: ``http`` (the webhook connector and action) and ``mqtt`` (a remote broker). Types emqpy does not model yet are
kept as given (``model_extra``) so an emqx.conf that has them still loads; the bridge feature
logs and skips them. Names follow EMQX's rule (a letter or digit, then letters, digits, ``_``
and ``-``; under 255 characters).
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from .base import Section
from .listeners import _SSL_LOG_LEVEL, _TLS_VERSIONS, Ciphers
from .sections import Int
from .types import ByteSize, Duration, DurationOrInfinity, TimeoutDuration

NAME = re.compile(r"[0-9a-zA-Z][-0-9a-zA-Z_]*")
# EMQX's default request headers of an HTTP connector and of an HTTP action's parameters.
DEFAULT_HEADERS = {"accept": "application/json", "cache-control": "no-cache",
                   "connection": "keep-alive", "content-type": "application/json",
                   "keep-alive": "timeout=5"}


def name_problem(name: str) -> str | None:
    """EMQX's complaint about a connector/action name, or None when it is valid."""
    if not name:
        return "Name cannot be empty string"
    if len(name) >= 255:
        return "Name length must be less than 255"
    if not NAME.fullmatch(name):
        return ("Invalid name format. The name must begin with a letter or number (0-9, a-z, "
                "A-Z) and can only include underscores and hyphens as non-initial characters. "
                f"Got: {name}")
    return None


def _check_names(value: dict) -> dict:
    for name in value:
        problem = name_problem(name)
        if problem:
            raise ValueError(f"{name!r}: {problem}")
    return value


class ClientSsl(Section):
    """EMQX's client TLS options (``ssl`` of a connector)."""

    ignored_keys = frozenset({"user_lookup_fun"})
    sensitive_fields = frozenset({"password"})

    enable: bool = False
    cacertfile: str | None = None
    cacerts: bool = False
    certfile: str | None = None
    keyfile: str | None = None
    verify: Literal["verify_peer", "verify_none"] = "verify_none"
    reuse_sessions: bool = True
    depth: Int(0) = 10
    password: str | None = None
    versions: list[_TLS_VERSIONS] = ["tlsv1.3", "tlsv1.2"]
    ciphers: Ciphers = []
    secure_renegotiate: bool = True
    log_level: _SSL_LOG_LEVEL = "notice"
    hibernate_after: Duration = "5s"
    server_name_indication: str | None = None  # "disable", or the name to send


def _health_check_interval(v: float) -> float:
    if not 0.001 <= v <= 3600:
        raise ValueError(f"Health Check Interval ({v * 1000:g}ms) is out of range "
                         "(1ms to 3600000ms)")
    return v


class ConnectorResourceOpts(Section):
    health_check_interval: Duration = "15s"
    start_after_created: bool = True
    start_timeout: Duration = "5s"

    _hc = field_validator("health_check_interval")(classmethod(
        lambda cls, v: _health_check_interval(v)))


class HttpConnector(Section):
    """``connectors.http.<name>``."""

    # deprecated in EMQX (5.0.4): accepted and unused
    ignored_keys = frozenset({"retry_interval"})

    enable: bool = True
    tags: list[str] | None = None
    description: str = ""
    url: str
    headers: dict[str, str] = DEFAULT_HEADERS
    connect_timeout: TimeoutDuration = "15s"
    pool_type: Literal["random", "hash"] = "random"
    pool_size: Int(1) = 8
    enable_pipelining: Int(1) = 100
    request: dict[str, Any] | None = None  # deprecated since EMQX 5.3.2, kept as given
    ssl: ClientSsl = ClientSsl()
    resource_opts: ConnectorResourceOpts = ConnectorResourceOpts()

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        from urllib.parse import urlsplit
        u = urlsplit(v)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"invalid url {v!r}: expected http://host[:port][/path] or "
                             "https://...")
        try:
            u.port
        except ValueError:
            raise ValueError(f"invalid url {v!r}: bad port") from None
        return v


class HttpActionParameters(Section):
    path: str | None = None
    method: Literal["post", "put", "get", "delete"] = "post"
    headers: dict[str, str] = DEFAULT_HEADERS
    body: str | None = None  # None: the rule's whole output as JSON
    max_retries: Int(0) = 2
    request_timeout: TimeoutDuration = "15s"  # deprecated in EMQX; request_ttl bounds a request

    @field_validator("method", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v


class ActionResourceOpts(Section):
    """An HTTP action's ``resource_opts`` (EMQX has no batching for HTTP actions)."""

    hidden_fields = frozenset({"buffer_mode", "buffer_seg_bytes", "metrics_flush_interval",
                               "resume_interval"})
    # In EMQX 5.3.0 these were accepted on actions by mistake; EMQX drops them since 5.4.0.
    ignored_keys = frozenset({"start_after_created", "start_timeout"})

    buffer_mode: Literal["memory_only", "volatile_offload"] = "memory_only"
    buffer_seg_bytes: ByteSize | None = None
    health_check_interval: Duration = "15s"
    inflight_window: Int(1) = 100
    max_buffer_bytes: ByteSize = "256MB"
    metrics_flush_interval: Duration | None = None
    query_mode: Literal["sync", "async"] = "async"
    request_ttl: DurationOrInfinity = "45s"
    resume_interval: Duration | None = None
    worker_pool_size: Int(1, 1024) = 16

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        # EMQX's older names for the same options
        if isinstance(data, dict):
            for old, new in (("request_timeout", "request_ttl"),
                             ("async_inflight_window", "inflight_window"),
                             ("max_queue_bytes", "max_buffer_bytes")):
                if old in data:
                    data = dict(data)
                    data.setdefault(new, data[old])
                    del data[old]
        return data

    _hc = field_validator("health_check_interval")(classmethod(
        lambda cls, v: _health_check_interval(v)))


class _Action(Section):
    """What every ``actions.<type>.<name>`` has; each type adds its ``parameters``."""

    hidden_fields = frozenset({"local_topic"})

    enable: bool = True
    connector: str
    tags: list[str] | None = None
    description: str = ""
    local_topic: str | None = None
    resource_opts: ActionResourceOpts = ActionResourceOpts()


class HttpAction(_Action):
    """``actions.http.<name>``."""

    parameters: HttpActionParameters


def parse_server(v: str, default_port: int = 1883) -> tuple[str, int]:
    """EMQX's `server` of an MQTT connector: `host[:port]` (one server; IPv6 as `[::1]:1883`)."""
    v = v.strip()
    if "://" in v:
        raise ValueError(f"invalid server {v!r}: expected host[:port], without a scheme")
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\](?::(\d+))?|([^:\[\]\s,]+)(?::(\d+))?", v)
    if not m:
        raise ValueError(f"invalid server {v!r}: expected host[:port]")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4) or default_port)
    if not 0 < port < 65536:
        raise ValueError(f"invalid server {v!r}: bad port")
    return host, port


class MqttConnector(Section):
    """``connectors.mqtt.<name>``: a pool of clients to one remote broker."""

    sensitive_fields = frozenset({"password"})
    # deprecated in EMQX (mode since 5.1.0, reconnect_interval since 5.0.16): accepted, unused
    ignored_keys = frozenset({"mode", "reconnect_interval"})

    enable: bool = True
    tags: list[str] | None = None
    description: str = ""
    server: str
    clientid_prefix: str | None = None
    proto_ver: Literal["v3", "v4", "v5"] = "v4"
    bridge_mode: bool = False
    username: str | None = None
    password: str | None = None
    clean_start: bool = True
    keepalive: Duration = "160s"
    retry_interval: Duration = "15s"
    max_inflight: Int(0) = 32
    pool_size: Int(1) = 8
    ssl: ClientSsl = ClientSsl()
    resource_opts: ConnectorResourceOpts = ConnectorResourceOpts()

    @field_validator("server")
    @classmethod
    def _server(cls, v: str) -> str:
        parse_server(v)
        return v


class EgressLocal(Section):
    """A v1 MQTT bridge's ``egress.local``, kept (hidden) in its action's parameters."""

    topic: str | None = None


class MqttActionParameters(Section):
    """``actions.mqtt.<name>.parameters`` (EMQX's egress_remote)."""

    hidden_fields = frozenset({"local"})  # hidden in EMQX: the local topic of a v1 bridge

    local: EgressLocal = EgressLocal()
    topic: str
    qos: Int(0, 2) | str = 1  # a number or a template such as "${qos}"
    retain: bool | str = False  # a boolean or a template such as "${flags.retain}"
    payload: str | None = None  # None: the rule's whole output as JSON

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        if not v:
            raise ValueError("topic: must not be empty")
        return v


class MqttAction(_Action):
    """``actions.mqtt.<name>``."""

    parameters: MqttActionParameters


class IngressLocal(Section):
    """A v1 MQTT bridge's ``ingress.local``: where a received message is published in the
    local broker (nowhere without a topic); templates over the received message."""

    topic: str | None = None
    qos: Int(0, 2) | str = "${qos}"
    retain: bool | str = "${retain}"
    payload: str | None = None


class MqttSourceParameters(Section):
    """``sources.mqtt.<name>.parameters`` (EMQX's ingress_remote)."""

    hidden_fields = frozenset({"local"})  # hidden in EMQX: the local republish of a v1 bridge

    local: IngressLocal = IngressLocal()
    topic: str
    qos: Int(0, 2) = 1

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        from emqpy.mqtt.topic import validate_topic_filter
        try:
            validate_topic_filter(v)
        except Exception as e:
            raise ValueError(f"topic: {e}") from None
        return v


class SourceResourceOpts(Section):
    """A source's ``resource_opts`` (EMQX's source_resource_opts)."""

    hidden_fields = frozenset({"resume_interval"})

    health_check_interval: Duration = "15s"
    resume_interval: Duration | None = None

    _hc = field_validator("health_check_interval")(classmethod(
        lambda cls, v: _health_check_interval(v)))


class MqttSource(Section):
    """``sources.mqtt.<name>``: remote topics whose messages feed rules
    (``FROM "$bridges/mqtt:<name>"``)."""

    enable: bool = True
    connector: str
    tags: list[str] | None = None
    description: str = ""
    parameters: MqttSourceParameters
    resource_opts: SourceResourceOpts = SourceResourceOpts()


class _TypeMap(Section):
    """A root of type -> name -> config; types not modelled are kept as given."""

    model_config = ConfigDict(extra="allow", frozen=True, validate_default=True,
                              populate_by_name=True, revalidate_instances="never")

    @model_validator(mode="after")
    def _names(self):
        for t in type(self).model_fields:
            _check_names(getattr(self, t))
        return self


class Connectors(_TypeMap):
    http: dict[str, HttpConnector] = Field(default_factory=dict)
    mqtt: dict[str, MqttConnector] = Field(default_factory=dict)


class Actions(_TypeMap):
    http: dict[str, HttpAction] = Field(default_factory=dict)
    mqtt: dict[str, MqttAction] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _webhook(cls, data: Any) -> Any:
        # `webhook` is EMQX's alias of the `http` action type
        if isinstance(data, dict) and "webhook" in data:
            data = dict(data)
            merged = dict(data.pop("webhook") or {})
            merged.update(data.get("http") or {})
            data["http"] = merged
        return data


class Sources(_TypeMap):
    mqtt: dict[str, MqttSource] = Field(default_factory=dict)


# Types whose config is modelled here (and so can be created over the API).
CONNECTOR_TYPES = ("http", "mqtt")
ACTION_TYPES = ("http", "mqtt")
# The connector type each action type runs on.
ACTION_CONNECTOR_TYPE = {"http": "http", "mqtt": "mqtt"}
SOURCE_TYPES = ("mqtt",)
SOURCE_MODELS = {"mqtt": MqttSource}
CONNECTOR_MODELS = {"http": HttpConnector, "mqtt": MqttConnector}
ACTION_MODELS = {"http": HttpAction, "mqtt": MqttAction}
