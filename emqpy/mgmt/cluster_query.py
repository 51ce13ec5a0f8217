"""The management API's answers for a whole cluster (EMQX's emqx_mgmt_api:cluster_query and
its per-client RPCs), through the calls ``broker.cluster`` offers (``call(node, name, ...)``,
``call_all(name, ...)``); emqpy/cluster/mgmt.py registers this module's node-side functions
under the names used here. Nothing here runs on a single node.

A list is paged node by node as EMQX does: the running nodes in name order, each asked for
its rows from the offset still to skip (and its count of matches), one node after the other
until the page is full; the nodes after that are asked for their counts only, all at once.
Each node scans its own rows (``pagination.scan_slice``), so no node sends more than a page.
A node that fails to answer is EMQX's 500 NODE_DOWN; one found gone meanwhile (see `_on`) is
left out, as EMQX lists the running nodes only.
"""
from __future__ import annotations

import asyncio
import time

from emqpy.api.errors import ApiError
from emqpy.api.pagination import CHECK_ROWS, SLICE_SECONDS, page_response, scan_slice

PAGE = "mgmt.page"  # node_page(kind, query, offset, limit)
CLIENT = "mgmt.client"  # client_op(op, clientid, args)
SESSIONS = "mgmt.sessions_count"  # this node's number of sessions


def _selectors() -> dict:
    from emqpy.mgmt import clients_api, topics_api
    return {"clients": clients_api.select_clients,
            "subscriptions": topics_api.select_subscriptions,
            "topics": topics_api.select_topics, "topic": topics_api.select_topic}


async def node_page(broker, kind: str, query: dict, offset: int, limit: int) -> dict:
    """This node's rows `offset`..`offset + limit` of a `kind` query, formatted, and its count
    of matches: {"count", "data"} (`limit` 0: the count only)."""
    sel = _selectors()[kind](broker, query)
    if sel.total is not None:
        n = sel.total
        rows, _ = (await scan_slice(sel.rows, offset, offset + limit, count=False)
                   if limit and offset < n else ([], 0))
    else:
        rows, n = await scan_slice(sel.rows, offset, offset + limit)
    data = []
    clock = time.perf_counter
    deadline = clock() + SLICE_SECONDS
    for i, row in enumerate(rows, 1):
        data.append(sel.fmt(row))
        if not i % CHECK_ROWS and clock() >= deadline:
            await asyncio.sleep(0)
            deadline = clock() + SLICE_SECONDS
    return {"count": n, "data": data}


async def _on(broker, node: str, name: str, *args, gone_ok: bool = False):
    """`name(*args)` on `node`; a node that fails is EMQX's 500 NODE_DOWN, except with
    `gone_ok` one NATS knows nothing of any more (it died since the running nodes were
    listed: EMQX's list of running nodes would not have had it): None."""
    if node == broker.node_name:
        fn = broker.cluster.rpcs[name]
        return await fn(*args)
    from emqpy.cluster.link import NodeDown, RpcError
    try:
        return await broker.cluster.call(node, name, *args)
    except RpcError as e:
        if gone_ok and isinstance(e, NodeDown):
            return None
        raise ApiError(500, "NODE_DOWN", f"bad rpc call {node}, Reason {e}") from None


def check_node(broker, node: str | None) -> None:
    """A `node=` filter must name a running node of the cluster (EMQX: 400 otherwise)."""
    if node is not None and node not in broker.cluster.running_nodes():
        raise ApiError(400, "INVALID_PARAMETER", f"Node {node} not found in the cluster")


async def page(broker, kind: str, query: dict, params, node: str | None = None, *,
               count: bool = True):
    """The response of one page of a `kind` list over the cluster (or over `node` only)."""
    check_node(broker, node)
    nodes = [node] if node is not None else broker.cluster.running_nodes()
    gone_ok = node is None  # the whole cluster's list: of the running nodes
    skip, want = params.offset, params.limit
    data: list = []
    total = 0
    rest: list[str] = []
    for i, name in enumerate(nodes):
        if not want:
            rest = nodes[i:]
            break
        got = await _on(broker, name, PAGE, kind, query, skip, want, gone_ok=gone_ok)
        if got is None:
            continue
        total += got["count"]
        data.extend(got["data"])
        want -= len(got["data"])
        skip = max(0, skip - got["count"])
    if rest:
        counts = await asyncio.gather(*(_on(broker, n, PAGE, kind, query, 0, 0,
                                            gone_ok=gone_ok) for n in rest))
        total += sum(c["count"] for c in counts if c is not None)
    meta = {"page": params.page, "limit": params.limit}
    if count:
        meta["count"] = total
    meta["hasnext"] = params.offset + len(data) < total
    return await page_response({"data": data, "meta": meta})


# -- one client, wherever it is ------------------------------------------------------------------

def client_op(broker, op: str, clientid: str, args: list):
    """`op` on a client of this node: ["ok", result], ["error", status, code, message] (the
    API error it raised), or None when the client has no session here."""
    from emqpy.mgmt import clients_api
    if clientid not in broker.sessions:
        return None
    try:
        return ["ok", clients_api.CLIENT_OPS[op](broker, clientid, *args)]
    except ApiError as e:
        return ["error", e.status, e.code, e.message]


async def remote_client_op(broker, op: str, clientid: str, *args):
    """`op` on the node that holds `clientid` (asked of every other running node at once);
    its result, its API error raised here, or 404 CLIENTID_NOT_FOUND when no node has it."""
    answers = await broker.cluster.call_all(CLIENT, op, clientid, list(args),
                                            include_self=False)
    for answer in answers.values():
        if answer is None:
            continue
        if answer[0] == "error":
            _, status, code, message = answer
            raise ApiError(status, code, message)
        return answer[1]
    raise ApiError(404, "CLIENTID_NOT_FOUND", "Client ID not found")


# -- figures summed over the nodes ------------------------------------------------------------

async def per_node(broker, name: str, *args) -> dict:
    """{node: answer} of every running node that answers (a silent one is skipped)."""
    return await broker.cluster.call_all(name, *args)
