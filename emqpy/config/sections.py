"""EMQX 5.8.1 config roots other than listeners and dashboard.

Field names are EMQX's keys; defaults are EMQX 5.8.1's (``components.schemas``
of its OpenAPI document, e.g. ``emqx.mqtt``), written in EMQX's own syntax and
parsed at validation.  See ``types`` for the stored forms ("15s" -> 15.0,
"1MB" -> 1048576, "infinity" -> math.inf, "disabled" -> None).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema, model_validator

from .base import Section
from .types import (
    ByteSize,
    ByteSizeOrDisabled,
    ByteSizeOrInfinity,
    Duration,
    DurationOrDisabled,
    DurationOrInfinity,
    DurationS,
    Percent,
    Rate,
    TimeoutDuration,
    TimeoutDurationOrInfinity,
    count_or_infinity,
)


def _no_bool(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError(f"expected a number, got {v!r}")
    return v


def Int(ge: int | None = None, le: int | None = None):
    """An int (booleans rejected) within [ge, le]."""
    return Annotated[int, BeforeValidator(_no_bool), Field(ge=ge, le=le)]


def Number(ge: float | None = None, le: float | None = None):
    return Annotated[float, BeforeValidator(_no_bool), Field(ge=ge, le=le)]


LogLevel = Literal["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency", "all"]
PeerCertAs = Literal["disabled", "cn", "dn", "crt", "pem", "md5"]


# ---------------------------------------------------------------- mqtt


def _server_keepalive(v: Any) -> int | None:
    if v in ("disabled", None):
        return None
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"expected a positive integer or 'disabled', got {v!r}")
    return v


# Seconds, or None for "disabled" (use the client's keepalive).
ServerKeepalive = Annotated[
    int | None,
    PlainValidator(_server_keepalive),
    PlainSerializer(lambda v: "disabled" if v is None else v),  # raw "disabled" passes as is
    WithJsonSchema({"oneOf": [{"type": "string", "enum": ["disabled"]}, {"type": "integer", "minimum": 1}]}),
]


def _mqueue_priorities(v: Any) -> dict[str, int] | None:
    if v in ("disabled", None):
        return None
    if not isinstance(v, dict):
        raise ValueError(f"expected a map of topic to priority or 'disabled', got {v!r}")
    out = {}
    for topic, prio in v.items():
        if isinstance(prio, bool) or not isinstance(prio, int) or not 1 <= prio <= 255:
            raise ValueError(f"priority of {topic!r} must be an integer 1..255, got {prio!r}")
        out[str(topic)] = prio
    return out


# Topic -> priority 1..255, or None for "disabled".
MqueuePriorities = Annotated[
    dict[str, int] | None,
    PlainValidator(_mqueue_priorities),
    PlainSerializer(lambda v: "disabled" if v is None else v if isinstance(v, str) else dict(v)),
    WithJsonSchema({"oneOf": [{"type": "object", "example": {}}, {"type": "string", "enum": ["disabled"]}]}),
]


class ClientAttrsInit(Section):
    expression: str
    set_as_attr: str


class Mqtt(Section):
    """Root ``mqtt``.  Stored forms: ``idle_timeout``/``retry_interval``/
    ``message_expiry_interval`` float seconds or ``math.inf``;
    ``server_keepalive`` int seconds or None ("disabled");
    ``max_awaiting_rel``/``max_mqueue_len``/``max_subscriptions`` int or
    ``math.inf``; ``mqueue_priorities`` dict or None ("disabled");
    ``max_packet_size`` int bytes.  ``peer_cert_as_*`` keep their enum text
    ("disabled" included) since it selects a mode rather than a value."""

    # keys emqpy adds to EMQX's (documented as x-emqpy-extension in the schema)
    extension_fields: ClassVar[frozenset[str]] = frozenset({"overlapping_subscriptions"})

    idle_timeout: DurationOrInfinity = "15s"
    max_packet_size: Annotated[ByteSize, Field(ge=1, le=268435456)] = "1MB"
    max_clientid_len: Int(23, 65535) = 65535
    max_topic_levels: Int(1, 65535) = 128
    max_topic_alias: Int(0, 65535) = 65535
    retain_available: bool = True
    wildcard_subscription: bool = True
    shared_subscription: bool = True
    shared_subscription_strategy: Literal[
        "random", "round_robin", "round_robin_per_group", "sticky", "local", "hash_topic", "hash_clientid"
    ] = "round_robin"
    shared_subscription_initial_sticky_pick: Literal["random", "local", "hash_topic", "hash_clientid"] = "random"
    exclusive_subscription: bool = False
    ignore_loop_deliver: bool = False
    strict_mode: bool = False
    response_information: str = ""
    server_keepalive: ServerKeepalive = "disabled"
    keepalive_multiplier: Number(1.0, 65535.0) = 1.5
    keepalive_check_interval: TimeoutDuration = "30s"
    retry_interval: TimeoutDurationOrInfinity = "infinity"
    use_username_as_clientid: bool = False
    peer_cert_as_username: PeerCertAs = "disabled"
    peer_cert_as_clientid: PeerCertAs = "disabled"
    client_attrs_init: list[ClientAttrsInit] = []
    session_expiry_interval: Duration = "2h"
    message_expiry_interval: DurationOrInfinity = "infinity"
    max_awaiting_rel: count_or_infinity(0) = 100
    max_qos_allowed: Int(0, 2) = 2
    mqueue_priorities: MqueuePriorities = "disabled"
    mqueue_default_priority: Literal["highest", "lowest"] = "lowest"
    mqueue_store_qos0: bool = True
    max_mqueue_len: count_or_infinity(0) = 1000
    max_inflight: Int(1, 65535) = 32
    max_subscriptions: count_or_infinity(1) = "infinity"
    upgrade_qos: bool = False
    await_rel_timeout: Duration = "300s"
    # emqpy extension (not in EMQX): one copy per matching subscription (EMQX) or one per client
    overlapping_subscriptions: Annotated[
        Literal["per_subscription", "single"],
        Field(json_schema_extra={"x-emqpy-extension": True, "description": (
            "emqpy extension. What a client subscribed through several matching topic "
            "filters receives: `per_subscription` one copy per subscription (as EMQX), "
            "`single` one copy at the highest QoS of those subscriptions, carrying all their "
            "Subscription Identifiers (MQTT 5 3.3.4).")})] = "per_subscription"

    @model_validator(mode="before")
    @classmethod
    def _backoff_to_multiplier(cls, data: Any) -> Any:
        # keepalive_backoff is EMQX's deprecated key: multiplier = 2 x backoff,
        # unless a non-default multiplier is given.
        if isinstance(data, dict) and "keepalive_backoff" in data:
            data = dict(data)
            backoff = data.pop("keepalive_backoff")
            mult = data.get("keepalive_multiplier", 1.5)
            if isinstance(mult, (int, float)) and round(mult * 100) == 150:
                if isinstance(backoff, bool) or not isinstance(backoff, (int, float)):
                    raise ValueError(f"keepalive_backoff: expected a number, got {backoff!r}")
                data["keepalive_multiplier"] = backoff * 2
        return data


# ---------------------------------------------------------------- sys_topics, broker


class EventNames(Section):
    client_connected: bool = True
    client_disconnected: bool = True
    client_subscribed: bool = False
    client_unsubscribed: bool = False


class SysTopics(Section):
    """Root ``sys_topics``; intervals are float seconds or None ("disabled")."""

    sys_msg_interval: DurationOrDisabled = "1m"
    sys_heartbeat_interval: DurationOrDisabled = "30s"
    sys_event_messages: EventNames = EventNames()


class Broker(Section):
    """Root ``broker``.  ``session_history_retain`` is EMQX ``duration_s``
    (bare integers are seconds)."""

    ignored_keys = frozenset(
        {
            "session_locking_strategy",
            "shared_subscription_strategy",
            "shared_dispatch_ack_enabled",
            "route_batch_clean",
            "perf",
            "routing",
            "shared_subscription_group",
        }
    )

    enable_session_registry: bool = True
    session_history_retain: DurationS = "0s"


class FlappingDetect(Section):
    enable: bool = False
    window_time: Duration = "1m"
    max_count: Int(0) = 15
    ban_time: Duration = "5m"


class Alarm(Section):
    actions: list[Literal["log", "publish"]] = ["log", "publish"]
    size_limit: Int(1, 3000) = 1000
    validity_period: Duration = "24h"


class SysmonVm(Section):
    """``long_gc``/``long_schedule`` float seconds or None; ``large_heap``
    int bytes or None ("disabled"); watermarks are fractions (0.8 = "80%")."""

    process_check_interval: Duration = "30s"
    process_high_watermark: Percent = "80%"
    process_low_watermark: Percent = "60%"
    long_gc: DurationOrDisabled = "disabled"
    long_schedule: DurationOrDisabled = "240ms"
    large_heap: ByteSizeOrDisabled = "32MB"
    busy_dist_port: bool = True
    busy_port: bool = True


class SysmonOs(Section):
    cpu_check_interval: Duration = "60s"
    cpu_high_watermark: Percent = "80%"
    cpu_low_watermark: Percent = "60%"
    mem_check_interval: DurationOrDisabled = "60s"
    sysmem_high_watermark: Percent = "70%"
    procmem_high_watermark: Percent = "5%"


class Sysmon(Section):
    ignored_keys = frozenset({"top"})

    vm: SysmonVm = SysmonVm()
    os: SysmonOs = SysmonOs()


class ForceShutdown(Section):
    enable: bool = True
    max_mailbox_size: Int(0) = 1000
    max_heap_size: ByteSize = "32MB"


class ForceGc(Section):
    enable: bool = True
    count: Int(0) = 16000
    bytes: ByteSize = "16MB"


# ---------------------------------------------------------------- log


class ConsoleHandler(Section):
    level: LogLevel = "warning"
    enable: bool = True
    formatter: Literal["text", "json"] = "text"
    timestamp_format: Literal["auto", "epoch", "rfc3339"] = "auto"
    time_offset: str = "system"
    payload_encode: Literal["hex", "text", "hidden"] = "text"


class LogThrottling(Section):
    ignored_keys = frozenset({"msgs"})

    time_window: Duration = "1m"


class FileHandler(Section):
    """``log.file.<name>``: a rotated log file (emqpy.config.loghandlers applies it)."""

    path: str = "${EMQX_LOG_DIR}/emqx.log"
    rotation_count: Int(1, 128) = 10
    rotation_size: ByteSizeOrInfinity = "50MB"
    level: LogLevel = "warning"
    enable: bool = False
    formatter: Literal["text", "json"] = "text"
    timestamp_format: Literal["auto", "epoch", "rfc3339"] = "auto"
    time_offset: str = "system"
    payload_encode: Literal["hex", "text", "hidden"] = "text"

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        # EMQX's older names: file/to (path), rotation (count, or {count}), max_size
        if isinstance(data, dict) and not _FILE_ALIASES.isdisjoint(data):
            data = dict(data)
            for old, new in (("file", "path"), ("to", "path"), ("max_size", "rotation_size"),
                             ("rotation", "rotation_count")):
                if old in data:
                    value = data.pop(old)
                    if old == "rotation" and isinstance(value, dict):
                        value = value.get("count", 10)
                    data.setdefault(new, value)
        return data


_FILE_ALIASES = frozenset({"file", "to", "max_size", "rotation"})
_FILE_KEYS = frozenset(FileHandler.model_fields) | _FILE_ALIASES


def _file_handlers(v: Any) -> Any:
    """EMQX's two forms of ``log.file``: one handler's keys (the handler ``default``) and/or
    named handlers; a named ``default`` wins over the unnamed keys."""
    if not isinstance(v, dict):
        return v
    unnamed = {k: x for k, x in v.items() if k in _FILE_KEYS}
    named = {k: x for k, x in v.items() if k not in _FILE_KEYS}
    if unnamed:
        default = named.get("default")
        named["default"] = {**unnamed, **default} if isinstance(default, dict) else unnamed
    return named


class Log(Section):
    """Root ``log``: the console handler and the file handlers, applied to Python's logging
    by emqpy.config.loghandlers."""

    ignored_keys = frozenset({"audit"})

    console: ConsoleHandler = ConsoleHandler()
    file: Annotated[dict[str, FileHandler], BeforeValidator(_file_handlers)] = {
        "level": "warning"}
    throttling: LogThrottling = LogThrottling()


# ---------------------------------------------------------------- retainer


class RetainerBackend(Section):
    type: Literal["built_in_database"] = "built_in_database"
    storage_type: Literal["ram", "disc"] = "ram"
    max_retained_messages: Int(0) = 0
    index_specs: list[list[Int(1)]] = [[1, 2, 3], [1, 3], [2, 3], [3]]
    enable: bool = True


class Retainer(Section):
    """Root ``retainer``.  ``msg_expiry_interval``/``msg_clear_interval`` are
    float seconds where 0 means never; ``delivery_rate`` keeps EMQX's rate text
    ("1000/s" or "infinity")."""

    ignored_keys = frozenset({"flow_control", "external_backends"})

    enable: bool = True
    msg_expiry_interval: Duration = "0s"
    msg_clear_interval: TimeoutDuration = "0s"
    max_payload_size: ByteSize = "1MB"
    stop_publish_clear_msg: bool = False
    delivery_rate: Rate = "1000/s"
    backend: RetainerBackend = RetainerBackend()

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "deliver_rate" in data:  # EMQX alias
            data = dict(data)
            data.setdefault("delivery_rate", data.pop("deliver_rate"))
            data.pop("deliver_rate", None)
        return data


# ---------------------------------------------------------------- durable_sessions


class DurableSessions(Section):
    """Root ``durable_sessions`` (emqpy/durable): persistent sessions kept in the data dir.

    ``enable`` is on by default, unlike EMQX (whose durable storage is experimental and off):
    emqpy promises that a session with a non-zero expiry and its QoS 1/2 messages survive a
    restart or a crash (tests/config/test_defaults.py documents the deviation). It is read at
    start. The other keys tune EMQX's durable storage (polling, heartbeats, GC batches,
    retention), which emqpy's session journal does not have: accepted, shown, unused."""

    enable: bool = True
    batch_size: Int(1) = 100
    idle_poll_interval: Duration = "10s"
    heartbeat_interval: Duration = "5000ms"
    session_gc_interval: Duration = "10m"
    session_gc_batch_size: Int(1) = 100
    message_retention_period: Duration = "1d"


# ---------------------------------------------------------------- node, api_key


def _process_workers(value):
    if value == "auto":
        return value
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 256:
        return value
    raise ValueError(f'expected a number of processes from 1 to 256, or "auto"; got {value!r}')


class Node(Section):
    """Root ``node``.  Only name, cookie and data_dir mean anything to emqpy;
    EMQX's Erlang VM and clustering knobs are accepted and ignored."""

    ignored_keys = frozenset(
        {
            "process_limit",
            "max_ports",
            "dist_buffer_size",
            "max_ets_tables",
            "config_files",
            "global_gc_interval",
            "crash_dump_file",
            "crash_dump_seconds",
            "crash_dump_bytes",
            "dist_net_ticktime",
            "backtrace_depth",
            "applications",
            "etc_dir",
            "cluster_call",
            "db_backend",
            "role",
            "rpc_module",
            "tlog_push_mode",
            "default_shard_transport",
            "shard_transports",
            "default_bootstrap_batch_size",
            "broker_pool_size",
            "generic_pool_size",
            "channel_cleanup_batch_size",
        }
    )

    sensitive_fields = frozenset({"cookie"})

    name: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] = "emqx@127.0.0.1"
    cookie: str = "emqxsecretcookie"
    data_dir: str = "data"
    # emqpy's key: how many broker processes `emqpy start` runs on this machine, clustered, on
    # the same MQTT ports (SO_REUSEPORT); "auto" = one per core. 1: one process, as before.
    process_workers: Annotated[int | str, BeforeValidator(_process_workers)] = 1


class ApiKey(Section):
    bootstrap_file: str = ""


class ClusterStatic(Section):
    model_config = ConfigDict(extra="allow")
    seeds: list[str] = []


class ClusterNatsTls(Section):
    """emqpy's keys ``cluster.nats.tls``: TLS to the servers of ``cluster.nats.servers`` (an
    existing NATS), named as EMQX's client ``ssl`` options. Off: a ``tls://`` server URL still
    uses TLS, with the cluster's certificates (``rpc.*``) when ``rpc.protocol = ssl``."""

    sensitive_fields = frozenset({"password"})

    enable: bool = False
    cacertfile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    password: str | None = None  # of the key file
    verify: Literal["verify_peer", "verify_none"] = "verify_peer"
    server_name_indication: str | None = None  # "disable", or the name to expect


class ClusterNats(Section):
    """emqpy's keys (EMQX clusters over Erlang distribution): the NATS cluster that carries the
    nodes' traffic. ``servers`` empty: each node runs its own nats-server (ports: the base
    ports 4222 and 6222 plus the number the node's name ends in, unless set here)."""
    servers: list[str] = []
    host: str = ""
    client_port: int = 0
    cluster_port: int = 0
    tls: ClusterNatsTls = ClusterNatsTls()


class Cluster(Section):
    """Root ``cluster``: ``name``, and ``discovery_strategy = static`` with ``static.seeds``
    forms a cluster over NATS (emqpy/cluster); the other discovery settings (``dns``,
    ``autoclean``, ...) are kept as given."""

    model_config = ConfigDict(extra="allow")

    name: str = "emqxcl"
    discovery_strategy: Literal["manual", "static", "dns", "etcd", "k8s", "mcast", "singleton"] = "manual"
    static: ClusterStatic = ClusterStatic()
    nats: ClusterNats = ClusterNats()
    # emqpy's key: the port of the join listener (manual discovery's invitations); 0: 4370 plus
    # the number the node's name ends in, as EMQX's distribution port
    join_port: Annotated[int, Field(ge=0, le=65535)] = 0
    # emqpy's key (hidden, as EMQX's node.dist_net_ticktime): a node whose heartbeats (one a
    # second) have not come for this long counts as stopped, and its routes are dropped
    down_after: Duration = "10s"

    hidden_fields = frozenset({"down_after"})

    @model_validator(mode="after")
    def _check_down_after(self) -> "Cluster":
        if self.down_after < 2:
            raise ValueError("cluster.down_after must be at least 2s (a heartbeat is sent "
                             "every second)")
        return self


_RPC_ALIASES = {"driver": "protocol", "tcp_server_port": "server_port",
                "ssl_server_port": "server_port", "tcp_client_num": "client_num"}


class Rpc(Section):
    """Root ``rpc`` (EMQX's gen_rpc between nodes). emqpy reads ``protocol`` (EMQX's alias
    ``driver``) and the three files: ``ssl`` puts the traffic between nodes (NATS routes, a
    node's non-loopback NATS connection, the join listener) under mutual TLS with the cluster's
    CA (docs/cluster.md). The other keys tune gen_rpc and are kept as given."""

    mode: Literal["sync", "async"] = "async"
    protocol: Literal["tcp", "ssl"] = "tcp"
    async_batch_size: int = 256
    port_discovery: Literal["manual", "stateless"] = "stateless"
    server_port: Int(1, 65535) = 5369
    client_num: Int(1, 256) = 10
    connect_timeout: Duration = "5s"
    certfile: str | None = None
    keyfile: str | None = None
    cacertfile: str | None = None
    send_timeout: Duration = "5s"
    authentication_timeout: Duration = "5s"
    call_receive_timeout: Duration = "15s"
    socket_keepalive_idle: DurationS = "15m"
    socket_keepalive_interval: DurationS = "75s"
    socket_keepalive_count: int = 9
    socket_sndbuf: ByteSize = "1MB"
    socket_recbuf: ByteSize = "1MB"
    socket_buffer: ByteSize = "1MB"
    insecure_fallback: bool = True
    ciphers: list[str] = []
    tls_versions: list[Literal["tlsv1.3", "tlsv1.2", "tlsv1.1", "tlsv1"]] = ["tlsv1.3", "tlsv1.2"]
    listen_address: str = "0.0.0.0"
    ipv6_only: bool = False

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict) and not _RPC_ALIASES.keys().isdisjoint(data):
            data = dict(data)
            for old, new in _RPC_ALIASES.items():
                if old in data:
                    data.setdefault(new, data.pop(old))
        return data

    @model_validator(mode="after")
    def _ssl_needs_files(self) -> "Rpc":
        if self.protocol == "ssl":
            for key in ("certfile", "keyfile", "cacertfile"):
                if not getattr(self, key):
                    raise ValueError(f"{key} is required with protocol = ssl "
                                     "(mutual TLS between nodes)")
            if not self.tls_versions:
                raise ValueError("tls_versions: empty")
        return self


class OverloadProtection(Section):
    """Root ``overload_protection`` (off by default; emqpy reports ``enable`` in its metrics)."""

    enable: bool = False
    backoff_delay: Int(0, 120000) = 1
    backoff_gc: bool = False
    backoff_hibernation: bool = True
    backoff_new_conn: bool = True


