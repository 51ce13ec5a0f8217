"""The ``prometheus`` config root (EMQX 5.4+ "recommend" form, and the deprecated flat form
still accepted on input), with EMQX's defaults."""
from __future__ import annotations

import copy
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from emqpy.api.cfg import cfg_get, duration_seconds

Switch = Literal["enabled", "disabled"]
COLLECTORS = ("vm_dist", "mnesia", "vm_statistics", "vm_system_info", "vm_memory", "vm_msacc")
DEFAULTS: dict[str, Any] = {
    "enable_basic_auth": False,
    "push_gateway": {"enable": False, "url": "http://127.0.0.1:9091", "interval": "15s",
                     "headers": {}, "job_name": "${name}/instance/${name}~${host}"},
    "collectors": {c: "disabled" for c in COLLECTORS},
}


class PushGateway(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enable: bool = Field(False, description="Enable or disable Pushgateway")
    url: str = Field("http://127.0.0.1:9091", description="URL of Pushgateway server")
    interval: str = Field("15s", description="Data reporting interval", examples=["32s"])
    headers: dict[str, str] = Field({}, description="HTTP headers sent to the Push Gateway")
    job_name: str = Field("${name}/instance/${name}~${host}",
                          description="Job name pushed; ${name} and ${host} are the parts of "
                                      "the node name before and after '@'")


class Collectors(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vm_dist: Switch = "disabled"
    mnesia: Switch = "disabled"
    vm_statistics: Switch = "disabled"
    vm_system_info: Switch = "disabled"
    vm_memory: Switch = "disabled"
    vm_msacc: Switch = "disabled"


class RecommendSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enable_basic_auth: bool = Field(False, description="Require authentication on the "
                                                       "Prometheus scrape API")
    push_gateway: Optional[PushGateway] = None
    collectors: Optional[Collectors] = None


class LegacySetting(BaseModel):
    """Deprecated since EMQX 5.4.0; converted to the recommend form."""
    model_config = ConfigDict(extra="forbid")
    push_gateway_server: str = "http://127.0.0.1:9091"
    interval: str = "15s"
    headers: dict[str, str] = {}
    job_name: str = "${name}/instance/${name}~${host}"
    enable: bool = False
    vm_dist_collector: Switch = "disabled"
    mnesia_collector: Switch = "disabled"
    vm_statistics_collector: Switch = "disabled"
    vm_system_info_collector: Switch = "disabled"
    vm_memory_collector: Switch = "disabled"
    vm_msacc_collector: Switch = "disabled"


_LEGACY_KEYS = set(LegacySetting.model_fields)


def _check_interval(value: str) -> None:
    if duration_seconds(value, -1.0) <= 0:
        raise ValueError(f"push_gateway.interval: bad duration {value!r}")


def normalize(body: Any) -> dict[str, Any]:
    """A request body (recommend or legacy form) as a complete recommend-form dict.
    Raises ValueError with a readable message."""
    if not isinstance(body, dict):
        raise ValueError("a JSON object is expected")
    try:
        if is_legacy(body):
            legacy = LegacySetting.model_validate(body)
            out = {"enable_basic_auth": False,
                   "push_gateway": {"enable": legacy.enable, "url": legacy.push_gateway_server,
                                    "interval": legacy.interval, "headers": legacy.headers,
                                    "job_name": legacy.job_name},
                   "collectors": {c: getattr(legacy, c + "_collector") for c in COLLECTORS}}
        else:
            rec = RecommendSetting.model_validate(body)
            out = {"enable_basic_auth": rec.enable_basic_auth,
                   "push_gateway": (rec.push_gateway or PushGateway()).model_dump(),
                   "collectors": (rec.collectors or Collectors()).model_dump()}
    except ValidationError as exc:
        errs = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()))
            errs.append(f"{loc}: {e.get('msg', 'invalid value')}" if loc else e.get("msg", ""))
        raise ValueError("; ".join(errs)) from None
    _check_interval(out["push_gateway"]["interval"])
    return out


def _deep_merge(base: dict, change: dict) -> dict:
    out = dict(base)
    for k, v in change.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(
            out.get(k), dict) else v
    return out


def is_legacy(body: dict) -> bool:
    return bool(body.keys() & (_LEGACY_KEYS - {"headers"})) and not body.keys() & {
        "push_gateway", "collectors", "enable_basic_auth"}


def updated(config, body: Any) -> dict[str, Any]:
    """Settings after a PUT: a recommend-form body is merged onto the running settings (as EMQX
    merges config updates); a legacy-form body replaces them."""
    if isinstance(body, dict) and not is_legacy(body):
        body = _deep_merge(current(config), body)
    return normalize(body)


def current(config) -> dict[str, Any]:
    """The running ``prometheus`` settings in recommend form, defaults filled in."""
    raw = cfg_get(config, "prometheus", None)
    if hasattr(raw, "model_dump"):
        raw = raw.model_dump()
    if not isinstance(raw, dict) or not raw:
        return copy.deepcopy(DEFAULTS)
    try:
        return normalize(raw)
    except ValueError:
        # settings from emqx.conf the API would refuse: keep what is usable over the defaults
        out = copy.deepcopy(DEFAULTS)
        for key in ("push_gateway", "collectors"):
            if isinstance(raw.get(key), dict):
                out[key].update(raw[key])
        if isinstance(raw.get("enable_basic_auth"), bool):
            out["enable_basic_auth"] = raw["enable_basic_auth"]
        return out


def collector_enabled(config, name: str) -> bool:
    return current(config)["collectors"].get(name) == "enabled"
