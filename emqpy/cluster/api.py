"""EMQX's cluster membership endpoints (emqx_mgmt_api_cluster): ``PUT /cluster/{node}/invite``,
``PUT /cluster/{node}/invite_async``, ``GET /cluster/invitation``, ``DELETE
/cluster/{node}/force_leave``, ``GET /cluster/topology``. ``GET /cluster`` is mgmt/nodes_api.py's.
Errors as EMQX words them: 400 BAD_REQUEST with the reason (``Cannot invite self``,
``{already_in_cluster,'emqx1@127.0.0.1'}``, ``{node_down,'emqx2@127.0.0.1'}``, ...)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request, Response

from emqpy.api.auth import AUTH_RESPONSES, authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.cluster.membership import Ignored, JoinError
from emqpy.timefmt import rfc3339

router = APIRouter(dependencies=[Depends(authenticated)], responses=AUTH_RESPONSES,
                   tags=["Cluster"])

NodeName = Annotated[str, Path(description="node name", examples=["emqx2@127.0.0.1"])]
_BAD = error_responses({400: ["BAD_REQUEST"]})
_S = {"type": "string"}


def _json(schema: dict, description: str = "") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _membership(request: Request, node: str | None = None):
    if node is not None and len(node.split("@")) != 2:
        raise ApiError(400, "BAD_REQUEST", "node : Bad node name")
    m = getattr(request.app.state.ctx.broker, "cluster_membership", None)
    if m is None:  # clustered over an outside NATS (cluster.nats.servers): no membership here
        raise ApiError(400, "BAD_REQUEST", "membership is given by cluster.nats.servers")
    return m


@router.get("/cluster/topology",
            description="Get RLOG cluster topology: connections between core and replicant "
                        "nodes.",
            responses={200: _json({"type": "array", "items": {"type": "object", "properties": {
                "core_node": _S, "replicant_nodes": {"type": "array", "items": {
                    "type": "object", "properties": {"node": _S, "streams": {
                        "type": "integer", "minimum": 0}}}}}}}, "Cluster topology")})
async def cluster_topology(request: Request):
    broker = request.app.state.ctx.broker
    m = getattr(broker, "cluster_membership", None)
    if m is not None:
        nodes = m.running_nodes()
    elif broker.cluster is not None:
        nodes = broker.cluster.running_nodes()
    else:
        nodes = [broker.node_name]
    # every emqpy node is a core node; there are no replicants
    return [{"core_node": n, "replicant_nodes": []} for n in nodes]


_INVITATION = {"type": "object", "properties": {"node": _S, "started_at": _S}}


@router.get("/cluster/invitation",
            description="Get the execution status of all asynchronous invite status per node",
            responses={200: _json({"type": "object", "properties": {
                "succeed": {"type": "array", "items": _INVITATION},
                "in_progress": {"type": "array", "items": _INVITATION},
                "failed": {"type": "array", "items": _INVITATION}}},
                "Get invitation progress created by async operation")})
async def invitation_status(request: Request):
    m = getattr(request.app.state.ctx.broker, "cluster_membership", None)
    out: dict[str, list] = {"succeed": [], "in_progress": [], "failed": []}
    if m is None:  # clustered over an outside NATS: nobody is invited
        return out
    for node, inv in sorted(m.invitations.items()):
        out["in_progress"].append({"node": node, "started_at": rfc3339(inv["started_at"],
                                                                        ms=True)})
    for node, inv in sorted(m.finished.items()):
        row = {"node": node, "started_at": rfc3339(inv["started_at"], ms=True),
               "finished_at": rfc3339(inv["finished_at"], ms=True)}
        if inv["reason"] is None:
            out["succeed"].append(row)
        else:
            out["failed"].append({**row, "reason": inv["reason"]})
    return out


@router.put("/cluster/{node}/invite", description="Invite node to cluster",
            responses={200: {"description": "ok"}, **_BAD},
            openapi_extra={"requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "properties": {"timeout": {
                    "type": "integer", "minimum": 0, "description": "Timeout in milliseconds",
                    "example": 15000}}}}}}})
async def invite(request: Request, node: NodeName,
                 body: Annotated[Any, Body()] = None):
    m = _membership(request, node)
    timeout = 15000
    if body is not None:
        if not isinstance(body, dict):
            raise ApiError(400, "BAD_REQUEST", "the body must be an object")
        timeout = body.get("timeout", timeout)
    if not isinstance(timeout, int) or isinstance(timeout, bool):
        raise ApiError(400, "BAD_REQUEST", "timeout must be an integer")
    if timeout < 5000:
        raise ApiError(400, "BAD_REQUEST", "timeout cannot be less than 5000ms")
    try:
        await m.invite(node, timeout / 1000)
    except Ignored:
        raise ApiError(400, "BAD_REQUEST", "Cannot invite self") from None
    except JoinError as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    return Response(status_code=200)


@router.put("/cluster/{node}/invite_async",
            description="Send a join invitation to a node to join the cluster but do not wait "
                        "for the join result. Join status can be retrieved with "
                        "`GET api/<version>/invitation`",
            responses={200: {"description": "ok"}, **_BAD})
async def invite_async(request: Request, node: NodeName):
    m = _membership(request, node)
    try:
        m.invite_async(node)
    except Ignored:
        raise ApiError(400, "BAD_REQUEST", "Can't invite self") from None
    except JoinError as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    return Response(status_code=200)


@router.delete("/cluster/{node}/force_leave", status_code=204, response_class=Response,
               description="Force leave node from cluster",
               responses={204: {"description": "Delete successfully"},
                          **error_responses({400: ["BAD_REQUEST"], 404: ["NOT_FOUND"]})})
async def force_leave(request: Request, node: NodeName):
    m = _membership(request, node)
    try:
        await m.force_leave(node)
    except Ignored:
        raise ApiError(400, "BAD_REQUEST", "Can't leave self") from None
    except JoinError as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    return Response(status_code=204)
