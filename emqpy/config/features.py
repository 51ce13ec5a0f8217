"""EMQX 5.8.1 config roots of optional features: ``prometheus`` (and the deprecated flat form
EMQX still accepts for it), ``authentication`` and ``authorization``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator

from .base import Section
from .bridges import ClientSsl
from .sections import Int, LogLevel
from .types import Duration

Switch = Literal["enabled", "disabled"]
COLLECTORS = ("vm_dist", "mnesia", "vm_statistics", "vm_system_info", "vm_memory", "vm_msacc")


def _positive(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be greater than 0")
    return seconds


class PrometheusPushGateway(Section):
    enable: bool = Field(False, description="Enable or disable Pushgateway")
    url: str = Field("http://127.0.0.1:9091", description="URL of Pushgateway server")
    interval: Annotated[Duration, AfterValidator(_positive)] = Field(
        "15s", description="Data reporting interval")
    headers: dict[str, str] = Field({}, description="HTTP headers sent to the Push Gateway")
    job_name: str = Field("${name}/instance/${name}~${host}",
                          description="Job name pushed; ${name} and ${host} are the parts of "
                                      "the node name before and after '@'")


class PrometheusCollectors(Section):
    vm_dist: Switch = "disabled"
    mnesia: Switch = "disabled"
    vm_statistics: Switch = "disabled"
    vm_system_info: Switch = "disabled"
    vm_memory: Switch = "disabled"
    vm_msacc: Switch = "disabled"


# The deprecated (before EMQX 5.4) flat keys and where they live in the recommended form.
LEGACY_KEYS = {"push_gateway_server": ("push_gateway", "url"),
               "interval": ("push_gateway", "interval"),
               "headers": ("push_gateway", "headers"),
               "job_name": ("push_gateway", "job_name"),
               "enable": ("push_gateway", "enable"),
               **{f"{c}_collector": ("collectors", c) for c in COLLECTORS}}


def is_legacy(data: Any) -> bool:
    return isinstance(data, dict) and bool(data.keys() & (LEGACY_KEYS.keys() - {"headers"})) \
        and not data.keys() & {"push_gateway", "collectors", "enable_basic_auth"}


class Prometheus(Section):
    """Root ``prometheus`` in EMQX's recommended form; the legacy flat form is accepted on
    input and converted (unknown flat keys are refused by name)."""

    enable_basic_auth: bool = Field(False, description="Require authentication on the "
                                                       "Prometheus scrape API")
    push_gateway: PrometheusPushGateway = PrometheusPushGateway()
    collectors: PrometheusCollectors = PrometheusCollectors()

    @model_validator(mode="before")
    @classmethod
    def _from_legacy(cls, data: Any) -> Any:
        if not is_legacy(data):
            return data
        out: dict[str, Any] = {}
        for key, value in data.items():
            section, name = LEGACY_KEYS.get(key, (None, key))
            if section is None:
                out[key] = value  # not a legacy key: refused by name below
            else:
                out.setdefault(section, {})[name] = value
        return out


# ---------------------------------------------------------------- authentication, authorization


class Authenticator(Section):
    """One entry of root ``authentication``.  What it is (``mechanism``, ``backend``) is
    modelled; its other keys depend on those and are kept as given: the authn feature checks
    each entry when it builds the authenticator, and skips (logs) a bad one as EMQX does."""

    model_config = ConfigDict(extra="allow")

    mechanism: str
    backend: str | None = None
    enable: bool = True


def _authenticator_list(v: Any) -> Any:
    """A single authenticator object is a chain of one; ``{"1": {...}, "2": {...}}`` (how
    ``EMQX_AUTHENTICATION__1__...`` variables spell an array) is that array."""
    if isinstance(v, dict):
        if v and all(isinstance(k, str) and k.isdigit() for k in v):
            return [v[k] for k in sorted(v, key=int)]
        return [v]
    return v


AuthenticatorChain = Annotated[list[Authenticator], BeforeValidator(_authenticator_list)]


class AuthorizationCache(Section):
    enable: bool = True
    max_size: Int(1, 1048576) = 32
    ttl: Duration = "1m"
    excludes: list[str] = []


class Authorization(Section):
    """Root ``authorization``.  Each of ``sources`` is checked by the authz feature when it
    builds the source (their fields depend on the type), and a bad one is logged and skipped."""

    no_match: Literal["allow", "deny"] = "allow"
    deny_action: Literal["ignore", "disconnect"] = "ignore"
    cache: AuthorizationCache = AuthorizationCache()
    sources: list[dict[str, Any]] = []


# -- opentelemetry (EMQX's emqx_otel_schema) ------------------------------------------------------

class OtelMetrics(Section):
    enable: bool = Field(False, description="Enable or disable Open Telemetry signal.")
    interval: Annotated[Duration, AfterValidator(_positive)] = Field(
        "10s", description="The delay interval between two consecutive exports of Open "
                           "Telemetry signals.")


class OtelLogs(Section):
    ignored_keys = frozenset({"max_queue_size", "exporting_timeout"})  # (EMQX hides them)

    level: LogLevel = Field("warning", description="The log level of the Open Telemetry log "
                                                   "handler.")
    enable: bool = Field(False, description="Enable or disable Open Telemetry signal.")
    scheduled_delay: Duration = Field("1s", description="The delay interval between two "
                                                        "consecutive exports of Open Telemetry "
                                                        "signals.")


class OtelTraceFilter(Section):
    trace_all: bool = Field(False, description="Trace every published message, not only those "
                                               "that carry a trace context.")


class OtelTraces(Section):
    ignored_keys = frozenset({"max_queue_size", "exporting_timeout"})

    enable: bool = Field(False, description="Enable or disable Open Telemetry signal.")
    scheduled_delay: Duration = Field("5s", description="The delay interval between two "
                                                        "consecutive exports of Open Telemetry "
                                                        "signals.")
    filter: OtelTraceFilter = OtelTraceFilter()


class OtelExporter(Section):
    ignored_keys = frozenset({"protocol"})  # (EMQX hides it: gRPC is the only one)

    endpoint: str = Field("http://localhost:4317", description="The target URL to which the "
                                                               "exporter is going to send Open "
                                                               "Telemetry signal data.")
    ssl_options: ClientSsl = ClientSsl()

    @model_validator(mode="after")
    def _url(self):
        from urllib.parse import urlsplit
        try:
            url = urlsplit(self.endpoint)
            url.port  # noqa: B018  (a bad port raises here)
        except ValueError as e:
            raise ValueError(f"endpoint: bad URL {self.endpoint!r}: {e}") from None
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"endpoint: an http:// or https:// URL is expected, got "
                             f"{self.endpoint!r}")
        return self


class OpenTelemetry(Section):
    """Root ``opentelemetry``."""

    metrics: OtelMetrics = OtelMetrics()
    logs: OtelLogs = OtelLogs()
    traces: OtelTraces = OtelTraces()
    exporter: OtelExporter = OtelExporter()
