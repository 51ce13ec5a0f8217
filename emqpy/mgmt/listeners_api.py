"""EMQX's Listeners API (``/listeners``, ``/listeners_status``, ``/listeners/{id}[/start|stop|
restart]``).

Every change follows EMQX: validate the new ``listeners`` root, make the running listeners match
it (``emqpy.listeners.reconcile``: only the listener concerned is touched, clients on other
listeners stay connected), then commit ``broker.config`` and save the root in
``data_dir/configs/cluster.hocon`` so the next start uses it.
"""
from __future__ import annotations

import logging
import re
from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from emqpy import listeners
from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.config import ConfigError, commit, config_lock, persist, update_root
from emqpy.config.listeners import LISTENER_TYPES as CONFIG_TYPES, TOMBSTONE
from emqpy.config.secrets import unmask
from emqpy.listeners import ListenerError

log = logging.getLogger("emqpy.mgmt")

router = APIRouter(tags=["Listeners"], dependencies=[Depends(authenticated)],
                   responses=AUTH_RESPONSES)

NOT_FOUND_MSG = "Listener id not found"



class ListenerOpError(Exception):
    """A listener operation failed: ``status``/``code`` are the HTTP answer."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def parse_id(lid: str) -> tuple[str, str]:
    ltype, sep, name = lid.partition(":")
    if not sep or not name or ltype not in CONFIG_TYPES:
        raise ListenerOpError(400, "BAD_LISTENER_ID",
                              f"Invalid listener id {lid!r}: expected <type>:<name> with type "
                              f"one of {', '.join(CONFIG_TYPES)}")
    return ltype, name


async def reconcile(broker, old, new, force: frozenset = frozenset()) -> None:
    """`emqpy.listeners.reconcile` with its failure as the HTTP answer (400 BAD_REQUEST)."""
    try:
        await listeners.reconcile(broker, old, new, force)
    except ListenerError as e:
        raise ListenerOpError(400, "BAD_REQUEST", str(e)) from None


async def change_listeners(broker, new_root: dict, *, force: frozenset = frozenset()) -> None:
    """Validate (``update_root`` deep-merges ``new_root`` onto the listeners root), apply to the
    running listeners, commit ``broker.config`` and persist the root. ConfigError for bad
    values, ListenerOpError if a listener cannot start."""
    old = broker.config
    new = update_root(old, "listeners", new_root)
    await reconcile(broker, old, new, force)
    commit(broker, new)
    await persist(broker, "listeners")


# -- views ------------------------------------------------------------------------------------

def _status(broker, lid: str, cfg_raw: dict) -> dict:
    lst = broker.listeners.get(lid)
    running = bool(lst is not None and lst.running)
    return {"running": running,
            "max_connections": cfg_raw.get("max_connections", "infinity"),
            "current_connections": lst.current_connections if running else 0}


def raw_listeners(broker) -> list[tuple[str, str, str, dict]]:
    """(id, type, name, redacted raw config with running/current_connections) per listener."""
    dump = broker.config.dump("listeners", redact=True)
    out = []
    for ltype in CONFIG_TYPES:
        for name, conf in sorted((dump.get(ltype) or {}).items()):
            if not isinstance(conf, dict):  # marked_for_deletion
                continue
            lid = f"{ltype}:{name}"
            st = _status(broker, lid, conf)
            conf = dict(conf)
            conf["bind"] = str(conf.get("bind"))  # EMQX shows the bind as a string
            conf["running"] = st["running"]
            conf["current_connections"] = st["current_connections"]
            out.append((lid, ltype, name, conf))
    return out


def listener_view(broker, lid: str) -> dict | None:
    for i, ltype, _name, conf in raw_listeners(broker):
        if i == lid:
            return {**conf, "id": lid, "type": ltype}
    return None


def _node_status(broker, conf: dict) -> dict:
    return {"running": conf["running"], "max_connections": conf.get("max_connections",
                                                                     "infinity"),
            "current_connections": conf["current_connections"]}


def list_view(broker, ltype: Optional[str]) -> list[dict]:
    out = []
    for lid, t, name, conf in raw_listeners(broker):
        if ltype and t != ltype:
            continue
        st = _node_status(broker, conf)
        out.append({"id": lid, "name": name, "type": t, "enable": conf.get("enable", True),
                    "bind": conf["bind"], "acceptors": conf.get("acceptors", 16), "number": 1,
                    "status": dict(st), "node_status": [{"node": broker.node_name,
                                                         "status": st}]})
    return out


def _max_sum(a, b):
    return "infinity" if "infinity" in (a, b) else a + b


def type_status_view(broker) -> list[dict]:
    by_type: dict[str, dict] = {}
    for lid, t, _name, conf in raw_listeners(broker):
        st = _node_status(broker, conf)
        g = by_type.get(t)
        if g is None:
            by_type[t] = {"type": t, "enable": conf.get("enable", True), "ids": [lid],
                          "status": dict(st),
                          "node_status": [{"node": broker.node_name, "status": st}]}
            continue
        g["ids"] = sorted(g["ids"] + [lid])
        s = g["status"]
        g["status"] = {"running": s["running"] if s["running"] == st["running"]
                       else "inconsistent",
                       "max_connections": _max_sum(s["max_connections"], st["max_connections"]),
                       "current_connections": s["current_connections"]
                       + st["current_connections"]}
        g["node_status"].insert(0, {"node": broker.node_name, "status": st})
    return list(by_type.values())


# -- request bodies ---------------------------------------------------------------------------

_READ_ONLY = ("running", "current_connections")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def _body_conf(body: dict, *, path_id: str | None = None) -> tuple[str, str, dict]:
    """EMQX's parse_listener_conf: (type, name, conf) from a POST/PUT body."""
    if not isinstance(body, dict):
        raise ListenerOpError(400, "BAD_REQUEST", "body: a JSON object is expected")
    conf = {k: v for k, v in body.items() if k not in _READ_ONLY}
    ltype = conf.pop("type", None)
    if ltype is None and path_id is not None:
        ltype = path_id.partition(":")[0]
    if ltype not in CONFIG_TYPES:
        raise ListenerOpError(400, "BAD_REQUEST", f"type: expected one of "
                                                  f"{', '.join(CONFIG_TYPES)}, got {ltype!r}")
    lid = conf.pop("id", None)
    name = conf.pop("name", None)
    if lid is not None:
        t, n = parse_id(str(lid))
        if t != ltype:
            raise ListenerOpError(400, "BAD_REQUEST", "listener_type_inconsistent")
        name = n
    elif name is None and path_id is not None:
        name = path_id.partition(":")[2]
    if not isinstance(name, str) or not name:
        raise ListenerOpError(400, "BAD_REQUEST", "listener_config_invalid: a name is "
                                                  "required")
    if not _NAME_RE.fullmatch(name):
        raise ListenerOpError(400, "BAD_REQUEST", f"name: invalid listener name {name!r}: "
                                                  "letters, digits, '-' and '_' only, "
                                                  "starting with a letter or digit")
    if path_id is not None and f"{ltype}:{name}" != path_id:
        raise ListenerOpError(400, "BAD_LISTENER_ID", "Path and body's listener id not match")
    return ltype, name, conf


# -- handlers ---------------------------------------------------------------------------------

def _broker(request: Request):
    return request.app.state.ctx.broker


def _api_error(e: Exception) -> ApiError:
    if isinstance(e, ListenerOpError):
        return ApiError(e.status, e.code, e.message)
    return ApiError(400, "BAD_REQUEST", str(e))


ListenerType = Annotated[Optional[Literal["tcp", "ssl", "ws", "wss", "quic"]],
                         Query(description="Listener type", examples=["tcp"])]
ListenerId = Annotated[str, Path(description="Listener id", examples=["tcp:demo"])]
_ID_ERRORS = error_responses({400: ["BAD_LISTENER_ID"], 404: ["BAD_LISTENER_ID", "BAD_REQUEST"]})
_LISTENER_BODY = {"type": "object", "description": "Listener config (EMQX listeners.<type> "
                                                   "fields) with `type` and `name` (or `id`)",
                  "example": {"name": "demo", "type": "tcp", "bind": "0.0.0.0:1884",
                              "max_connections": 204800, "mountpoint": ""}}


def _lookup(broker, lid: str) -> tuple[str, str]:
    ltype, name = parse_id(lid)
    if listeners.configured(broker.config, ltype, name) is None:
        raise ListenerOpError(404, "BAD_LISTENER_ID", NOT_FOUND_MSG)
    return ltype, name


@router.get("/listeners", summary="List listeners",
            description="List all running node's listeners for the specified type.")
async def list_listeners(request: Request, type: ListenerType = None) -> list[dict]:
    return list_view(_broker(request), type)


@router.get("/listeners_status", summary="Listeners status by type",
            description="List all running node's listeners live status. group by listener "
                        "type")
async def listeners_status(request: Request) -> list[dict]:
    return type_status_view(_broker(request))


@router.post("/listeners", summary="Create a listener",
             description="Create the specified listener on all nodes.",
             responses=error_responses({400: ["BAD_LISTENER_ID", "BAD_REQUEST"]}))
async def create_listener(request: Request,
                          body: Annotated[dict, Body(json_schema_extra=_LISTENER_BODY)]):
    broker = _broker(request)
    async with config_lock(broker):
        try:
            ltype, name, conf = _body_conf(body)
            if listeners.configured(broker.config, ltype, name) is not None:
                raise ListenerOpError(400, "BAD_LISTENER_ID", "Already Exist")
            if "bind" not in conf:
                raise ListenerOpError(400, "BAD_REQUEST", f"listeners.{ltype}.{name}.bind: "
                                                          "required key missing")
            await change_listeners(broker, {ltype: {name: conf}})
        except (ListenerOpError, ConfigError) as e:
            raise _api_error(e) from None
        return listener_view(broker, f"{ltype}:{name}")


@router.get("/listeners/{id}", summary="Get a listener",
            description="List all running node's listeners for the specified id.",
            responses=_ID_ERRORS)
async def get_listener(request: Request, id: ListenerId):
    broker = _broker(request)
    try:
        _lookup(broker, id)
    except ListenerOpError as e:
        raise _api_error(e) from None
    return listener_view(broker, id)


@router.put("/listeners/{id}", summary="Update a listener",
            description="Update the specified listener on all nodes.",
            responses=error_responses({400: ["BAD_REQUEST", "BAD_LISTENER_ID"],
                                       404: ["BAD_LISTENER_ID", "BAD_REQUEST"]}))
async def update_listener(request: Request, id: ListenerId,
                          body: Annotated[dict, Body(json_schema_extra=_LISTENER_BODY)]):
    broker = _broker(request)
    async with config_lock(broker):
        try:
            ltype, name = _lookup(broker, id)
            _t, _n, conf = _body_conf(body, path_id=id)
            current = broker.config.dump("listeners", hidden=True)[ltype][name]
            await change_listeners(broker, {ltype: {name: unmask(conf, current)}})
        except (ListenerOpError, ConfigError) as e:
            raise _api_error(e) from None
        return listener_view(broker, id)


@router.delete("/listeners/{id}", summary="Delete a listener",
               description="Delete the specified listener on all nodes.", status_code=204,
               responses={204: {"description": "Listener deleted"},
                          **error_responses({400: ["BAD_LISTENER_ID"],
                                             404: ["BAD_LISTENER_ID"]})})
async def delete_listener(request: Request, id: ListenerId):
    broker = _broker(request)
    async with config_lock(broker):
        try:
            ltype, name = _lookup(broker, id)
            await change_listeners(broker, {ltype: {name: TOMBSTONE}})
        except (ListenerOpError, ConfigError) as e:
            raise _api_error(e) from None
    return Response(status_code=204)


async def _action(request: Request, lid: str, action: str):
    broker = _broker(request)
    async with config_lock(broker):
        try:
            ltype, name = _lookup(broker, lid)
            if action == "restart":
                await listeners.stop_listener(broker, lid)
            # As EMQX: start/restart persist enable=true, stop persists enable=false.
            await change_listeners(broker, {ltype: {name: {"enable": action != "stop"}}},
                                   force=frozenset({lid}))
        except (ListenerOpError, ConfigError) as e:
            raise _api_error(e) from None
    return Response(status_code=200)


_ACTION_RESPONSES = {200: {"description": "Updated"},
                     **error_responses({400: ["BAD_REQUEST", "BAD_LISTENER_ID"],
                                        404: ["BAD_LISTENER_ID"]})}


@router.post("/listeners/{id}/start", summary="Start a listener",
             description="Start the listener on all nodes.", responses=_ACTION_RESPONSES)
async def start_listener_api(request: Request, id: ListenerId):
    return await _action(request, id, "start")


@router.post("/listeners/{id}/stop", summary="Stop a listener",
             description="Stop the listener on all nodes.", responses=_ACTION_RESPONSES)
async def stop_listener_api(request: Request, id: ListenerId):
    return await _action(request, id, "stop")


@router.post("/listeners/{id}/restart", summary="Restart a listener",
             description="Restart listeners on all nodes.", responses=_ACTION_RESPONSES)
async def restart_listener_api(request: Request, id: ListenerId):
    return await _action(request, id, "restart")
