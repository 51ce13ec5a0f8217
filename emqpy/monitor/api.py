"""GET /monitor, /monitor/nodes/{node}, /monitor_current, /monitor_current/nodes/{node}
(EMQX's "Metrics" monitor endpoints). ``node`` may be ``all`` for the whole cluster, as in EMQX."""
from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Depends, Path, Query, Request

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.monitor import sampler, storage

router = APIRouter(tags=["Metrics"], dependencies=[Depends(authenticated)],
                   responses=AUTH_RESPONSES)

Latest = Annotated[Optional[int], Query(
    ge=1, description="The latest N seconds data. Like 300 for 5 min.", examples=[300])]
NodeName = Annotated[str, Path(description="EMQX node name.", examples=["emqx@127.0.0.1"])]

_INT = {"type": "integer"}
_GAUGE_DESC = {
    "disconnected_durable_sessions": "Disconnected durable sessions",
    "subscriptions_durable": "Subscriptions from durable sessions",
    "subscriptions": "Subscriptions", "topics": "Topics", "connections": "Sessions",
    "live_connections": "Connections",
}


def _props(keys_desc: dict[str, str]) -> dict:
    return {k: {"type": "integer", "description": d} for k, d in keys_desc.items()}


_SAMPLER = {"type": "object", "properties": {
    "time_stamp": {"type": "integer", "minimum": 0, "description": "Timestamp (ms)"},
    **_props({k: v + " at the time of sampling" for k, v in _GAUGE_DESC.items()}),
    **_props({k: f"Increase of {k} messages over the sample interval"
              for k in storage.DELTAS}),
}}
_CURRENT_PROPS = {
    **_props({v: f"{k} messages per second" for k, v in sampler.RATE_KEYS.items()}),
    **_props({k: v + " now" for k, v in _GAUGE_DESC.items()}),
    "retained_msg_count": {"type": "integer", "description": "Retained messages now"},
    "shared_subscriptions": {"type": "integer", "description": "Shared subscriptions now"},
}
_CURRENT = {"type": "object", "properties": _CURRENT_PROPS}
_CURRENT_NODE = {"type": "object", "properties": {
    **_CURRENT_PROPS,
    "node_uptime": {"type": "integer", "description": "Node up time (ms, as EMQX sends it)"}}}
_NOT_FOUND = error_responses({404: ["NOT_FOUND"]})
# in a cluster, the node asked did not answer (as EMQX's /monitor)
_BAD_RPC = error_responses({400: ["BAD_RPC"]})


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _resolve(request: Request, node: str):
    """(monitor, cluster?) for a node name; 404 for a node that is not this one."""
    broker = request.app.state.ctx.broker
    if node != "all" and node != broker.node_name:
        raise ApiError(404, "NOT_FOUND", f"Node not found: {node}")
    return sampler.get(broker), node == "all"


# In a cluster (emqpy.cluster), the other nodes answer these calls (emqpy/cluster/mgmt.py
# registers them): the whole cluster's figures are merged from every running node's.
SAMPLES, CURRENT = "monitor.samples", "monitor.current"


def _clustered(request: Request, node: str):
    """The broker when `node` (or ``all``) needs the other nodes' figures, else None."""
    broker = request.app.state.ctx.broker
    if broker.cluster is None or node == broker.node_name:
        return None
    if node != "all" and node not in broker.cluster.running_nodes():
        raise ApiError(404, "NOT_FOUND", f"Node not found: {node}")
    return broker


async def _ask(broker, node: str, name: str, *args):
    from emqpy.cluster.link import RpcError
    try:
        return await broker.cluster.call(node, name, *args)
    except RpcError as e:
        raise ApiError(400, "BAD_RPC", str(e)) from None


def _merge(per_node, synced) -> dict:
    """EMQX's merge of nodes' figures: summed, except the cluster-synced ones (the same on
    every node), which are taken as they are; a node's uptime is left out."""
    out: dict = {}
    for data in per_node:
        for key, value in data.items():
            if key == "node_uptime":
                continue
            out[key] = value if key in synced else out.get(key, 0) + value
    return out


@router.get("/monitor", description="List monitor (statistics) data for the whole cluster.",
            responses={200: _json({"type": "array", "items": _SAMPLER}),
                       **error_responses({400: ["BAD_RPC"]})})
async def monitor(request: Request, latest: Latest = None):
    broker = _clustered(request, "all")
    if broker is not None:
        per_node = await broker.cluster.call_all(SAMPLES, latest)
        buckets: dict[int, list] = {}
        for samples in per_node.values():
            for sample in samples:
                ts = sample.pop("time_stamp")
                if sample:  # (a node's gap filler: the merged series gets its own)
                    buckets.setdefault(ts, []).append(sample)
        now = sampler.now_ms()
        since = 0 if latest is None else max(now - storage.RETENTION, now - latest * 1000)
        merged = storage.fill_gaps({ts: sampler.adjust_cluster(
            _merge(rows, storage.CLUSTER_SYNCED)) for ts, rows in buckets.items()}, since)
        return [{**merged[ts], "time_stamp": ts} for ts in sorted(merged)]
    mon, _ = _resolve(request, "all")
    return await mon.samples(latest, cluster=True)


@router.get("/monitor/nodes/{node}",
            description="List the monitor (statistics) data on the specified node.",
            responses={200: _json({"type": "array", "items": _SAMPLER}), **_NOT_FOUND,
                       **_BAD_RPC})
async def monitor_node(request: Request, node: NodeName, latest: Latest = None):
    broker = _clustered(request, node)
    if broker is not None:
        if node == "all":
            return await monitor(request, latest)
        return await _ask(broker, node, SAMPLES, latest)
    mon, cluster = _resolve(request, node)
    return await mon.samples(latest, cluster=cluster)


@router.get("/monitor_current",
            description="Current monitor (statistics) data, e.g. number of connections and "
                        "connection rate in the whole cluster.",
            responses={200: _json(_CURRENT)})
async def monitor_current(request: Request):
    broker = _clustered(request, "all")
    if broker is not None:
        per_node = await broker.cluster.call_all(CURRENT, True)
        return sampler.adjust_cluster(_merge(per_node.values(), sampler.CLUSTER_SYNCED_NOW))
    mon, _ = _resolve(request, "all")
    return mon.current_rate(node_only=False)


@router.get("/monitor_current/nodes/{node}",
            description="Node monitor (statistics) data, e.g. number of connections and "
                        "connection rate on the specified node.",
            responses={200: _json(_CURRENT_NODE), **_NOT_FOUND, **_BAD_RPC})
async def monitor_current_node(request: Request, node: NodeName):
    broker = _clustered(request, node)
    if broker is not None:
        if node == "all":
            return await monitor_current(request)
        return await _ask(broker, node, CURRENT, False)
    mon, cluster = _resolve(request, node)
    return mon.current_rate(node_only=not cluster)
