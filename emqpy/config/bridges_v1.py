"""EMQX's v1 bridges (root ``bridges``, and the /bridges API) as the connector + action or
source pairs EMQX 5.8.1 turns them into (emqx_action_info, emqx_connector_schema).

A ``webhook`` bridge is an ``http`` connector and an ``http`` action; an ``mqtt`` bridge is an
``mqtt`` connector and, for its ``egress``, an ``mqtt`` action, for its ``ingress`` an ``mqtt``
source (one of the two: EMQX refuses a bridge with both). The action or source has the
bridge's name; the connector too, or ``NAME_2``, ``NAME_3``... when that connector name is
taken.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Container

from .bridges import (ActionResourceOpts, ConnectorResourceOpts, MqttAction, MqttConnector,
                      MqttSource, SourceResourceOpts)

# v1 bridge type -> the action (and connector) type it becomes; "http" is accepted as
# "webhook" is, as EMQX's API accepts both
V1_TYPES = {"webhook": "http", "http": "http", "mqtt": "mqtt"}
# what the API shows as a v1 bridge's type, per action type
V1_NAME = {"http": "webhook", "mqtt": "mqtt"}

_HTTP_PARAMETERS = ("body", "max_retries", "method", "request_timeout")
_HTTP_ACTION_KEYS = ("local_topic", "resource_opts", "enable", "description")
_HTTP_DROPPED = ("direction", "local_topic", "resource_opts", *_HTTP_PARAMETERS)
MQTT_BOTH = ("Upgrade not supported when ingress and egress exist in the same MQTT bridge. "
             "Please divide the egress and ingress part to separate bridges in the "
             "configuration.")
MQTT_NEITHER = "incompatible_bridge_v1: the MQTT bridge has neither egress nor ingress"
_DEFAULT_POOL_SIZE = 8


class V1Error(ValueError):
    """A v1 bridge that has no connector + action/source form."""


@dataclass
class Split:
    root: str                   # "actions" or "sources"
    type: str                   # the action/source type (= the connector type)
    entry: dict[str, Any]       # the action/source config
    connector: str              # the connector name
    connector_conf: dict[str, Any]


def _pick(conf: dict, keys) -> dict:
    return {k: v for k, v in conf.items() if k in keys}


def connector_name(taken: Container[str], bridge: str) -> str:
    """The bridge's name, or with `_2`, `_3`... until it is not a connector's name yet."""
    name, n = bridge, 1
    while name in taken:
        n += 1
        name = f"{bridge}_{n}"
    return name


def split(v1_type: str, conf: dict, connector: str) -> Split:
    """A v1 bridge config (without its type and name) as a connector named `connector`
    and an action or source."""
    etype = V1_TYPES.get(v1_type)
    if etype is None:
        raise V1Error(f"unknown bridge type: {v1_type}")
    if not isinstance(conf, dict):
        raise V1Error("a bridge config must be an object")
    return (_split_http if etype == "http" else _split_mqtt)(conf, connector)


def _resource_opts(conf: dict, model) -> dict | None:
    ro = conf.get("resource_opts")
    return _pick(ro, model.model_fields) if isinstance(ro, dict) else None


def _split_http(conf: dict, connector: str) -> Split:
    conn = {k: v for k, v in conf.items() if k not in _HTTP_DROPPED}
    action = _pick(conf, _HTTP_ACTION_KEYS)
    if (ro := _resource_opts(conf, ConnectorResourceOpts)) is not None:
        conn["resource_opts"] = ro
    if (ro := _resource_opts(conf, ActionResourceOpts)) is not None:
        action["resource_opts"] = ro
    action["parameters"] = {**_pick(conf, _HTTP_PARAMETERS), "path": "", "headers": {}}
    action["connector"] = connector
    return Split("actions", "http", action, connector, conn)


def _split_mqtt(conf: dict, connector: str) -> Split:
    egress, ingress = conf.get("egress") or {}, conf.get("ingress") or {}
    if egress and ingress:
        raise V1Error(MQTT_BOTH)
    if not egress and not ingress:
        raise V1Error(MQTT_NEITHER)
    part = egress or ingress
    if not isinstance(part, dict):
        raise V1Error(f"{'egress' if egress else 'ingress'}: expected an object")
    conn = _pick(conf, MqttConnector.model_fields)
    conn["resource_opts"] = _resource_opts(conf, ConnectorResourceOpts) or {}
    conn["pool_size"] = (ingress.get("pool_size") if ingress else None) \
        or (egress.get("pool_size") if egress else None) or _DEFAULT_POOL_SIZE
    model, ro_model = (MqttAction, ActionResourceOpts) if egress else \
        (MqttSource, SourceResourceOpts)
    entry = _pick(conf, model.model_fields)
    if "resource_opts" in entry:
        entry["resource_opts"] = _resource_opts(conf, ro_model)
    remote = part.get("remote") or {}
    local = part.get("local") or {}
    params = {**{k: v for k, v in part.items() if k not in ("local", "pool_size", "remote")},
              **(remote if isinstance(remote, dict) else {}), "local": local}
    entry["parameters"] = params
    entry["connector"] = connector
    if egress and isinstance(local, dict) and local.get("topic") is not None:
        entry["local_topic"] = local["topic"]
    return Split("actions" if egress else "sources", "mqtt", entry, connector, conn)


def _connectors_used(raw: dict, etype: str) -> set[str]:
    """The names of the `etype` connectors the actions and sources of `raw` use."""
    used = set()
    for root in ("actions", "sources"):
        for t in {etype, "webhook" if etype == "http" else etype}:
            for entry in ((raw.get(root) or {}).get(t) or {}).values():
                if isinstance(entry, dict):
                    used.add(entry.get("connector"))
    return used


def upgrade_bridges(raw: dict) -> dict:
    """A raw config whose `bridges` root is turned into connectors and actions/sources, as
    EMQX does when it reads its config. A bridge whose action or source is already there
    (saved in cluster.hocon after an earlier start, or made over the API) is not made again."""
    bridges = raw.get("bridges")
    if not isinstance(bridges, dict) or not all(
            isinstance(raw.get(r) or {}, dict) for r in ("connectors", "actions", "sources")):
        return raw  # (roots already validated: a change of another root)
    raw = {k: v for k, v in raw.items() if k != "bridges"}
    for v1_type, entries in bridges.items():
        if not isinstance(entries, dict):
            raise V1Error(f"bridges.{v1_type}: expected an object")
        for name, conf in entries.items():
            etype = V1_TYPES.get(v1_type)
            if etype is None:
                raise V1Error(f"bridges.{v1_type}: bridge type not supported by emqpy")
            if any(name in ((raw.get(root) or {}).get(t) or {})
                   for root in ("actions", "sources") for t in {etype, v1_type}):
                continue
            connectors = dict(raw.get("connectors") or {})
            of_type = dict(connectors.get(etype) or {})
            # a connector of the bridge's name that nothing uses is this bridge's own, made
            # at an earlier start and saved with the connectors root since: it is replaced
            # (EMQX would make NAME_2, and one more at every start)
            taken = {c for c in of_type if c != name or name in _connectors_used(raw, etype)}
            try:
                s = split(v1_type, conf, connector_name(taken, name))
            except V1Error as e:
                raise V1Error(f"bridges.{v1_type}.{name}: {e}") from None
            of_type[s.connector] = s.connector_conf
            connectors[etype] = of_type
            root = dict(raw.get(s.root) or {})
            root[s.type] = {**(root.get(s.type) or {}), name: s.entry}
            raw = {**raw, "connectors": connectors, s.root: root}
    return raw
