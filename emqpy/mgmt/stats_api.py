"""GET /stats and GET /metrics: this node's EMQX stats (gauges with their ``.max`` peaks) and
counters, per node (a list with ``node``) or aggregated over the cluster (``aggregate=true``)."""
from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Depends, Query, Request

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.broker.metrics import NAMES as METRIC_NAMES
from emqpy.monitor import node as nodeinfo

router = APIRouter(tags=["Metrics"], dependencies=[Depends(authenticated)],
                   responses=AUTH_RESPONSES)

STAT_NAMES = ("channels", "connections", "delayed", "live_connections", "cluster_sessions",
              "retained", "sessions", "suboptions", "subscribers", "subscriptions",
              "subscriptions.shared", "topics")
_COUNT = {"type": "integer", "minimum": 0}
AGGREGATED_STATS_SCHEMA = {"type": "object", "properties": {
    f"{n}.{k}": {**_COUNT, "description": f"{'Current' if k == 'count' else 'Peak'} {n}"}
    for n in STAT_NAMES for k in ("count", "max")}}
PER_NODE_STATS_SCHEMA = {"type": "object", "properties": {
    "node": {"type": "string", "description": "Node name", "example": "emqx@127.0.0.1"},
    **AGGREGATED_STATS_SCHEMA["properties"]}}
AGGREGATED_METRICS_SCHEMA = {"type": "object", "properties": {
    n: {**_COUNT, "description": f"Counter {n}"} for n in METRIC_NAMES}}
NODE_METRICS_SCHEMA = {"type": "object", "properties": {
    "node": {"type": "string", "description": "Node name"},
    **AGGREGATED_METRICS_SCHEMA["properties"]}}

Aggregate = Annotated[Optional[bool], Query(
    description="Calculation aggregate for all nodes", examples=[False])]


def _ok(schema: dict, description: str = "") -> dict:
    return {200: {"description": description,
                  "content": {"application/json": {"schema": schema}}}}


@router.get("/stats", description="EMQX stats",
            responses=_ok({"oneOf": [AGGREGATED_STATS_SCHEMA,
                                     {"type": "array", "items": PER_NODE_STATS_SCHEMA}]},
                          "List stats ok"))
async def stats(request: Request, aggregate: Aggregate = None):
    broker = request.app.state.ctx.broker
    if broker.cluster is not None:
        from emqpy.mgmt import cluster_query
        nodes = await cluster_query.per_node(broker, "per_node_stats")
        if aggregate:
            return sum_stats(nodes, broker.node_name)
        return [{"node": node, **data} for node, data in nodes.items()]
    data = nodeinfo.per_node_stats(broker)
    if aggregate:
        # the sum over running nodes of the per-node stats; one node here
        return data
    return [{"node": broker.node_name, **data}]


def sum_stats(nodes: dict, here: str) -> dict:
    """EMQX's cluster stats: every per-node stat summed over the nodes that answered, except
    the cluster-wide ones (retained, topics, shared subscriptions), taken from this node."""
    out: dict = {}
    for data in nodes.values():
        for key, value in data.items():
            if key not in nodeinfo.GLOBAL_STATS:
                out[key] = out.get(key, 0) + value
    for key in nodeinfo.GLOBAL_STATS:
        if key in nodes.get(here, {}):
            out[key] = nodes[here][key]
    return out


@router.get("/metrics", description="EMQX metrics",
            responses=_ok({"oneOf": [{"type": "array", "items": NODE_METRICS_SCHEMA},
                                     AGGREGATED_METRICS_SCHEMA]}))
async def metrics(request: Request, aggregate: Annotated[Optional[bool], Query(
        description="Whether to aggregate all nodes Metrics")] = None):
    broker = request.app.state.ctx.broker
    if broker.cluster is not None:
        from emqpy.mgmt import cluster_query
        nodes = await cluster_query.per_node(broker, "node_metrics")
        if aggregate:  # EMQX sums every counter over the running nodes
            out: dict = {}
            for data in nodes.values():
                for key, value in data.items():
                    out[key] = out.get(key, 0) + value
            return out
        return [{**data, "node": node} for node, data in nodes.items()]
    data = nodeinfo.node_metrics(broker)
    if aggregate:
        return data
    return [{**data, "node": broker.node_name}]
