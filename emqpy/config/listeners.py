"""Roots ``listeners`` (tcp/ssl/ws/wss MQTT listeners) and ``dashboard``.

Each listener type is a map name -> listener, like EMQX.  As in EMQX, a
``default`` listener is always present unless the config sets it to
``"marked_for_deletion"``: ``tcp:default`` 1883, ``ssl:default`` 8883,
``ws:default`` 8083 and ``wss:default`` 8084 (the last two on path ``/mqtt``).  ``bind`` is a ``Bind`` (see ``types``): a string with
``.host``/``.port`` attributes.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import PlainValidator, PrivateAttr, WithJsonSchema, field_validator, model_validator

from .base import Section
from .sections import Int
from .types import BindType, ByteSize, CommaList, Duration, DurationS, Rate, count_or_infinity

TOMBSTONE = "marked_for_deletion"
LISTENER_TYPES = ("tcp", "ssl", "ws", "wss")
# Types whose "default" listener exists unless deleted (as in EMQX: all four).
DEFAULT_LISTENER_TYPES: tuple[str, ...] = LISTENER_TYPES

_TLS_VERSIONS = Literal["tlsv1.3", "tlsv1.2", "tlsv1.1", "tlsv1"]
_SSL_LOG_LEVEL = Literal["emergency", "alert", "critical", "error", "warning", "notice", "info", "debug", "none", "all"]
_KEEPALIVE = re.compile(r"none|\d+,\d+,\d+")


def _tcp_keepalive(v: Any) -> str:
    if not isinstance(v, str) or not _KEEPALIVE.fullmatch(v.replace(" ", "")):
        raise ValueError(f"invalid tcp keepalive {v!r}: expected 'none' or 'Idle,Interval,Probes'")
    return v.replace(" ", "")


class TcpOptions(Section):
    """``tcp_options``; ``recbuf``/``sndbuf`` None means OS default."""

    active_n: Int(0) = 100
    backlog: Int(1) = 1024
    send_timeout: Duration = "15s"
    send_timeout_close: bool = True
    recbuf: ByteSize | None = None
    sndbuf: ByteSize | None = None
    buffer: ByteSize = "4KB"
    high_watermark: ByteSize = "1MB"
    nodelay: bool = True
    reuseaddr: bool = True
    keepalive: Annotated[str, PlainValidator(_tcp_keepalive)] = "none"


def _ciphers(v: Any) -> list[str]:
    if isinstance(v, str):
        return [c for c in v.replace(",", " ").split() if c]
    if isinstance(v, list) and all(isinstance(c, str) for c in v):
        return v
    raise ValueError(f"expected a list of cipher suite names, got {v!r}")


Ciphers = Annotated[list[str], PlainValidator(_ciphers), WithJsonSchema({"type": "array", "items": {"type": "string"}})]


class Ocsp(Section):
    enable_ocsp_stapling: bool = False
    responder_url: str | None = None
    issuer_pem: str | None = None
    refresh_interval: Duration = "5m"
    refresh_http_timeout: Duration = "15s"


class ServerSslOptions(Section):
    """Server TLS options shared by wss listeners and the dashboard's https
    listener (EMQX ``listener_wss_opts`` / ``dashboard.ssl_options``).  File
    paths keep ``${EMQX_ETC_DIR}`` as written; it is resolved at use."""

    ignored_keys = frozenset({"user_lookup_fun"})
    sensitive_fields = frozenset({"password"})

    cacertfile: str = "${EMQX_ETC_DIR}/certs/cacert.pem"
    cacerts: bool = False
    certfile: str = "${EMQX_ETC_DIR}/certs/cert.pem"
    keyfile: str = "${EMQX_ETC_DIR}/certs/key.pem"
    verify: Literal["verify_peer", "verify_none"] = "verify_none"
    reuse_sessions: bool = True
    depth: Int(0) = 10
    password: str | None = None
    versions: list[_TLS_VERSIONS] = ["tlsv1.3", "tlsv1.2"]
    ciphers: Ciphers = []
    secure_renegotiate: bool = True
    log_level: _SSL_LOG_LEVEL = "notice"
    hibernate_after: Duration = "5s"
    dhfile: str | None = None
    fail_if_no_peer_cert: bool = False
    honor_cipher_order: bool = True
    client_renegotiation: bool = True
    handshake_timeout: Duration = "15s"


class ListenerSslOptions(ServerSslOptions):
    """``ssl_options`` of an ssl listener (``emqx.listener_ssl_opts``)."""

    gc_after_handshake: bool = False
    ocsp: Ocsp = Ocsp()
    enable_crl_check: bool = False


class DeflateOptions(Section):
    level: Literal["none", "default", "best_compression", "best_speed"] | None = None
    mem_level: Int(1, 9) = 8
    strategy: Literal["default", "filtered", "huffman_only", "rle"] = "default"
    server_context_takeover: Literal["takeover", "no_takeover"] = "takeover"
    client_context_takeover: Literal["takeover", "no_takeover"] = "takeover"
    server_max_window_bits: Int(8, 15) = 15
    client_max_window_bits: Int(8, 15) = 15


class WebsocketOptions(Section):
    """``websocket`` options.  ``supported_subprotocols``/``check_origins`` are
    EMQX comma separated strings, stored as lists; ``max_frame_size`` is int
    bytes or ``math.inf``."""

    mqtt_path: str = "/mqtt"
    mqtt_piggyback: Literal["single", "multiple"] = "multiple"
    compress: bool = False
    idle_timeout: Duration = "7200s"
    max_frame_size: count_or_infinity(1) = "infinity"
    fail_if_no_subprotocol: bool = True
    supported_subprotocols: CommaList = "mqtt, mqtt-v3, mqtt-v3.1.1, mqtt-v5"
    check_origin_enable: bool = False
    allow_origin_absence: bool = True
    check_origins: CommaList = "http://localhost:18083, http://127.0.0.1:18083"
    proxy_address_header: str = "x-forwarded-for"
    proxy_port_header: str = "x-forwarded-port"
    deflate_opts: DeflateOptions = DeflateOptions()
    validate_utf8: bool = True


def _enable_authn(v: Any) -> bool | str:
    if v in (True, False, "quick_deny_anonymous"):
        return v
    if v in ("true", "false"):
        return v == "true"
    raise ValueError(f"expected true, false or 'quick_deny_anonymous', got {v!r}")


class MqttListener(Section):
    """Fields common to MQTT listeners.  ``max_connections`` is an int or
    ``math.inf``; ``max_conn_rate``/``messages_rate``/``bytes_rate`` keep
    EMQX's rate text ("1000/s"), None when unset."""

    ignored_keys = frozenset({"limiter"})

    enable: bool = True
    bind: BindType = 1883
    acceptors: Int(1) = 16
    max_connections: count_or_infinity(1) = "infinity"
    mountpoint: str = ""
    zone: str = "default"
    enable_authn: Annotated[
        bool | str,
        PlainValidator(_enable_authn),
        WithJsonSchema({"type": "string", "enum": [True, False, "quick_deny_anonymous"]}),
    ] = True
    max_conn_rate: Rate = "infinity"
    messages_rate: Rate | None = None
    bytes_rate: Rate | None = None
    access_rules: list[str] = ["allow all"]
    proxy_protocol: bool = False
    proxy_protocol_timeout: Duration = "3s"
    tcp_options: TcpOptions = TcpOptions()


class TcpListener(MqttListener):
    pass


class SslListener(MqttListener):
    bind: BindType = 8883
    ssl_options: ListenerSslOptions = ListenerSslOptions()


class WsListener(MqttListener):
    bind: BindType = 8083
    websocket: WebsocketOptions = WebsocketOptions()


class WssListener(MqttListener):
    bind: BindType = 8084
    ssl_options: ServerSslOptions = ServerSslOptions()
    websocket: WebsocketOptions = WebsocketOptions()


# What EMQX puts in a "default" listener before user settings are applied.
DEFAULT_LISTENER: dict[str, dict[str, Any]] = {
    "tcp": {"bind": "0.0.0.0:1883"},
    "ssl": {"bind": "0.0.0.0:8883"},
    "ws": {"bind": "0.0.0.0:8083", "websocket": {"mqtt_path": "/mqtt"}},
    "wss": {"bind": "0.0.0.0:8084", "websocket": {"mqtt_path": "/mqtt"}},
}


class Listeners(Section):
    """Root ``listeners``: ``cfg.listeners.tcp["default"].bind``.  Listeners
    set to ``"marked_for_deletion"`` are left out of the maps and remembered in
    ``deleted`` (type -> names) so a dump keeps them deleted."""

    tcp: dict[str, TcpListener] = {}
    ssl: dict[str, SslListener] = {}
    ws: dict[str, WsListener] = {}
    wss: dict[str, WssListener] = {}

    _deleted: dict[str, frozenset[str]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _tombstones(cls, data: Any, handler):
        if not isinstance(data, dict):
            return handler(data)
        data = dict(data)
        deleted: dict[str, frozenset[str]] = {}
        for ltype in LISTENER_TYPES:
            entries = data.get(ltype)
            if entries is None:
                entries = {}
            if not isinstance(entries, dict):
                data[ltype] = entries  # let validation report the bad shape
                continue
            live = {}
            gone = set()
            for name, conf in entries.items():
                if conf == TOMBSTONE:
                    gone.add(name)
                else:
                    live[name] = conf
            if ltype in DEFAULT_LISTENER_TYPES and "default" not in gone:
                if "default" in live:
                    conf = live["default"]
                    if isinstance(conf, dict):
                        live["default"] = {**DEFAULT_LISTENER[ltype], **conf}
                else:
                    live["default"] = DEFAULT_LISTENER[ltype]
            data[ltype] = live
            if gone:
                deleted[ltype] = frozenset(gone)
        model = handler(data)
        model._deleted = deleted
        return model

    @property
    def deleted(self) -> dict[str, frozenset[str]]:
        return self._deleted


# ---------------------------------------------------------------- dashboard


class DashboardHttp(Section):
    """``dashboard.listeners.http``.  EMQX's schema default bind is 0
    (disabled) but every EMQX install ships ``bind = 18083`` in emqx.conf; with
    no config file emqpy behaves like that install, so the default is 18083.
    ``bind.disabled`` is true for a bare 0."""

    ignored_keys = frozenset({"enable"})

    bind: BindType = 18083
    num_acceptors: Int(1) = 4
    max_connections: Int(1) = 512
    backlog: Int(1) = 1024
    send_timeout: Duration = "10s"
    inet6: bool = False
    ipv6_v6only: bool = False
    proxy_header: bool = False


class DashboardHttps(DashboardHttp):
    """``dashboard.listeners.https``: disabled (bind 0) unless configured."""

    bind: BindType = 0
    ssl_options: ServerSslOptions = ServerSslOptions()

    @model_validator(mode="before")
    @classmethod
    def _ssl_layout(cls, data: Any) -> Any:
        # EMQX accepts TLS options directly under https (older layout).
        if isinstance(data, dict) and "ssl_options" not in data:
            ssl_keys = set(ServerSslOptions.model_fields) & data.keys()
            if ssl_keys:
                data = {k: v for k, v in data.items() if k not in ssl_keys} | {
                    "ssl_options": {k: data[k] for k in ssl_keys}
                }
        return data


class DashboardListeners(Section):
    http: DashboardHttp = DashboardHttp()
    https: DashboardHttps = DashboardHttps()


class Dashboard(Section):
    """Root ``dashboard``.  ``default_username`` and ``sample_interval`` are
    hidden in EMQX (not dumped) but used by the API; ``allow_user_basic_auth``
    is emqpy's own key: accept HTTP Basic auth with a dashboard user's
    username/password on the REST API (EMQX 5 only takes API keys there)."""

    ignored_keys = frozenset({"i18n_lang", "bootstrap_users_file", "sso"})
    hidden_fields = frozenset({"default_username", "sample_interval",
                               "unsuccessful_login_max_attempts", "unsuccessful_login_interval",
                               "unsuccessful_login_lock_duration"})
    sensitive_fields = frozenset({"default_password"})

    listeners: DashboardListeners = DashboardListeners()
    default_username: str = "admin"
    default_password: str = "public"
    sample_interval: DurationS = "10s"
    token_expired_time: Duration = "60m"
    cors: bool = False
    swagger_support: bool = True
    allow_user_basic_auth: bool = True
    # Login lock-out: this many failures within the interval lock the user for the duration.
    unsuccessful_login_max_attempts: Int(1) = 5
    unsuccessful_login_interval: Duration = "5m"
    unsuccessful_login_lock_duration: Duration = "10m"

    @field_validator("sample_interval")
    @classmethod
    def _check_sample_interval(cls, s: float) -> float:
        if not (1 <= s <= 60 and 60 % int(s) == 0):
            raise ValueError("must be between 1 and 60 and be a divisor of 60")
        return s

