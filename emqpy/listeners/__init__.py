"""Transports that feed bytes to channels: tcp, ssl, ws, wss (EMQX's four listener types).

`broker.listeners` maps "type:name" to a listener for every configured listener, running or
not (`enable = false` ones are there with running False, as the EMQX API lists them).
Run-time control, for the listeners API and for config changes:

    await start_listener(broker, "ssl", "internal", cfg)   # add, or replace and restart
    await stop_listener(broker, "ssl:internal")            # stop, keep it listed
    await restart_listener(broker, "ssl:internal")
    await remove_listener(broker, "ssl:internal")           # stop and forget
    await sync_listeners(broker)                           # make them match broker.config

Each acts on one listener only: clients of other listeners stay connected.
"""
from __future__ import annotations

from typing import Any

from emqpy.listeners.base import Listener, ListenerError
from emqpy.listeners.tcp import SslListener, TcpListener
from emqpy.listeners.ws import WsListener, WssListener

LISTENER_TYPES: dict[str, type[Listener]] = {
    "tcp": TcpListener, "ssl": SslListener, "ws": WsListener, "wss": WssListener,
}

__all__ = ["LISTENER_TYPES", "Listener", "ListenerError", "start_listeners", "start_listener",
           "stop_listener", "restart_listener", "remove_listener", "sync_listeners",
           "listener_config"]


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


async def start_listeners(broker) -> None:
    """Create every configured listener and start the enabled ones (broker start)."""
    for ltype, cls in LISTENER_TYPES.items():
        for name, cfg in getattr(broker.config.listeners, ltype).items():
            lst = cls(broker, name, cfg)
            broker.listeners[lst.id] = lst
            if cfg.enable:
                await lst.start()


async def start_listener(broker, ltype: str, name: str, cfg: Any) -> Listener:
    """Add a listener, or replace the one with this id (stopped first, so it can rebind its
    port); starts it when `cfg.enable`. Raises ListenerError if it cannot start: it is then
    listed, not running."""
    cls = LISTENER_TYPES.get(ltype)
    if cls is None:
        raise ListenerError(f"unknown listener type {ltype!r}")
    cfg = listener_config(ltype, cfg)
    lid = f"{ltype}:{name}"
    old = broker.listeners.get(lid)
    if old is not None:
        await old.stop()
    lst = cls(broker, name, cfg)
    broker.listeners[lid] = lst
    if cfg.enable:
        await lst.start()
    return lst


def _get(broker, lid: str) -> Listener:
    lst = broker.listeners.get(lid)
    if lst is None:
        raise KeyError(lid)
    return lst


async def stop_listener(broker, lid: str) -> Listener:
    """Stop listener `lid` ("ssl:default") and close its clients; it stays listed."""
    lst = _get(broker, lid)
    await lst.stop()
    return lst


async def restart_listener(broker, lid: str) -> Listener:
    lst = _get(broker, lid)
    await lst.stop()
    await lst.start()
    return lst


async def remove_listener(broker, lid: str) -> None:
    lst = broker.listeners.pop(lid, None)
    if lst is not None:
        await lst.stop()


async def sync_listeners(broker) -> None:
    """Bring the running listeners in line with `broker.config.listeners`: new ones started,
    deleted ones removed, changed ones restarted with their new config, the rest untouched."""
    wanted = {}
    for ltype in LISTENER_TYPES:
        for name, cfg in getattr(broker.config.listeners, ltype).items():
            wanted[f"{ltype}:{name}"] = (ltype, name, cfg)
    for lid in [lid for lid in broker.listeners if lid not in wanted]:
        await remove_listener(broker, lid)
    errors = []
    for lid, (ltype, name, cfg) in wanted.items():
        cur = broker.listeners.get(lid)
        if cur is not None and cur.cfg == cfg and cur.running == cfg.enable:
            continue
        try:
            await start_listener(broker, ltype, name, cfg)
        except ListenerError as e:
            errors.append(str(e))
    if errors:
        raise ListenerError("; ".join(errors))
