"""GET /nodes, /nodes/{node}, /nodes/{node}/metrics, /nodes/{node}/stats and GET /cluster.

emqpy runs as a one-node cluster: the node list holds this node, and any other node name is
404 NOT_FOUND "Node not found: <name>", as EMQX answers for a node it does not know.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from emqpy import EMQX_VERSION
from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.mgmt import stats_api
from emqpy.monitor import node as nodeinfo

router = APIRouter(dependencies=[Depends(authenticated)], responses=AUTH_RESPONSES)

NodeName = Annotated[str, Path(description="Node name", examples=["emqx@127.0.0.1"])]
_NOT_FOUND = error_responses({404: ["NOT_FOUND"]})
# a node of the cluster that does not answer (emqpy.cluster)
_UNAVAILABLE = error_responses({503: ["SERVICE_UNAVAILABLE"]})

_S, _I, _N = {"type": "string"}, {"type": "integer", "minimum": 0}, {"type": "number"}
NODE_INFO_SCHEMA = {"type": "object", "properties": {
    "node": {**_S, "description": "Node name", "example": "emqx@127.0.0.1"},
    "connections": {**_I, "description": "Sessions on this node (connected or not)"},
    "live_connections": {**_I, "description": "Clients currently connected to this node"},
    "cluster_sessions": {**_I, "description": "Sessions in the cluster"},
    "load1": {**_N, "description": "CPU average load in 1 minute"},
    "load5": {**_N, "description": "CPU average load in 5 minutes"},
    "load15": {**_N, "description": "CPU average load in 15 minutes"},
    "max_fds": {**_I, "description": "File descriptors limit"},
    "memory_total": {**_S, "description": "Host memory", "example": "512.00M"},
    "memory_used": {**_S, "description": "Host memory in use", "example": "256.00M"},
    "node_status": {**_S, "enum": ["running", "stopped"], "description": "Node status"},
    "otp_release": {**_S, "description": "Runtime version (Python version/implementation)"},
    "process_available": {**_I, "description": "Limit of concurrent units (file descriptors)"},
    "process_used": {**_I, "description": "Running units: event loop tasks and connections"},
    "uptime": {**_I, "description": "Node uptime, milliseconds"},
    "version": {**_S, "description": "Release version", "example": EMQX_VERSION},
    "edition": {**_S, "enum": ["Opensource", "Enterprise"], "description": "Release edition"},
    "sys_path": {**_S, "description": "Path to system files"},
    "log_path": {**_S, "description": "Path to log files"},
    "role": {**_S, "enum": ["core", "replicant"], "description": "Node role"},
}}


def _json(schema: dict, description: str = "") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _all_nodes(broker) -> list[str]:
    if broker.cluster is None:
        return [broker.node_name]
    return sorted(set(broker.cluster.running_nodes()) | set(broker.cluster.stopped_nodes()))


def _cluster_member(request: Request, node: str):
    """The local broker, once `node` is a node of its cluster (404 otherwise)."""
    broker = request.app.state.ctx.broker
    if node not in _all_nodes(broker):
        raise ApiError(404, "NOT_FOUND", f"Node not found: {node}")
    return broker


_LOCAL = {"node_info": nodeinfo.node_info, "node_metrics": nodeinfo.node_metrics,
          "per_node_stats": nodeinfo.per_node_stats}


async def _on_node(broker, node: str, call: str) -> dict:
    """`call` answered by `node`: here for this node, over the cluster for another; a node
    that does not answer is shown stopped (node_info) or is a 503 (the others)."""
    if node == broker.node_name:
        return _LOCAL[call](broker)
    from emqpy.cluster.link import RpcError
    try:
        return await broker.cluster.call(node, call)
    except RpcError as e:
        if call == "node_info":
            return {"node": node, "node_status": "stopped"}
        raise ApiError(503, "SERVICE_UNAVAILABLE", str(e)) from None


def _broker(request: Request, node: str | None = None):
    broker = request.app.state.ctx.broker
    if node is not None and node != broker.node_name:
        raise ApiError(404, "NOT_FOUND", f"Node not found: {node}")
    return broker


@router.get("/nodes", tags=["Nodes"], description="List EMQX nodes",
            responses={200: _json({"type": "array", "items": NODE_INFO_SCHEMA},
                                  "List all EMQX nodes"), **_UNAVAILABLE})
async def list_nodes(request: Request):
    broker = _broker(request)
    if broker.cluster is None:
        return [nodeinfo.node_info(broker)]
    return [await _on_node(broker, name, "node_info") for name in _all_nodes(broker)]


@router.get("/nodes/{node}", tags=["Nodes"], description="Get node info",
            responses={200: _json(NODE_INFO_SCHEMA, "Get node info successfully"),
                       **_NOT_FOUND, **_UNAVAILABLE})
async def get_node(request: Request, node: NodeName):
    return await _on_node(_cluster_member(request, node), node, "node_info")


@router.get("/nodes/{node}/metrics", tags=["Nodes"],
            description="Get node run-time counter metrics. Such as received or sent bytes or "
                        "messages, the number of succeeded or failed authentications or "
                        "authorizations, etc.",
            responses={200: _json(stats_api.NODE_METRICS_SCHEMA,
                                  "Get node metrics successfully"), **_NOT_FOUND, **_UNAVAILABLE})
async def get_node_metrics(request: Request, node: NodeName):
    return await _on_node(_cluster_member(request, node), node, "node_metrics")


@router.get("/nodes/{node}/stats", tags=["Nodes"],
            description="Get node run-time stats. Such as the number of topics, connections, "
                        "etc.",
            responses={200: _json(stats_api.AGGREGATED_STATS_SCHEMA,
                                  "Get node stats successfully"), **_NOT_FOUND, **_UNAVAILABLE})
async def get_node_stats(request: Request, node: NodeName):
    return await _on_node(_cluster_member(request, node), node, "per_node_stats")


@router.get("/cluster", tags=["Cluster"], description="Get cluster info",
            responses={200: _json({"type": "object", "properties": {
                "name": {**_S, "description": "Cluster name"},
                "nodes": {"type": "array", "items": _S, "description": "Node name"},
                "self": {**_S, "description": "Self node name"}}})})
async def cluster_info(request: Request):
    broker = _broker(request)
    return {"name": broker.config.cluster.name,
            "nodes": _all_nodes(broker), "self": broker.node_name}
