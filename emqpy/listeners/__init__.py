"""Transports that feed bytes to channels: tcp, ssl, ws, wss (EMQX's four listener types).

`broker.listeners` maps "type:name" to a listener for every configured listener, running or
not (`enable = false` ones are there with running False, as the EMQX API lists them).
Run-time control: the one implementation behind the listeners API, `PUT /configs`,
`emqpy ctl listeners` and embedding programs:

    await start_listener(broker, "ssl", "internal", cfg)   # add, or replace and restart
    await stop_listener(broker, "ssl:internal")            # stop, keep it listed
    await restart_listener(broker, "ssl:internal")
    await stop_listener(broker, "ssl:internal", remove=True)  # stop and forget
    await reconcile(broker, old_config, new_config)        # apply a config change

Each acts on one listener only: clients of other listeners stay connected. Failures raise
ListenerError with a message naming the listener.
"""
from __future__ import annotations

import logging
from typing import Any

from emqpy.listeners.base import Listener, ListenerError
from emqpy.listeners.tcp import SslListener, TcpListener
from emqpy.listeners.ws import WsListener, WssListener

log = logging.getLogger("emqpy.listeners")

LISTENER_TYPES: dict[str, type[Listener]] = {
    "tcp": TcpListener, "ssl": SslListener, "ws": WsListener, "wss": WssListener,
}

__all__ = ["LISTENER_TYPES", "Listener", "ListenerError", "listener_config", "configured",
           "build_listener", "start_listeners", "start_listener", "stop_listener",
           "restart_listener", "reconcile"]


def listener_config(ltype: str, cfg: Any):
    """`cfg` as the config model of its type: a model is returned as is, a dict (EMQX JSON
    shape) is validated (pydantic.ValidationError on bad input)."""
    from emqpy.config import listeners as models

    model = {"tcp": models.TcpListener, "ssl": models.SslListener,
             "ws": models.WsListener, "wss": models.WssListener}.get(ltype)
    if model is None:
        raise ListenerError(f"unknown listener type {ltype!r}")
    if isinstance(cfg, model):
        return cfg
    return model.model_validate(cfg or {})


def configured(config, ltype: str, name: str):
    """The config section of listener `ltype:name` in `config`, None if there is none."""
    if ltype not in LISTENER_TYPES:
        return None
    return getattr(config.listeners, ltype).get(name)


def build_listener(broker, ltype: str, name: str, cfg: Any) -> Listener:
    """A listener object, not started. Built before a running listener is stopped, so settings
    the class refuses (ListenerError) never cost that listener's clients their connections."""
    cfg = listener_config(ltype, cfg)  # (ListenerError for an unknown type)
    return LISTENER_TYPES[ltype](broker, name, cfg)


async def start_listeners(broker) -> None:
    """Create every configured listener and start the enabled ones (broker start); one that
    exists already (a cluster's replayed listener change made it) is left as it is."""
    for ltype in LISTENER_TYPES:
        for name, cfg in getattr(broker.config.listeners, ltype).items():
            if f"{ltype}:{name}" in broker.listeners:
                continue
            lst = build_listener(broker, ltype, name, cfg)
            broker.listeners[lst.id] = lst
            if cfg.enable:
                await lst.start()


async def _start(lst: Listener) -> None:
    try:
        await lst.start()
    except Exception as e:  # a busy port, a missing certificate...
        try:
            await lst.stop()
        except Exception:
            pass
        if isinstance(e, ListenerError):
            raise
        raise ListenerError(f"failed to start listener {lst.id}: {e}") from None


async def start_listener(broker, ltype: str, name: str, cfg: Any, *,
                         start: bool | None = None) -> Listener:
    """Add a listener, or replace the one with this id (stopped first, so it can rebind its
    port); starts it when `start` (default: `cfg.enable`). Raises ListenerError if it cannot
    start: it is then listed, not running."""
    lst = build_listener(broker, ltype, name, cfg)
    if broker.listeners.get(lst.id) is not None:
        await stop_listener(broker, lst.id)
    broker.listeners[lst.id] = lst
    if lst.cfg.enable if start is None else start:
        await _start(lst)
    return lst


async def stop_listener(broker, lid: str, *, remove: bool = False) -> bool:
    """Stop listener `lid` ("ssl:default") and disconnect its clients (others are untouched);
    it stays listed unless `remove`. Returns whether it was running."""
    lst = broker.listeners.get(lid)
    if lst is None:
        return False
    was_running = bool(lst.running)
    await lst.stop()
    broker.flush()  # send the DISCONNECTs queued by the closing channels
    if remove:
        broker.listeners.pop(lid, None)
    return was_running


async def restart_listener(broker, lid: str) -> Listener:
    """Stop and start listener `lid` with its current settings."""
    lst = broker.listeners.get(lid)
    if lst is None:
        raise ListenerError(f"listener {lid} not found")
    await stop_listener(broker, lid)
    await _start(lst)
    return lst


# -- applying a config change --------------------------------------------------------------

def _raw(config, ltype: str, name: str) -> dict | None:
    cfg = configured(config, ltype, name)
    return None if cfg is None else cfg.model_dump(mode="json")


async def reconcile(broker, old, new, force: frozenset = frozenset()) -> None:
    """Make the running listeners match `new.listeners` where it differs from `old` (and for
    the ids in `force`): start added/enabled ones, stop removed/disabled ones, restart ones
    whose socket settings changed, update the others in place. Listeners whose config did not
    change are left alone (e.g. one stopped by `emqpy ctl listeners stop`). On a failure the
    listeners changed so far are put back and ListenerError is raised."""
    undo: list = []
    try:
        for ltype in LISTENER_TYPES:
            names = set(getattr(old.listeners, ltype)) | set(getattr(new.listeners, ltype))
            for name in sorted(names):
                lid = f"{ltype}:{name}"
                if lid not in force and _raw(old, ltype, name) == _raw(new, ltype, name):
                    continue
                prev = broker.listeners.get(lid)
                undo.append((lid, prev, prev is not None and prev.running,
                             getattr(prev, "cfg", None)))
                await _reconcile_one(broker, prev, configured(new, ltype, name), ltype, name)
    except Exception as e:
        for lid, prev, was_running, prev_cfg in reversed(undo):
            try:
                await _put_back(broker, lid, prev, was_running, prev_cfg)
            except Exception:
                log.exception("could not restore listener %s", lid)
        if isinstance(e, ListenerError):
            raise
        raise ListenerError(str(e)) from None


async def _reconcile_one(broker, lst, new_cfg, ltype: str, name: str) -> None:
    lid = f"{ltype}:{name}"
    if new_cfg is None:  # deleted
        await stop_listener(broker, lid, remove=True)
        return
    if not new_cfg.enable:  # kept, listed as not running
        if lst is None:
            broker.listeners[lid] = build_listener(broker, ltype, name, new_cfg)
        else:
            await stop_listener(broker, lid)
            lst.cfg = new_cfg
        return
    if lst is not None and lst.running and not lst.needs_restart(new_cfg):
        lst.cfg = new_cfg  # applies to new connections; nobody is dropped
        return
    await start_listener(broker, ltype, name, new_cfg, start=True)


async def _put_back(broker, lid: str, prev, was_running: bool, prev_cfg) -> None:
    cur = broker.listeners.get(lid)
    if cur is not None and cur is not prev:
        await cur.stop()
    if prev is None:
        broker.listeners.pop(lid, None)
        return
    broker.listeners[lid] = prev
    if prev_cfg is not None and prev.cfg is not prev_cfg:
        prev.cfg = prev_cfg
    if was_running and not prev.running:
        await prev.start()
