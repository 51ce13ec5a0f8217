"""EMQX's Configs API: ``GET/PUT /configs`` (HOCON text, or JSON with Accept:
application/json), ``GET/PUT /configs/{root}`` for the roots EMQX 5.8.1 exposes this way,
``GET/PUT /configs/global_zone`` and ``POST /configs_reset/{rootname}``.

A PUT deep-merges onto the root (``update_root``), validates (400 naming the key), applies to the
running broker at once (``broker.apply_config()`` plus the few roots that need more: listeners,
``$SYS`` timers, log handlers) and saves the root to ``data_dir/configs/cluster.hocon`` so the next
start uses it. GET output masks secrets as "******"; a PUT sending "******" back keeps them.
The ``authentication`` and ``authorization`` roots are their features' (``emqpy/authn/root.py``,
``emqpy/authz/root.py``: EMQX's merge by authenticator id / source type, or replace): GET shows
what runs, PUT changes it at once.
"""
from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import logging
import re
from typing import Annotated, Any, Literal, Optional

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.config import (ConfigError, EmqxConfig, commit, config_lock, persist, replace_root,
                          update_root)
from emqpy.config import loghandlers
from emqpy.config.loader import parse_hocon_string
from emqpy.config.schema import ROOTS
from emqpy.config.secrets import mask_secrets, unmask
from emqpy.mgmt import listeners_api as la

log = logging.getLogger("emqpy.mgmt")

router = APIRouter(tags=["Configs"], dependencies=[Depends(authenticated)],
                   responses=AUTH_RESPONSES)

# Roots with their own GET/PUT /configs/<root> in EMQX 5.8.1 (mqtt & co. are in global_zone).
ROOT_ENDPOINTS = {
    "alarm": "Alarm configuration.",
    "broker": "Message broker options.",
    "dashboard": "Dashboard configuration.",
    "log": "Log handlers (console and file).",
    "sys_topics": "System topics configuration.",
    "sysmon": "System monitoring.",
}
GLOBAL_ZONE = ("mqtt", "flapping_detect", "force_shutdown", "force_gc", "durable_sessions")
RESETTABLE = ("broker", "log", "sysmon", "sys_topics", "alarm", "dashboard")
READ_ONLY = ("node", "cluster", "rpc")
# Roots of the MQTT extensions: their package's config_changed(broker) follows a change at once.
EXTENSION_ROOTS = {"delayed": "emqpy.delayed", "rewrite": "emqpy.rewrite",
                   "auto_subscribe": "emqpy.auto_subscribe",
                   "topic_metrics": "emqpy.topic_metrics", "slow_subs": "emqpy.slow_subs"}
# Roots a feature owns and keeps in its store (what runs; cluster.hocon gets a copy): their
# module's plan(broker, value, mode) checks a change, apply(broker, plan) makes it,
# view(broker) shows it.
FEATURE_ROOTS = {"authentication": "emqpy.authn.root", "authorization": "emqpy.authz.root"}


def _owner(root: str):
    return importlib.import_module(FEATURE_ROOTS[root])


# -- applying a change --------------------------------------------------------------------------

def build(config: EmqxConfig, changes: dict[str, Any], mode: str = "merge") -> EmqxConfig:
    """The config after ``changes`` (root -> value): merged onto each root, or replacing it
    (``mode="replace"``). Raises ConfigError naming the key."""
    new = config
    for root, value in changes.items():
        if root not in ROOTS:
            raise ConfigError(root, "unknown config root")
        value = unmask(value, config.dump(root, hidden=True))
        new = (replace_root if mode == "replace" else update_root)(new, root, value)
    if "rule_engine" in changes:  # a rule's SQL is checked as EMQX's schema checks it
        from emqpy.rule_engine import check_rules
        check_rules(new)
    return new


async def apply(broker, new: EmqxConfig, roots: list[str]) -> None:
    """Make ``new`` the running config and persist ``roots`` (the ones that changed)."""
    old = broker.config
    if "log" in roots and broker.manage_logging:  # (a file that cannot be opened: 400)
        try:
            loghandlers.apply(new.log)
        except OSError as e:
            raise ConfigError("log.file", f"cannot open the log file: {e}") from None
    if "listeners" in roots:
        await la.reconcile(broker, old, new)
    commit(broker, new)
    if "sys_topics" in roots and broker.running:  # restart the $SYS timers at the new pace
        broker.sys.stop()
        broker.sys.start()
    if "retainer" in roots and broker.retainer is not None:
        broker.retainer.apply_config()
    if "rule_engine" in roots:  # the rules are config too: the running ones follow it
        from emqpy.rule_engine import config_changed
        config_changed(broker)
    for root in roots:
        if root in EXTENSION_ROOTS and importlib.util.find_spec(EXTENSION_ROOTS[root]):
            importlib.import_module(EXTENSION_ROOTS[root]).config_changed(broker)
    await persist(broker, *roots)
    if "dashboard" in roots and _dashboard_server_changed(old, new):
        # As EMQX, the HTTP listeners restart with the new settings; after this response
        # has gone out, in a task of its own (the server being stopped runs this request).
        asyncio.get_running_loop().call_soon(
            lambda: asyncio.ensure_future(restart_api(broker, old.dashboard)))


def _dashboard_server_changed(old, new) -> bool:
    a, b = old.dashboard, new.dashboard
    return (a.listeners != b.listeners or a.cors != b.cors
            or a.swagger_support != b.swagger_support)


async def restart_api(broker, previous) -> None:
    if broker.api is None or not broker.running:
        return
    await asyncio.sleep(0)  # let the response that triggered this be written
    await broker.api.restart(previous)


async def update_roots(broker, changes: dict[str, Any], mode: str = "merge") -> EmqxConfig:
    async with config_lock(broker):
        # Everything is checked before anything changes; then the config roots, then the
        # roots the authn/authz features own.
        plans = {r: _owner(r).plan(broker, v, mode) for r, v in changes.items()
                 if r in FEATURE_ROOTS}
        rest = {r: v for r, v in changes.items() if r not in FEATURE_ROOTS}
        new = build(broker.config, rest, mode)
        if rest:
            await apply(broker, new, list(rest))
        for root, plan in plans.items():
            await _owner(root).apply(broker, plan)
            # (the config says what runs too; the feature's store copy wins at start)
            new = replace_root(broker.config, root, _owner(root).view(broker))
            commit(broker, new)
        if plans:
            await persist(broker, *plans)
        return new


def _bad(e: Exception, code: str = "BAD_REQUEST") -> ApiError:
    if isinstance(e, la.ListenerOpError):
        return ApiError(400, code, e.message)
    return ApiError(400, code, str(e))


# -- HOCON text output ----------------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_.%/-]+")
_KEY = re.compile(r"[A-Za-z0-9_-]+")
_KEYWORDS = {"true", "false", "null", "yes", "no", "on", "off", "include"}


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _hocon_key(k: str) -> str:
    return k if _KEY.fullmatch(k) and not _is_number(k) else json.dumps(k)


def _hocon_value(v: Any, indent: int) -> str:
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            return "{}"
        lines = [f"{pad}  {_hocon_key(k)} {'' if isinstance(x, dict) and x else '= '}"
                 f"{_hocon_value(x, indent + 1)}" for k, x in v.items()]
        return "{\n" + "\n".join(lines) + f"\n{pad}}}"
    if isinstance(v, list):
        return "[" + ", ".join(_hocon_value(x, indent + 1) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    s = str(v)
    if _BARE.fullmatch(s) and s.lower() not in _KEYWORDS and not _is_number(s) \
            and not s.startswith(("/", "-", ".")) and "//" not in s:
        return s
    return json.dumps(s, ensure_ascii=False)


def to_hocon(data: dict) -> str:
    """EMQX's text form of ``GET /configs`` (hocon_pp style: bare keys, unquoted simple
    strings); other strings are JSON-quoted, which every HOCON reader accepts."""
    return "\n".join(f"{_hocon_key(root)} {_hocon_value(v, 0)}" if isinstance(v, dict) and v
                     else f"{_hocon_key(root)} = {_hocon_value(v, 0)}"
                     for root, v in data.items()) + "\n"


# -- reading ----------------------------------------------------------------------------------

def _dump(broker, root: str) -> Any:
    """A root as GET /configs shows it: a feature-owned one as its feature runs it."""
    running = _owner(root).view(broker) if root in FEATURE_ROOTS else None
    return dump_root(broker.config, root) if running is None else mask_secrets(running)


def dump_root(config, root: str) -> Any:
    # The models mask the secrets they name; objects kept as given (authenticators,
    # authorization sources, roots emqpy does not model) are masked by key.
    return mask_secrets(config.dump(root, redact=True))


def _all_roots(config) -> list[str]:
    return list(ROOTS) + [r for r in (config.model_extra or {}) if r not in ROOTS]


def _accept(request: Request) -> str | None:
    """EMQX's find_suitable_accept over [text/plain, application/json]: no header or */*
    gives text/plain."""
    header = request.headers.get("accept", "")
    if not header.strip():
        return "text/plain"
    for t in (p.split(";")[0].strip().lower() for p in header.split(",")):
        if t in ("text/plain", "application/json"):
            return t
        if t in ("*/*", "text/*"):
            return "text/plain"
        if t == "application/*":
            return "application/json"
    return None


def _model(root: str):
    return EmqxConfig.model_fields[root].annotation


# JSON Schema keywords pydantic leaves as written -> OpenAPI 3.0; the config types' oneOf
# alternatives overlap ("infinity" is also a string), so anyOf is the accurate keyword.
_RENAME = {"ge": "minimum", "le": "maximum", "oneOf": "anyOf"}


def _fits(jtype, value) -> bool:
    py = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
          "array": list, "object": dict}.get(jtype)
    return py is None or (isinstance(value, py) and not (jtype != "boolean"
                                                         and isinstance(value, bool)))


def root_schema(root: str) -> dict:
    """OpenAPI 3.0 schema of a root's JSON, inlined from its config model (no $defs: the
    document's components only hold API models)."""
    schema = _model(root).model_json_schema(mode="serialization")
    defs = schema.pop("$defs", {})

    def fix(node: Any) -> Any:
        if isinstance(node, list):
            return [fix(x) for x in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            return fix({**target, **{k: v for k, v in node.items() if k != "$ref"}})
        out = {_RENAME.get(k, k) if not isinstance(v, dict) else k: fix(v)
               for k, v in node.items()}
        if "default" in out and (isinstance(out["default"], dict)
                                 or not _fits(out.get("type"), out["default"])):
            # Struct defaults repeat their keys' defaults; a bind's int default is not a
            # string: neither would validate against the schema.
            del out["default"]
        return out

    return fix(schema)


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


# -- handlers -------------------------------------------------------------------------------------

def _broker(request: Request):
    return request.app.state.ctx.broker


# The key values EMQX 5.8.1 documents (roots emqpy has not got answer 404).
_GET_KEYS = Literal[(  # type: ignore[valid-type]
    "actions", "alarm", "api_key", "authentication", "authorization", "auto_subscribe",
    "banned", "bridges", "cluster", "conn_congestion", "connectors", "crl_cache", "dashboard",
    "delayed", "durable_sessions", "durable_storage", "exhook", "flapping_detect", "force_gc",
    "force_shutdown", "gateway", "limiter", "listeners", "log", "mqtt", "node", "opentelemetry",
    "overload_protection", "prometheus", "psk_authentication", "retainer", "rewrite", "rpc",
    "rule_engine", "slow_subs", "sources", "sys_topics", "sysmon", "telemetry", "topic_metrics")]
_HOCON_EXAMPLE = "sysmon {\n  os {\n    cpu_check_interval = 60s\n  }\n}\n"


@router.get("/configs", summary="Get all configurations",
            description="Get all the configurations of the specified keys, including hot and "
                        "non-hot updatable items.",
            responses={200: {"description": "HOCON text (default) or JSON with "
                                            "Accept: application/json",
                             "content": {"text/plain": {"schema": {"type": "string",
                                                                   "example": _HOCON_EXAMPLE}},
                                         "application/json": {"schema": {"type": "object"}}}},
                       **error_responses({400: ["INVALID_ACCEPT"], 404: ["NOT_FOUND"],
                                          500: ["BAD_NODE"]})},
            response_class=PlainTextResponse)
async def get_configs(request: Request,
                      key: Annotated[Optional[_GET_KEYS], Query(examples=["sysmon"])] = None,
                      node: Annotated[Optional[str], Query(
                          description="Node's name. Will deprecated in 5.2.0.")] = None):
    broker = _broker(request)
    if node is not None and node != broker.node_name:
        raise ApiError(404, "NOT_FOUND", "Node not found")
    accept = _accept(request)
    if accept is None:
        raise ApiError(400, "INVALID_ACCEPT", "Accept must be text/plain or application/json")
    cfg = broker.config
    if accept == "application/json":  # EMQX's deprecated v1 form: the whole config
        return JSONResponse({r: _dump(broker, r) for r in _all_roots(cfg)})
    if key is not None and key not in _all_roots(cfg):
        raise ApiError(404, "NOT_FOUND", f"{key} not found")
    roots = [key] if key else _all_roots(cfg)
    return PlainTextResponse(to_hocon({r: _dump(broker, r) for r in roots}))


@router.put("/configs", summary="Update configurations",
            description="Update the configurations of the specified keys.",
            openapi_extra={"requestBody": {"content": {"text/plain": {"schema": {
                "type": "string", "example": _HOCON_EXAMPLE}}}}},
            responses={200: {"description": "Configurations updated"},
                       **error_responses({400: ["UPDATE_FAILED"]})})
async def put_configs(request: Request,
                      mode: Annotated[Literal["replace", "merge"], Query()] = "merge",
                      ignore_readonly: Annotated[bool, Query()] = False):
    text = (await request.body()).decode("utf-8", "replace")
    try:
        conf = parse_hocon_string(text) if text.strip() else {}
    except ConfigError as e:
        raise ApiError(400, "UPDATE_FAILED", str(e)) from None
    if not isinstance(conf, dict) or not conf:
        raise ApiError(400, "UPDATE_FAILED", "the body must be a HOCON object with config roots")
    for root in READ_ONLY:
        if root in conf:
            if not ignore_readonly:
                raise ApiError(400, "UPDATE_FAILED", f"Cannot update read-only key '{root}'.")
            del conf[root]
    try:
        await update_roots(_broker(request), conf, mode)
    except (ConfigError, la.ListenerOpError) as e:
        raise _bad(e, "UPDATE_FAILED") from None
    return Response(status_code=200)


_ZONE_SCHEMA = {"type": "object", "properties": {k: root_schema(k) for k in GLOBAL_ZONE}}


def _zone_view(config, keys) -> dict:
    return {k: config.dump(k, redact=True) for k in keys}


@router.get("/configs/global_zone", summary="Get the MQTT-related configuration",
            description="Get the MQTT-related configuration",
            responses={200: {"description": "MQTT-related configuration",
                             "content": _json(_ZONE_SCHEMA)}})
async def get_global_zone(request: Request):
    return _zone_view(_broker(request).config, GLOBAL_ZONE)


@router.put("/configs/global_zone", summary="Update MQTT-related configuration",
            description="Update MQTT-related configuration",
            responses={200: {"description": "MQTT-related configuration",
                             "content": _json(_ZONE_SCHEMA)},
                       **error_responses({400: ["UPDATE_FAILED"], 403: ["UPDATE_FAILED"]})})
async def put_global_zone(request: Request, body: Annotated[dict, Body()]):
    unknown = [k for k in body if k not in GLOBAL_ZONE]
    if unknown:
        raise ApiError(400, "BAD_REQUEST", f"{unknown[0]}: unknown key (expected "
                                           f"{', '.join(GLOBAL_ZONE)})")
    try:
        new = await update_roots(_broker(request), body)
    except (ConfigError, la.ListenerOpError) as e:
        raise _bad(e) from None
    return _zone_view(new, list(body))


def _root_routes(root: str, desc: str) -> None:
    path = f"/configs/{root}"
    ok = {200: {"description": desc, "content": _json(root_schema(root))}}

    async def get_root(request: Request):
        return _broker(request).config.dump(root, redact=True)

    async def put_root(request: Request, body: Annotated[dict, Body()]):
        try:
            new = await update_roots(_broker(request), {root: body})
        except (ConfigError, la.ListenerOpError) as e:
            raise _bad(e) from None
        return new.dump(root, redact=True)

    summary_get = f"Get the sub-configurations under *{root}*"
    summary_put = f"Update the sub-configurations under *{root}*"
    router.add_api_route(path, get_root, methods=["GET"], summary=summary_get,
                         description=summary_get, name=f"get_configs_{root}",
                         responses={**ok, **error_responses({404: ["NOT_FOUND"]})})
    router.add_api_route(path, put_root, methods=["PUT"], summary=summary_put,
                         description=summary_put, name=f"put_configs_{root}",
                         responses={**ok, **error_responses({400: ["UPDATE_FAILED",
                                                                   "INVALID_CONFIG"],
                                                              403: ["UPDATE_FAILED"]})})


for _root, _desc in ROOT_ENDPOINTS.items():
    _root_routes(_root, _desc)


def _default_at(root: str, path: list[str]) -> Any:
    node: Any = EmqxConfig().dump(root, hidden=True)
    for part in path:
        if not isinstance(node, dict) or part not in node:
            raise KeyError(part)
        node = node[part]
    return node


def _replace_at(data: dict, path: list[str], value: Any) -> dict:
    """A copy of ``data`` with the key at ``path`` set to ``value`` (no merging: a reset map
    loses entries the default does not have)."""
    if len(path) == 1:
        return {**data, path[0]: value}
    return {**data, path[0]: _replace_at(data.get(path[0]) or {}, path[1:], value)}


@router.post("/configs_reset/{rootname}", summary="Reset a config entry",
             description="Reset the config entry specified by the query string parameter "
                         "`conf_path`.<br/><br/>- For a config entry that has default value, "
                         "this resets it to the default value;<br/>- For a config entry that "
                         "has no default value, an error 400 will be returned",
             responses={200: {"description": "Rest config successfully"},
                        **error_responses({400: ["NO_DEFAULT_VALUE", "REST_FAILED"],
                                           403: ["REST_FAILED"]})})
async def reset_config(request: Request,
                       rootname: Annotated[Literal[RESETTABLE], Path(  # type: ignore[valid-type]
                           examples=["sysmon"])],
                       conf_path: Annotated[Optional[str], Query(
                           description="The config path separated by '.' character",
                           examples=["os.sysmem_high_watermark"])] = None):
    path = [p for p in (conf_path or "").split(".") if p]
    try:
        default = _default_at(rootname, path)
    except KeyError:
        raise ApiError(400, "NO_DEFAULT_VALUE", f"{rootname}.{conf_path}: no default value")
    broker = _broker(request)
    try:
        async with config_lock(broker):
            value = default if not path else \
                _replace_at(broker.config.dump(rootname, hidden=True), path, default)
            new = build(broker.config, {rootname: value}, mode="replace")
            await apply(broker, new, [rootname])
    except (ConfigError, la.ListenerOpError) as e:
        raise _bad(e, "REST_FAILED") from None
    return Response(status_code=200)
