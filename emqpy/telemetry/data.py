"""The report EMQX's telemetry would send (emqx_telemetry:get_telemetry), built from this
node's state; nothing here sends it. Figures of features emqpy does not have are 0 or empty."""
from __future__ import annotations

import os
import platform
import uuid
import weakref
from typing import Any

from emqpy.monitor import node

VERSION = "5.8.1"
REPORT_INTERVAL = 7 * 24 * 3600  # seconds: EMQX's default report interval, for the rates


def _uuid(broker, key: str) -> str:
    """A node or cluster UUID, made once and kept in the store (as EMQX keeps its own)."""
    store = broker.store
    value = store.get_meta(key) if store is not None else None
    if value is None:
        value = str(uuid.uuid1()).upper()
        if store is not None:
            store.set_meta(key, value)
    return value


def os_info() -> tuple[str, str]:
    """(name, version) from /etc/os-release, as EMQX reads them; "Unknown" without it."""
    fields = {}
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    fields[key] = value.strip('"')
    except OSError:
        return platform.system() or "Unknown", platform.release() or "Unknown"
    version = fields.get("VERSION") or fields.get("VERSION_ID") or fields.get("PRETTY_NAME")
    return fields.get("NAME", "Unknown"), version or "Unknown"


async def _authn_authz(broker) -> dict:
    from emqpy.authn import authenticator_stats
    from emqpy.authz import source_stats
    return {"authn": [a["id"] for a in await authenticator_stats(broker) if a["enable"]],
            "authn_listener": [],  # (emqpy has no per-listener authentication)
            "authz": sorted({s["type"] for s in await source_stats(broker) if s["enable"]})}


def _rules_and_bridges(broker) -> tuple[dict, dict]:
    from emqpy.bridge.stats import snapshot
    from emqpy.rule_engine.metrics import prometheus_data
    from emqpy.rule_engine.service import rules_using

    actions = snapshot(broker)["actions"]
    by_type: dict[str, dict] = {}
    for a in actions:
        t = by_type.setdefault(a["id"].split(":", 1)[0], {"num": 0, "num_linked_by_rules": 0})
        t["num"] += 1
        t["num_linked_by_rules"] += len(rules_using(broker, a["id"]))
    return ({"num_rules": prometheus_data(broker)["emqx_rules_count"]},
            {"num_data_bridges": len(actions), "data_bridge": by_type})


# Per broker, the message counts at the previous report (EMQX's rates are over the report
# interval since then); the entry dies with its broker.
_previous: "weakref.WeakKeyDictionary[Any, tuple[int, int]]" = weakref.WeakKeyDictionary()


async def report(broker) -> dict:
    """The report EMQX would send now."""
    stats, metrics = node.node_stats(broker), node.node_metrics(broker)
    sent, received = metrics.get("messages.sent", 0), metrics.get("messages.received", 0)
    prev_sent, prev_received = _previous.get(broker, (0, 0))
    _previous[broker] = (sent, received)
    rates = {"messages_sent_rate": (sent - prev_sent) / REPORT_INTERVAL,
             "messages_received_rate": (received - prev_received) / REPORT_INTERVAL}
    os_name, os_version = os_info()
    rule_engine, bridge = _rules_and_bridges(broker)
    retained = len(broker.retainer) if broker.retainer is not None else 0
    return {
        "emqx_version": VERSION,
        "license": {"edition": "opensource"},
        "os_name": os_name,
        "os_version": os_version,
        "otp_version": f"Python {platform.python_version()}",  # (what runs emqpy)
        "up_time": node.uptime_ms(broker),
        "uuid": _uuid(broker, "telemetry.node_uuid"),
        "cluster_uuid": _uuid(broker, "telemetry.cluster_uuid"),
        "nodes_uuid": [],
        "active_plugins": [],
        "num_clients": stats.get("live_connections.count", 0),
        "num_cluster_sessions": stats.get("cluster_sessions.count", 0),
        "messages_received": received,
        "messages_sent": sent,
        "build_info": {},
        "vm_specs": {"num_cpus": os.cpu_count() or 1,
                     "total_memory": node.vm_stats(broker)["total_memory"]},
        "mqtt_runtime_insights": {**rates, "num_topics": stats.get("topics.count", 0)},
        "advanced_mqtt_features": {"topic_rewrite": 0, "delayed": 0, "retained": retained,
                                   "auto_subscribe": 0},
        "authn_authz": await _authn_authz(broker),
        "gateway": {},
        "rule_engine": rule_engine,
        "bridge": bridge,
        "exhook": {"num_servers": 0, "servers": []},
    }
