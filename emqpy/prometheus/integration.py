"""GET /prometheus/data_integration (EMQX's emqx_prometheus_data_integration): the overview
counts, then per rule, per action and per connector their series; as Prometheus families and
as EMQX's JSON form. Rules come from the rule engine's functions, actions and connectors from
the bridge feature's read-only snapshot (emqpy.bridge.stats)."""
from __future__ import annotations

from emqpy.prometheus.collector import Family

# (name, type, counter key or None for a gauge read from the action itself)
ACTION = (("emqx_action_enable", "gauge", None), ("emqx_action_status", "gauge", None),
          ("emqx_action_matched", "counter", "matched"),
          ("emqx_action_dropped", "counter", "dropped"),
          ("emqx_action_success", "counter", "success"),
          ("emqx_action_failed", "counter", "failed"),
          ("emqx_action_inflight", "gauge", None),
          ("emqx_action_received", "counter", "received"),
          ("emqx_action_late_reply", "counter", "late_reply"),
          ("emqx_action_retried", "counter", "retried"),
          ("emqx_action_retried_success", "counter", "retried.success"),
          ("emqx_action_retried_failed", "counter", "retried.failed"),
          ("emqx_action_dropped_resource_stopped", "counter", "dropped.resource_stopped"),
          ("emqx_action_dropped_resource_not_found", "counter", "dropped.resource_not_found"),
          ("emqx_action_dropped_queue_full", "counter", "dropped.queue_full"),
          ("emqx_action_dropped_other", "counter", "dropped.other"),
          ("emqx_action_dropped_expired", "counter", "dropped.expired"),
          ("emqx_action_queuing", "gauge", None))
CONNECTOR = (("emqx_connector_enable", "gauge"), ("emqx_connector_status", "gauge"))


def _status(s: str) -> int:
    return 1 if s == "connected" else 0  # EMQX's status_to_number


def _action_values(a: dict) -> dict:
    own = {"emqx_action_enable": int(a["enable"]), "emqx_action_status": _status(a["status"]),
           "emqx_action_inflight": a["inflight"], "emqx_action_queuing": a["queuing"]}
    return {name: own[name] if key is None else a["counters"].get(key, 0)
            for name, _t, key in ACTION}


def _rules(broker) -> tuple[tuple, dict]:
    try:
        from emqpy.rule_engine.metrics import PROMETHEUS, prometheus_data
    except ImportError:  # a trimmed install without the rule engine
        return (), {"emqx_rules_count": 0, "emqx_actions_count": 0, "rules": {}}
    return PROMETHEUS, prometheus_data(broker)


def _bridges(broker) -> dict:
    try:
        from emqpy.bridge.stats import snapshot
    except ImportError:  # a trimmed install without data integration
        return {"connectors": [], "actions": []}
    return snapshot(broker)


def collect(broker, mode: str = "node") -> tuple[list[Family], dict]:
    rule_series, data = _rules(broker)
    bridges = _bridges(broker)
    node = {"node": broker.node_name} if mode == "all_nodes_unaggregated" else {}
    overview = {"emqx_rules_count": data["emqx_rules_count"],
                "emqx_actions_count": data["emqx_actions_count"],
                "emqx_connectors_count": len(bridges["connectors"])}
    # (the overview is one value for the cluster: no node label)
    families = [Family(name, "gauge", "", [({}, value)]) for name, value in overview.items()]
    rules = [{"id": rid, **node, **m} for rid, m in data["rules"].items()]
    actions = [{"id": a["id"], **node, **_action_values(a)} for a in bridges["actions"]]
    connectors = [{"id": c["id"], **node, "emqx_connector_enable": int(c["enable"]),
                   "emqx_connector_status": _status(c["status"])}
                  for c in bridges["connectors"]]
    for series, rows in (([(n, t) for n, t, _k in rule_series], rules),
                         ([(n, t) for n, t, _k in ACTION], actions), (CONNECTOR, connectors)):
        for name, type_ in series:
            families.append(Family(name, type_, "", [
                ({"id": r["id"], **node}, r[name]) for r in rows]))
    as_json = {"data_integration_overview": overview, "rules": rules, "actions": actions,
               "connectors": connectors}
    return families, as_json
