"""EMQX's Listeners API (``/listeners``, ``/listeners_status``, ``/listeners/{id}[/start|stop|
restart]``) and the runtime listener operations behind it (also used by ``PUT /configs`` and
``emqpy ctl listeners``).

Every change follows EMQX: validate the new ``listeners`` root, make the running listeners match
it (only the listener concerned is touched: clients on other listeners stay connected), then
commit ``broker.config`` and save the root in ``data_dir/configs/cluster.hocon`` so the next start
uses it. Listener classes come from ``emqpy.listeners.LISTENER_TYPES``; a type there works here
without changes.
"""
from __future__ import annotations

import logging
import math
import re
from typing import Annotated, Any, Literal, Optional

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.config import ConfigError, commit, config_lock, persist, update_root
from emqpy.config.listeners import LISTENER_TYPES as CONFIG_TYPES, TOMBSTONE

log = logging.getLogger("emqpy.mgmt")

router = APIRouter(tags=["Listeners"], dependencies=[Depends(authenticated)],
                   responses=AUTH_RESPONSES)

NOT_FOUND_MSG = "Listener id not found"
# Settings a running listener takes without a restart (they apply to new connections;
# `acceptors`, the number of accept watchers, when the listener next starts).
HOT_KEYS = frozenset({"enable", "max_connections", "mountpoint", "zone", "enable_authn",
                      "access_rules", "max_conn_rate", "messages_rate", "bytes_rate",
                      "acceptors"})

def implemented_types() -> dict:
    from emqpy.listeners import LISTENER_TYPES
    return LISTENER_TYPES


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


def listener_cfg(config, ltype: str, name: str):
    return getattr(config.listeners, ltype, {}).get(name)


# -- runtime: make broker.listeners match a config ---------------------------------------------

def _needs_restart(lst, old_cfg, new_cfg) -> bool:
    """Whether a running listener must restart to take ``new_cfg`` (bind, TLS, socket
    options...); the listener class decides when it knows (``needs_restart``)."""
    if hasattr(lst, "needs_restart"):
        return lst.needs_restart(new_cfg)
    a, b = old_cfg.model_dump(mode="json"), new_cfg.model_dump(mode="json")
    return any(a.get(k) != b.get(k) for k in a.keys() | b.keys() if k not in HOT_KEYS)


def _set_cfg(lst, cfg) -> None:
    """Give a listener a new config for its next connections (listener classes derive their
    limits in the ``cfg`` setter; the attributes are set too for classes without one)."""
    try:
        lst.cfg = cfg
    except Exception as e:  # e.g. a max_conn_rate the listener cannot parse
        raise ListenerOpError(400, "BAD_REQUEST", f"listener {lst.id}: {e}") from None
    lst.mountpoint = cfg.mountpoint
    mc = cfg.max_connections
    lst.max_connections = 0 if mc == math.inf else int(mc)


def build_listener(broker, ltype: str, name: str, cfg):
    """A (not started) listener object; ListenerOpError if the type is not implemented or the
    class refuses the settings. Built before a running listener is stopped, so bad settings
    never cost its clients their connections."""
    cls = implemented_types().get(ltype)
    if cls is None:
        raise ListenerOpError(400, "BAD_REQUEST", f"listener type {ltype} is not supported by "
                                                  "this broker")
    try:
        return cls(broker, name, cfg)
    except Exception as e:  # e.g. a max_conn_rate the class cannot parse
        raise ListenerOpError(400, "BAD_REQUEST", f"listener {ltype}:{name}: {e}") from None


async def start_listener(broker, ltype: str, name: str, cfg, lst=None):
    """Start a listener of ``ltype`` with config section ``cfg`` (or the object ``lst`` from
    ``build_listener``); it replaces any stopped object under the same id in
    ``broker.listeners``. Raises ListenerOpError if it cannot start (a busy port, a missing
    certificate...); ``broker.listeners`` is then unchanged."""
    if lst is None:
        lst = build_listener(broker, ltype, name, cfg)
    try:
        await lst.start()
    except Exception as e:
        try:
            await lst.stop()
        except Exception:
            pass
        raise ListenerOpError(400, "BAD_REQUEST", f"failed to start listener {ltype}:{name}: "
                                                  f"{e}") from None
    broker.listeners[lst.id] = lst
    return lst


async def stop_listener(broker, lid: str, *, remove: bool = False) -> bool:
    """Stop a listener (its clients are disconnected; others are untouched). Returns False if
    it was not running. ``remove`` also forgets the object."""
    lst = broker.listeners.get(lid)
    if lst is None:
        return False
    was_running = bool(lst.running)
    await lst.stop()
    broker.flush()  # send the DISCONNECTs queued by the closing channels
    if remove:
        broker.listeners.pop(lid, None)
    return was_running


async def restart_listener(broker, lid: str):
    ltype, name = parse_id(lid)
    cfg = listener_cfg(broker.config, ltype, name)
    if cfg is None:
        raise ListenerOpError(404, "BAD_LISTENER_ID", NOT_FOUND_MSG)
    await stop_listener(broker, lid)
    return await start_listener(broker, ltype, name, cfg)


def _raw(config, ltype: str, name: str) -> dict | None:
    cfg = listener_cfg(config, ltype, name)
    return None if cfg is None else cfg.model_dump(mode="json")


async def reconcile(broker, old, new, force: frozenset = frozenset()) -> None:
    """Make the running listeners match ``new.listeners`` where it differs from ``old`` (and
    for the ids in ``force``): start added/enabled ones, stop removed/disabled ones, restart
    ones whose socket settings changed, update the others in place. Listeners whose config
    did not change are left alone (e.g. one stopped by `emqpy ctl listeners stop`). On a
    failure the listeners changed so far are put back and ListenerOpError is raised."""
    undo: list = []
    try:
        for ltype in CONFIG_TYPES:
            names = set(getattr(old.listeners, ltype)) | set(getattr(new.listeners, ltype))
            for name in sorted(names):
                if f"{ltype}:{name}" not in force and \
                        _raw(old, ltype, name) == _raw(new, ltype, name):
                    continue
                lid = f"{ltype}:{name}"
                prev = broker.listeners.get(lid)
                undo.append((lid, prev, prev is not None and prev.running,
                             getattr(prev, "cfg", None)))
                await _reconcile_one(broker, prev, listener_cfg(new, ltype, name), ltype, name)
    except Exception as e:  # a listener refusing its settings (ListenerError...) included
        for lid, prev, was_running, prev_cfg in reversed(undo):
            try:
                await _put_back(broker, lid, prev, was_running, prev_cfg)
            except Exception:
                log.exception("could not restore listener %s", lid)
        if isinstance(e, ListenerOpError):
            raise
        raise ListenerOpError(400, "BAD_REQUEST", str(e)) from None


async def _reconcile_one(broker, lst, new_cfg, ltype: str, name: str) -> None:
    lid = f"{ltype}:{name}"
    cls = implemented_types().get(ltype)
    if new_cfg is None:  # deleted
        await stop_listener(broker, lid, remove=True)
        return
    if cls is None:  # configured, but this broker has no transport of that type
        return
    if not new_cfg.enable:  # kept, listed as not running
        if lst is None:
            broker.listeners[lid] = build_listener(broker, ltype, name, new_cfg)
        else:
            await stop_listener(broker, lid)
            _set_cfg(lst, new_cfg)
        return
    if lst is not None and lst.running and not _needs_restart(lst, lst.cfg, new_cfg):
        _set_cfg(lst, new_cfg)  # applies to new connections; nobody is dropped
        return
    fresh = build_listener(broker, ltype, name, new_cfg)
    if lst is not None and lst.running:
        await stop_listener(broker, lid)
    await start_listener(broker, ltype, name, new_cfg, fresh)


async def _put_back(broker, lid: str, prev, was_running: bool, prev_cfg) -> None:
    cur = broker.listeners.get(lid)
    if cur is not None and cur is not prev:
        await cur.stop()
    if prev is None:
        broker.listeners.pop(lid, None)
        return
    broker.listeners[lid] = prev
    if prev_cfg is not None and prev.cfg is not prev_cfg:
        _set_cfg(prev, prev_cfg)
    if was_running and not prev.running:
        await prev.start()


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


def unmask(new: Any, current: Any) -> Any:
    """A PUT that sends back "******" keeps the stored secret."""
    if isinstance(new, dict) and isinstance(current, dict):
        return {k: (current[k] if v == "******" and k in current else unmask(v, current.get(k)))
                for k, v in new.items()}
    return new


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
    if listener_cfg(broker.config, ltype, name) is None:
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
            if listener_cfg(broker.config, ltype, name) is not None:
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
                await stop_listener(broker, lid)
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
