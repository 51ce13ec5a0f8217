"""EMQX's "Clients" endpoints: list, look up, kick, subscribe on behalf of, inspect the queues.

Everything is read straight from the running broker (``broker.sessions``: every session,
connected or not, in creation order; ``broker.channels``: the connected ones). A page's rows
are picked without an ``await`` (a consistent set); ``page_response`` then formats them a slice
at a time, letting MQTT traffic through in between, so a row shows its client as it is when
formatted. Listing without filters pages with ``islice`` and counts with ``len``; filters are
applied while iterating, never by copying or sorting all sessions.

A disconnected session that outlives its connection (expiry interval > 0) is listed with
``connected: false`` and the facts of its last connection, which the mgmt feature remembers
from broker start (``service.last_channel``). Kick and subscribe are ``emqpy.mgmt.service``'s,
shared with ``emqpy ctl``.
"""
from __future__ import annotations

import base64
import itertools
import math
import re
from datetime import timezone
from typing import Annotated, Any, Iterable, Iterator, Literal, Optional

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, WithJsonSchema

from emqpy.api.auth import authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.api.pagination import MAX_LIMIT, Page, page_response, paginate, scan_page
from emqpy.mgmt import service
from emqpy.mqtt.packets import SubOpts
from emqpy.timefmt import parse_rfc3339, rfc3339

router = APIRouter(tags=["Clients"], dependencies=[Depends(authenticated)])

NOT_FOUND = error_responses({404: ["CLIENTID_NOT_FOUND"]})


# -- shared helpers (also used by the subscriptions, topics and publish endpoints) ----------

def broker_of(request: Request):
    return request.app.state.ctx.broker


def check_node(broker, node: str | None) -> None:
    if node is not None and node != broker.node_name:
        raise ApiError(400, "INVALID_PARAMETER", f"Node {node} not found in the cluster")


def reply(content: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(content, status_code=status)


def parse_time(name: str, value: str | None) -> float | None:
    """A ``gte_/lte_*_at`` query value: epoch milliseconds or RFC 3339 -> epoch seconds."""
    if value is None:
        return None
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text) / 1000.0
    try:
        dt = parse_rfc3339(text)
    except ValueError:
        raise ApiError(400, "INVALID_PARAMETER",
                       f"{name}: expected epoch milliseconds or an RFC 3339 date-time, "
                       f"got {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _ms_time(ts: float | None) -> str | None:
    return None if ts is None else rfc3339(ts, ms=True)


def _count(v) -> int | str:
    return "infinity" if v is None or v == math.inf else int(v)


def sub_info(broker, clientid: str, sub) -> dict:
    return {"clientid": clientid, "topic": service.subscription_topic(sub), "qos": sub.qos,
            "nl": int(sub.no_local), "rap": int(sub.retain_as_published),
            "rh": sub.retain_handling, "node": broker.node_name, "durable": False}


# -- client info ------------------------------------------------------------------------------

CLIENT_FIELDS = [
    "client_attrs", "awaiting_rel_cnt", "awaiting_rel_max", "clean_start", "clientid",
    "connected", "connected_at", "created_at", "disconnected_at", "expiry_interval", "heap_size",
    "inflight_cnt", "inflight_max", "ip_address", "is_bridge", "is_expired", "keepalive",
    "mailbox_len", "mqueue_dropped", "mqueue_len", "mqueue_max", "node", "port", "proto_name",
    "proto_ver", "recv_cnt", "recv_msg", "recv_msg.dropped",
    "recv_msg.dropped.await_pubrel_timeout", "recv_msg.qos0", "recv_msg.qos1", "recv_msg.qos2",
    "recv_oct", "recv_pkt", "reductions", "send_cnt", "send_msg", "send_msg.dropped",
    "send_msg.dropped.expired", "send_msg.dropped.queue_full", "send_msg.dropped.too_large",
    "send_msg.qos0", "send_msg.qos1", "send_msg.qos2", "send_oct", "send_pkt",
    "subscriptions_cnt", "subscriptions_max", "username", "mountpoint", "durable", "n_streams",
    "seqno_q1_comm", "seqno_q1_dup", "seqno_q1_next", "seqno_q2_comm", "seqno_q2_dup",
    "seqno_q2_rec", "seqno_q2_next",
]


def client_info(broker, sess, ch) -> dict:
    """EMQX's client object; the counters are the connection's (Channel.stats), of the last
    connection for an offline session. Erlang process figures have no per-connection
    equivalent in one Python process: heap_size and reductions are 0, mailbox_len counts
    received packets waiting for an authentication or authorization answer. Durable-session
    sequence numbers are left out rather than invented."""
    mq = broker.config.mqtt
    connected = sess.channel is not None
    info: dict[str, Any] = {
        "clientid": sess.clientid,
        "node": broker.node_name,
        "connected": connected,
        "created_at": rfc3339(sess.created_at, ms=True),
        "expiry_interval": _count(sess.expiry_interval),
        "is_persistent": bool(sess.expiry_interval),
        "durable": False,
        "is_expired": False,
        "subscriptions_cnt": len(sess.subscriptions),
        "subscriptions_max": _count(mq.max_subscriptions),
        "inflight_cnt": len(sess.inflight),
        "inflight_max": sess.window,
        "mqueue_len": len(sess.mqueue),
        "mqueue_max": sess.max_mqueue_len or "infinity",
        "mqueue_dropped": sess.dropped,
        "awaiting_rel_cnt": len(sess.awaiting_rel),
        "awaiting_rel_max": _count(None if mq.max_awaiting_rel in (0, math.inf)
                                   else mq.max_awaiting_rel),
    }
    if ch is not None:
        pkt = ch.connect_pkt
        listener = ch.listener
        cfg = getattr(listener, "cfg", None)
        info.update({
            "username": ch.username,
            "ip_address": ch.peerhost,
            "port": ch.peerport,
            "peerport": ch.peerport,
            "listener": getattr(listener, "id", None),
            "enable_authn": getattr(cfg, "enable_authn", True),
            "proto_name": ch.proto_name,
            "proto_ver": ch.version,
            "clean_start": bool(pkt.clean_start) if pkt is not None else True,
            "keepalive": ch.keepalive,
            "is_bridge": bool(pkt.is_bridge) if pkt is not None else False,
            "mountpoint": ch.mountpoint or None,
            "connected_at": _ms_time(ch.connected_at),
            "client_attrs": ch.client_attrs or {},
            "heap_size": 0, "reductions": 0,
        })
        info.update(ch.stats())
        if not connected:
            info["disconnected_at"] = _ms_time(ch.disconnected_at)
    return info


def _fields(fields: list[str] | None) -> list[str] | None:
    """``fields=a,b`` or ``fields=a&fields=b``; ``all`` (the default) means every field."""
    wanted = [f.strip() for v in fields or () for f in v.split(",") if f.strip()]
    if not wanted or "all" in wanted:
        return None
    bad = [f for f in wanted if f not in CLIENT_FIELDS]
    if bad:
        raise ApiError(400, "INVALID_PARAMETER", f"unknown client fields: {', '.join(bad)}")
    return wanted


def _session(broker, clientid: str):
    sess = broker.sessions.get(clientid)
    if sess is None:
        raise ApiError(404, "CLIENTID_NOT_FOUND", "Client ID not found")
    return sess


# -- documentation schemas ----------------------------------------------------------------------

_TIME = {"oneOf": [{"type": "integer", "description": "epoch-millisecond",
                    "example": 1640995200000},
                   {"type": "string", "format": "date-time",
                    "example": "2022-01-01T00:00:00.000Z"}]}
_INT_FIELDS = [f for f in CLIENT_FIELDS if f not in (
    "client_attrs", "clean_start", "clientid", "connected", "connected_at", "created_at",
    "disconnected_at", "ip_address", "is_bridge", "is_expired", "node", "proto_name", "username",
    "mountpoint", "durable", "subscriptions_max", "mqueue_max", "awaiting_rel_max",
    "expiry_interval")]
CLIENT_SCHEMA = {"type": "object", "properties": {
    **{f: {"type": "integer"} for f in _INT_FIELDS},
    **{f: {"type": "boolean"} for f in ("clean_start", "connected", "is_bridge", "is_expired",
                                        "durable", "is_persistent", "enable_authn")},
    **{f: {"type": "string"} for f in ("clientid", "ip_address", "node", "proto_name",
                                       "username", "mountpoint", "listener")},
    **{f: {"oneOf": [{"type": "integer"}, {"type": "string", "enum": ["infinity"]}]}
       for f in ("subscriptions_max", "mqueue_max", "awaiting_rel_max", "expiry_interval")},
    "connected_at": _TIME, "created_at": _TIME, "disconnected_at": _TIME,
    "client_attrs": {"type": "object"},
}}
META_SCHEMA = {"type": "object", "required": ["hasnext"], "properties": {
    "page": {"type": "integer", "minimum": 1}, "limit": {"type": "integer", "maximum": MAX_LIMIT},
    "count": {"type": "integer", "minimum": 0,
              "description": "present only if the query needs no full scan (no fuzzy filter)"},
    "hasnext": {"type": "boolean"}}}
SUBSCRIPTION_SCHEMA = {"type": "object", "properties": {
    "node": {"type": "string", "example": "emqx@127.0.0.1"},
    "topic": {"type": "string", "example": "testtopic/1"},
    "clientid": {"type": "string"}, "qos": {"type": "integer", "minimum": 0, "maximum": 2},
    "nl": {"type": "integer"}, "rap": {"type": "integer"}, "rh": {"type": "integer"},
    "durable": {"type": "boolean"}}}


def ok(schema: dict, description: str = "") -> dict:
    return {200: {"description": description,
                  "content": {"application/json": {"schema": schema}}}}


def page_responses(item_schema: dict) -> dict:
    """`responses` of a paginated list endpoint: its 200 body and 400 for bad parameters."""
    return {**ok({"type": "object", "properties": {
        "data": {"type": "array", "items": item_schema}, "meta": META_SCHEMA}}),
        **error_responses({400: ["INVALID_PARAMETER"]})}


def cluster_page_responses(item_schema: dict) -> dict:
    """`page_responses` of a list a cluster's nodes answer together (500 NODE_DOWN: one did
    not answer, emqpy.mgmt.cluster_query)."""
    return {**page_responses(item_schema), **error_responses({500: ["NODE_DOWN"]})}


NodeQuery = Annotated[Optional[str], Query(description="Node name",
                                           examples=["emqx@127.0.0.1"])]


# -- GET /clients -----------------------------------------------------------------------------

TimeQuery = Annotated[Optional[str], WithJsonSchema(_TIME), Query(
    description="rfc3339 or timestamp(millisecond)")]
_FIELDS_SCHEMA = {"default": "all", "oneOf": [
    {"type": "array", "items": {"type": "string", "enum": CLIENT_FIELDS}},
    {"type": "string", "enum": ["all"]}]}


@router.get("/clients", description="List clients", responses=cluster_page_responses(CLIENT_SCHEMA))
async def list_clients(
    request: Request, page: Page,
    node: NodeQuery = None,
    username: Annotated[Optional[list[str]], Query(
        description="User name, multiple values can be specified by repeating the parameter: "
                    "username=u1&username=u2")] = None,
    ip_address: Annotated[Optional[str], Query(description="Client's IP address",
                                               examples=["127.0.0.1"])] = None,
    conn_state: Annotated[Optional[Literal["connected", "idle", "disconnected"]], Query(
        description="The current connection status of the client, the possible values are "
                    "connected,idle,disconnected")] = None,
    clean_start: Annotated[Optional[bool], Query(
        description="Whether the client uses a new session")] = None,
    proto_ver: Annotated[Optional[str], Query(description="Client protocol version")] = None,
    like_clientid: Annotated[Optional[str], Query(
        description="Fuzzy search `clientid` as substring")] = None,
    like_username: Annotated[Optional[str], Query(
        description="Fuzzy search `username` as substring")] = None,
    gte_created_at: TimeQuery = None, lte_created_at: TimeQuery = None,
    gte_connected_at: TimeQuery = None, lte_connected_at: TimeQuery = None,
    clientid: Annotated[Optional[list[str]], Query(
        description="Client ID, multiple values can be specified by repeating the parameter: "
                    "clientid=c1&clientid=c2")] = None,
    fields: Annotated[Optional[list[str]], WithJsonSchema(_FIELDS_SCHEMA), Query(
        description="Comma separated list of client fields to return in the response")] = None,
):
    broker = broker_of(request)
    query = {"username": username, "ip_address": ip_address, "conn_state": conn_state,
             "clean_start": clean_start, "proto_ver": proto_ver,
             "like_clientid": like_clientid, "like_username": like_username,
             "gte_created_at": gte_created_at, "lte_created_at": lte_created_at,
             "gte_connected_at": gte_connected_at, "lte_connected_at": lte_connected_at,
             "clientid": clientid, "fields": fields}
    sel = select_clients(broker, query)  # (checks the query here, before asking other nodes)
    if broker.cluster is not None:
        from emqpy.mgmt import cluster_query
        return await cluster_query.page(broker, "clients", query, page, node,
                                        count=not sel.fuzzy)
    check_node(broker, node)
    if sel.total is not None:
        result = paginate(sel.rows, page, sel.total)
    else:
        result = await scan_page(sel.rows, page, count=not sel.fuzzy)
    return await page_response(result, sel.fmt)


class Selection:
    """A query's rows on this node, in listing order: `rows` (an iterator when `total` is
    known, the filtered scan's matches otherwise), `fuzzy` (EMQX then shows no count) and
    `fmt(row)` the row as the API shows it."""
    __slots__ = ("rows", "total", "fuzzy", "fmt")

    def __init__(self, rows, total, fuzzy, fmt):
        self.rows, self.total, self.fuzzy, self.fmt = rows, total, fuzzy, fmt


def select_clients(broker, q: dict) -> Selection:
    """GET /clients' query (`q`: its parameters by name, None when absent) on this node; bad
    values are 400 INVALID_PARAMETER."""
    wanted = _fields(q.get("fields"))
    gte_cr, lte_cr, gte_co, lte_co = (parse_time(n, q.get(n)) for n in (
        "gte_created_at", "lte_created_at", "gte_connected_at", "lte_connected_at"))
    ip_address = q.get("ip_address")
    if ip_address is not None:
        import ipaddress
        try:
            ipaddress.ip_address(ip_address)
        except ValueError:
            raise ApiError(400, "INVALID_PARAMETER",
                           f"ip_address: not an IP address: {ip_address!r}") from None
    clientid, username, conn_state = q.get("clientid"), q.get("username"), q.get("conn_state")
    like_clientid, like_username = q.get("like_clientid"), q.get("like_username")
    clean_start, proto_ver = q.get("clean_start"), q.get("proto_ver")
    sessions = broker.sessions
    # Session checks run first; the (last) channel is looked up only for rows that pass them.
    s_checks: list = []
    c_checks: list = []
    if conn_state == "connected":
        s_checks.append(lambda s: s.channel is not None)
    elif conn_state == "disconnected":
        s_checks.append(lambda s: s.channel is None)
    elif conn_state == "idle":  # idle connections have no session yet: never listed
        s_checks.append(lambda s: False)
    if like_clientid is not None:
        s_checks.append(lambda s: like_clientid in s.clientid)
    if gte_cr is not None:
        s_checks.append(lambda s: s.created_at >= gte_cr)
    if lte_cr is not None:
        s_checks.append(lambda s: s.created_at <= lte_cr)
    if username:
        names = set(username)
        c_checks.append(lambda ch: ch.username in names)
    if ip_address is not None:
        c_checks.append(lambda ch: ch.peerhost == ip_address)
    if clean_start is not None:
        c_checks.append(lambda ch: ch.connect_pkt is not None
                        and bool(ch.connect_pkt.clean_start) == clean_start)
    if proto_ver is not None:
        try:
            want_ver = int(proto_ver)
        except ValueError:
            raise ApiError(400, "INVALID_PARAMETER",
                           f"proto_ver: an integer is expected, got {proto_ver!r}") from None
        c_checks.append(lambda ch: ch.version == want_ver)
    if like_username is not None:
        c_checks.append(lambda ch: ch.username is not None and like_username in ch.username)
    if gte_co is not None:
        c_checks.append(lambda ch: ch.connected_at is not None and ch.connected_at >= gte_co)
    if lte_co is not None:
        c_checks.append(lambda ch: ch.connected_at is not None and ch.connected_at <= lte_co)

    s_ok, c_ok = _conjunction(s_checks), _conjunction(c_checks)

    def last_channel(sess):
        return service.last_channel(broker, sess)

    def rows() -> Iterator:  # (a generator: the snapshot is taken when the scan starts)
        if clientid:  # the index: direct lookups
            source: Iterable = [sessions[c] for c in dict.fromkeys(clientid) if c in sessions]
        else:
            source = list(sessions.values())  # a snapshot: the scan lets the loop run
        for s in source:
            if s_ok is not None and not s_ok(s):
                continue
            if c_ok is not None:
                ch = last_channel(s)
                if ch is None or not c_ok(ch):
                    continue
            yield s

    # The page holds sessions only (no per-row tuple that would live through the request and
    # be promoted to the oldest GC generation: full collections here take ~75 ms).
    def fmt(sess) -> dict:
        info = client_info(broker, sess, last_channel(sess))
        if wanted is not None:
            info = {k: info[k] for k in wanted if k in info}
        return info

    fuzzy = like_clientid is not None or like_username is not None
    if not s_checks and not c_checks and not clientid:
        return Selection(iter(sessions.values()), len(sessions), fuzzy, fmt)
    return Selection(rows(), None, fuzzy, fmt)


def _conjunction(checks: list):
    """One predicate for all `checks` (None for none), without a generator per row."""
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda x: all(c(x) for c in checks)


# -- one client ------------------------------------------------------------------------------

ClientId = Annotated[str, Path()]


@router.get("/clients/{clientid}", description="Get clients info by client ID",
            responses={**ok(CLIENT_SCHEMA), **NOT_FOUND})
async def get_client(request: Request, clientid: ClientId):
    return reply(await _client_op(broker_of(request), "get", clientid))


def _get(broker, clientid: str) -> dict:
    sess = _session(broker, clientid)
    return client_info(broker, sess, service.last_channel(broker, sess))


async def _client_op(broker, op: str, clientid: str, *args):
    """CLIENT_OPS[op] on this node's client, or on the node that has it in a cluster."""
    if broker.cluster is not None and clientid not in broker.sessions:
        from emqpy.mgmt import cluster_query
        return await cluster_query.remote_client_op(broker, op, clientid, *args)
    return CLIENT_OPS[op](broker, clientid, *args)


@router.delete("/clients/{clientid}", description="Kick out client by client ID",
               status_code=204,
               responses={204: {"description": "Kick out client successfully"}, **NOT_FOUND})
async def kick_client(request: Request, clientid: ClientId):
    await _client_op(broker_of(request), "kick", clientid)
    return Response(status_code=204)


def _kick(broker, clientid: str) -> bool:
    if not service.kick_client(broker, clientid):
        raise ApiError(404, "CLIENTID_NOT_FOUND", "Client ID not found")
    return True


@router.post("/clients/kickout/bulk", status_code=204,
             description="Kick out a batch of client by client IDs",
             responses={204: {"description": "Kick out clients successfully"}})
async def kick_bulk(request: Request, clientids: Annotated[list[str], Field(
        examples=[["emqx_clientid_985bb09d", "emqx_clientid_211cc01c"]])]):
    broker = broker_of(request)
    for cid in clientids:
        if broker.cluster is not None and cid not in broker.sessions:
            try:
                await _client_op(broker, "kick", cid)
            except ApiError:  # (as here: a client no node has is no error)
                pass
        else:
            service.kick_client(broker, cid)
    return Response(status_code=204)


class KeepaliveBody(BaseModel):
    interval: int = Field(ge=0, le=65535, description="Keepalive time, with the unit of second")


# EMQX keeps this operation out of its published API document, so it is hidden here too.
@router.put("/clients/{clientid}/keepalive", include_in_schema=False)
async def set_keepalive(request: Request, clientid: ClientId, body: KeepaliveBody):
    broker = broker_of(request)
    ch = broker.channels.get(clientid)
    if ch is None:
        raise ApiError(404, "CLIENTID_NOT_FOUND", "Client ID not found")
    ch.set_keepalive(body.interval)
    return reply(client_info(broker, ch.session, ch))


@router.get("/sessions_count", tags=["Clients"],
            description="Get the total number of sessions in the cluster.<br/>By default, it "
                        "includes only those sessions that have not expired.",
            responses=ok({"type": "integer"}, "Number of sessions"))
async def sessions_count(request: Request, since: Annotated[int, Query(
        ge=0, description="Include sessions expired after this time (UNIX Epoch in seconds "
                          "precision)", examples=[1705391625])] = 0):
    # Expired sessions are not kept (broker.session_history_retain = 0s): the live ones count.
    broker = broker_of(request)
    if broker.cluster is not None:  # every running node's
        from emqpy.mgmt import cluster_query
        return reply(sum((await cluster_query.per_node(broker, cluster_query.SESSIONS)).values()))
    return reply(len(broker.sessions))


# -- subscriptions of one client ----------------------------------------------------------------

class SubscribeBody(BaseModel):
    topic: str = Field(description="Topic", examples=["testtopic/#"])
    qos: int = Field(0, ge=0, le=2, description="QoS", examples=[0])
    nl: int = Field(0, ge=0, le=1, description="No Local")
    rap: int = Field(0, ge=0, le=1, description="Retain as Published")
    rh: int = Field(0, ge=0, le=2, description="Retain Handling")


class UnsubscribeBody(BaseModel):
    topic: str = Field(description="Topic", examples=["testtopic/#"])


@router.get("/clients/{clientid}/subscriptions", description="Get client subscriptions",
            responses={**ok({"type": "array", "items": SUBSCRIPTION_SCHEMA}), **NOT_FOUND})
async def client_subscriptions(request: Request, clientid: ClientId):
    return reply(await _client_op(broker_of(request), "subscriptions", clientid))


def _subscriptions(broker, clientid: str) -> list[dict]:
    sess = _session(broker, clientid)
    return [sub_info(broker, clientid, s) for s in sess.subscriptions.values()]


def _subscribe(broker, sess, items: list[SubscribeBody]) -> list[dict]:
    topics = [(b.topic, SubOpts(b.qos, bool(b.nl), bool(b.rap), b.rh)) for b in items]
    try:
        codes = service.subscribe(broker, sess, topics)
    except service.InvalidRequest as e:
        raise ApiError(400, "INVALID_PARAMETER", str(e)) from None
    bad = [(b.topic, c) for b, c in zip(items, codes) if c >= 0x80]
    if bad:
        names = ", ".join(f"{t!r}: reason code 0x{c:02x}" for t, c in bad)
        raise ApiError(400, "INVALID_PARAMETER", f"subscribe refused: {names}")
    return [sub_info(broker, sess.clientid, sess.subscriptions[b.topic]) for b in items
            if b.topic in sess.subscriptions]


@router.post("/clients/{clientid}/subscribe", description="Subscribe",
             responses={**ok(SUBSCRIPTION_SCHEMA), **NOT_FOUND,
                        **error_responses({400: ["INVALID_PARAMETER", "BAD_REQUEST"]})})
async def subscribe(request: Request, clientid: ClientId, body: SubscribeBody):
    return reply((await _client_op(broker_of(request), "subscribe", clientid,
                                   [body.model_dump()]))[0])


@router.post("/clients/{clientid}/subscribe/bulk", description="Subscribe bulk",
             responses={**ok({"type": "array", "items": SUBSCRIPTION_SCHEMA}), **NOT_FOUND,
                        **error_responses({400: ["INVALID_PARAMETER", "BAD_REQUEST"]})})
async def subscribe_bulk(request: Request, clientid: ClientId, body: list[SubscribeBody]):
    return reply(await _client_op(broker_of(request), "subscribe", clientid,
                                  [b.model_dump() for b in body]))


def _subscribe_items(broker, clientid: str, items: list[dict]) -> list[dict]:
    return _subscribe(broker, _session(broker, clientid), [SubscribeBody(**d) for d in items])


@router.post("/clients/{clientid}/unsubscribe", description="Unsubscribe", status_code=204,
             responses={204: {"description": "Unsubscribe OK"}, **NOT_FOUND})
async def unsubscribe(request: Request, clientid: ClientId, body: UnsubscribeBody):
    await _client_op(broker_of(request), "unsubscribe", clientid, [body.topic])
    return Response(status_code=204)


def _unsubscribe(broker, clientid: str, topics: list[str]) -> bool:
    service.unsubscribe(broker, _session(broker, clientid), topics)
    return True


@router.post("/clients/{clientid}/unsubscribe/bulk", description="Unsubscribe bulk",
             status_code=204,
             responses={204: {"description": "Unsubscribe OK"}, **NOT_FOUND})
async def unsubscribe_bulk(request: Request, clientid: ClientId,
                           body: list[UnsubscribeBody]):
    await _client_op(broker_of(request), "unsubscribe", clientid, [b.topic for b in body])
    return Response(status_code=204)



# -- message queue and inflight window ------------------------------------------------------------

_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3}


def _bytesize(text: str) -> int:
    t = text.strip().lower()
    num = t.rstrip("kmgb")
    unit = t[len(num):]
    if not num.isdigit() or unit not in _UNITS or int(num) == 0:
        raise ApiError(400, "INVALID_PARAMETER",
                       f"max_payload_bytes: expected a byte size above 0 such as 1MB, got {text!r}")
    return int(num) * _UNITS[unit]


PayloadEnc = Annotated[Literal["none", "base64", "plain"], Query(
    description="Client's inflight/mqueue messages payload encoding. If set to `none`, no "
                "payload is returned in the response.")]
MaxPayload = Annotated[str, Query(
    description="Client's inflight/mqueue messages payload limit. The total payload size of "
                "all messages in the response will not exceed this value. Messages beyond the "
                "limit will be silently omitted in the response. The only exception to this "
                "rule is when the first message payload is already larger than the limit. In "
                "this case, the first message will be returned in the response.",
    examples=["32MB"])]
Position = Annotated[Optional[str], WithJsonSchema({"oneOf": [
    {"type": "string"}, {"type": "string", "enum": ["end_of_data"]},
    {"type": "string", "enum": ["none"]}]}), Query(
    description="An opaque token that can then be in subsequent requests to get the next chunk "
                "of results: \"?position={prev_response.meta.position}\"<br/>Can be omitted or "
                "set to \"none\" to get the first chunk of data.", examples=["none"])]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Results per page(max 10000)",
                             examples=[50])]
_MSG_SCHEMA = {"type": "object", "properties": {
    "msgid": {"type": "string"}, "topic": {"type": "string"},
    "qos": {"type": "integer", "minimum": 0, "maximum": 2},
    "publish_at": {"type": "integer", "description": "epoch milliseconds"},
    "from_clientid": {"type": "string"}, "from_username": {"type": "string"},
    "payload": {"type": "string"}, "inserted_at": {"type": "string"}}}
_CONT_META = {"type": "object", "required": ["start"], "properties": {
    "start": {"type": "string"}, "position": {"type": "string"}}}
_MQUEUE_MSG_SCHEMA = {**_MSG_SCHEMA, "properties": {
    **_MSG_SCHEMA["properties"], "mqueue_priority": {"type": "integer"}}}


def _queue_responses(item_schema: dict) -> dict:
    return {**ok({"type": "object", "properties": {
                "data": {"type": "array", "items": item_schema}, "meta": _CONT_META}}),
            **error_responses({400: ["INVALID_PARAMETER"], 404: ["CLIENTID_NOT_FOUND"]})}


def _message_rows(entries: Iterable[tuple[Any, int, int]], limit: int, payload: str,
                  max_bytes: int) -> tuple[list[dict], int | None]:
    """Rows for (msg, qos, inserted_at) entries, as EMQX formats them, and the insertion time of
    the last row (None if none). At most `limit` rows, and past the first row no more than
    `max_bytes` of payload as sent (base64 counts its encoded length, as in EMQX)."""
    rows: list[dict] = []
    used = 0
    last = None
    for msg, qos, inserted_at in itertools.islice(entries, limit):
        row = {"msgid": msg.id.upper(), "topic": msg.topic, "qos": qos,
               "publish_at": int(msg.timestamp * 1000),
               "from_clientid": msg.sender or "", "from_username": msg.username or "",
               "inserted_at": str(inserted_at)}
        size = 0
        if payload == "base64":
            row["payload"] = base64.b64encode(msg.payload).decode()
            size = len(row["payload"])
        elif payload == "plain":
            row["payload"] = msg.payload.decode("utf-8", "replace")
            size = len(msg.payload)
        if rows and used + size > max_bytes:
            break  # (EMQX drops the rest of the page; we end it here, so paging on finds them)
        used += size
        rows.append(row)
        last = inserted_at
    return rows, last


# Paging tokens are EMQX's: an inserted_at (ns) for the window, "<inserted_at>_<priority>" for
# the queue (one FIFO queue here: every message has priority 0). A page starts after the message
# inserted at the token's time; meta.start is the token of the collection's first message and
# meta.position that of the page's last one (the request's own token when the page is empty).
def _ns(text: str) -> int:
    if re.fullmatch(r"-?[0-9]{1,30}", text) is None:
        raise ApiError(400, "INVALID_PARAMETER", f"position_limit_invalid: {text!r}")
    return int(text)


def _queue_position(position: str | None) -> tuple[int, float] | None:
    if position in (None, "", "none"):
        return None
    ts, sep, prio = position.partition("_")
    if not sep:
        raise ApiError(400, "INVALID_PARAMETER", f"position_limit_invalid: {position!r}")
    return _ns(ts), math.inf if prio == "infinity" else _ns(prio)


def _queue_token(ts: int, prio: float) -> str:
    return f"{ts}_{'infinity' if prio == math.inf else prio}"


@router.get("/clients/{clientid}/mqueue_messages", description="Get client mqueue messages",
            responses=_queue_responses(_MQUEUE_MSG_SCHEMA))
async def mqueue_messages(request: Request, clientid: ClientId, payload: PayloadEnc = "base64",
                          max_payload_bytes: MaxPayload = "1MB", position: Position = None,
                          limit: Limit = 100):
    return reply(await _client_op(broker_of(request), "mqueue", clientid, payload,
                                  max_payload_bytes, position, limit))


def _mqueue(broker, clientid: str, payload: str, max_payload_bytes: str, position: str | None,
            limit: int) -> dict:
    sess = _session(broker, clientid)
    max_bytes = _bytesize(max_payload_bytes)
    after = _queue_position(position)
    first = next(sess.queued_listing(None), None)
    prios = []  # (of the entries _message_rows took, in order)

    def entries():
        for msg, qos, ts, prio in sess.queued_listing(after):
            prios.append(prio)
            yield msg, qos, ts
    rows, last = _message_rows(entries(), limit, payload, max_bytes)
    for row, prio in zip(rows, prios):  # (as EMQX: the highest priority shows as "infinity")
        row["mqueue_priority"] = prio if prio != math.inf else "infinity"
    meta = {"start": "none" if first is None else _queue_token(first[2], first[3]),
            "position": _queue_token(last, prios[len(rows) - 1]) if last is not None else
            "none" if after is None else _queue_token(*after)}
    return {"data": rows, "meta": meta}


@router.get("/clients/{clientid}/inflight_messages",
            description="Get client in-flight messages", responses=_queue_responses(_MSG_SCHEMA))
async def inflight_messages(request: Request, clientid: ClientId,
                            payload: PayloadEnc = "base64", max_payload_bytes: MaxPayload = "1MB",
                            position: Position = None, limit: Limit = 100):
    return reply(await _client_op(broker_of(request), "inflight", clientid, payload,
                                  max_payload_bytes, position, limit))


def _inflight(broker, clientid: str, payload: str, max_payload_bytes: str,
              position: str | None, limit: int) -> dict:
    sess = _session(broker, clientid)
    max_bytes = _bytesize(max_payload_bytes)
    after = None if position in (None, "", "none") else _ns(position)
    first = next(sess.inflight_after(None), None)
    rows, last = _message_rows(sess.inflight_after(after), limit, payload, max_bytes)
    meta = {"start": "none" if first is None else str(first[2]),
            "position": str(last) if last is not None else
            "none" if after is None else str(after)}
    return {"data": rows, "meta": meta}


# What the endpoints above do to a client of this node: fn(broker, clientid, *args) -> JSON
# (other nodes run them through emqpy.mgmt.cluster_query.client_op).
CLIENT_OPS = {"get": _get, "kick": _kick, "subscriptions": _subscriptions,
              "subscribe": _subscribe_items, "unsubscribe": _unsubscribe,
              "mqueue": _mqueue, "inflight": _inflight}
