"""EMQX's "Subscriptions" and "Topics" endpoints, read from the live router and sessions.

Indexes serve the common filters: ``clientid`` is a session lookup, ``topic`` a route lookup,
``match_topic`` a walk over the routes (not the sessions); only ``qos``/``share_group`` filter
while iterating.
A topic in ``/topics`` is a route: one row per filter with plain subscribers, and one per shared
group on it (shown as ``$share/<group>/<filter>``), all on this node.
"""
from __future__ import annotations

from typing import Annotated, Iterable, Iterator, Optional

from fastapi import APIRouter, Depends, Path, Query, Request

from emqpy.api.auth import authenticated
from emqpy.api.errors import ApiError, error_responses
from emqpy.api.pagination import Page, page_response, paginate, scan_page
from emqpy.mgmt.clients_api import (
    SUBSCRIPTION_SCHEMA, NodeQuery, Selection, broker_of, check_node, cluster_page_responses, ok,
    reply, sub_info,
)
from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import matches, parse_share, validate_topic_filter

subscriptions_router = APIRouter(tags=["Subscriptions"], dependencies=[Depends(authenticated)])
topics_router = APIRouter(tags=["Topics"], dependencies=[Depends(authenticated)])
router = APIRouter()


def _parse_filter(name: str, value: str) -> tuple[str | None, str]:
    try:
        group, real, _ = parse_share(value)
        validate_topic_filter(real)
    except MQTTError as e:
        raise ApiError(400, "INVALID_PARAMETER", f"{name}: bad topic {value!r}: {e}") from None
    return group, real


@subscriptions_router.get("/subscriptions", description="List subscriptions",
                          responses=cluster_page_responses(SUBSCRIPTION_SCHEMA))
async def list_subscriptions(
    request: Request, page: Page,
    node: NodeQuery = None,
    clientid: Annotated[Optional[str], Query(description="Client ID")] = None,
    qos: Annotated[Optional[int], Query(ge=0, le=2, description="QoS", examples=[0])] = None,
    topic: Annotated[Optional[str], Query(description="Topic, url encoding")] = None,
    match_topic: Annotated[Optional[str], Query(
        description="Match topic string, url encoding")] = None,
    share_group: Annotated[Optional[str], Query(
        description="Shared subscription group name")] = None,
    durable: Annotated[Optional[bool], Query(
        description="Filter subscriptions by durability")] = None,
):
    broker = broker_of(request)
    query = {"clientid": clientid, "qos": qos, "topic": topic, "match_topic": match_topic,
             "share_group": share_group, "durable": durable}
    sel = select_subscriptions(broker, query)  # (checks the query before asking other nodes)
    if broker.cluster is not None:
        from emqpy.mgmt import cluster_query
        return await cluster_query.page(broker, "subscriptions", query, page, node,
                                        count=not sel.fuzzy)
    check_node(broker, node)
    if sel.total is not None:
        result = paginate(sel.rows, page, sel.total)
    else:
        # match_topic is EMQX's fuzzy filter: its meta carries no count.
        result = await scan_page(sel.rows, page, count=not sel.fuzzy)
    return await page_response(result, sel.fmt)


def select_subscriptions(broker, q: dict) -> Selection:
    """GET /subscriptions' query (`q`: its parameters by name) on this node."""
    clientid, qos, topic = q.get("clientid"), q.get("qos"), q.get("topic")
    match_topic, share_group, durable = q.get("match_topic"), q.get("share_group"), \
        q.get("durable")
    sessions = broker.sessions
    if topic is not None:
        # As EMQX: a plain topic selects plain subscriptions, with share_group (or written as
        # $share/<group>/<topic>) that group's shared subscriptions on it.
        t_group, t_real = _parse_filter("topic", topic)
        if t_group is None:
            t_group = share_group
    if match_topic is not None:
        try:
            m_group, _, _ = parse_share(match_topic)
            validate_topic_filter(match_topic)
        except MQTTError:
            m_group = "invalid"
        if m_group is not None:
            raise ApiError(400, "INVALID_PARAMETER", "match_topic_invalid")

    # Candidates in listing order, from the narrowest index available.
    if clientid is not None:
        sess = sessions.get(clientid)
        cands: Iterable = [] if sess is None else list(sess.subscriptions.values())
    elif topic is not None:
        route = broker.router.routes.get(t_real)
        cands = [] if route is None else list(_route_subs(route, t_group, plain_only=True))
    elif match_topic is not None:
        routes = broker.router.routes
        if "+" in match_topic or "#" in match_topic:
            # over snapshots: the scan lets the loop run, which may change any of these
            cands = (s for flt, r in list(routes.items()) if matches(match_topic, flt)
                     for s in list(_route_subs(r, None)))
        else:  # a plain name only covers that very filter: one route lookup
            r = routes.get(match_topic)
            cands = [] if r is None else list(_route_subs(r, None))
    else:
        cands = (s for sess in list(sessions.values()) for s in list(sess.subscriptions.values()))

    checks = []
    if clientid is not None and topic is not None:
        checks.append(lambda s: s.real_filter == t_real and s.group == t_group)
    if clientid is not None and match_topic is not None or \
            topic is not None and match_topic is not None:
        checks.append(lambda s: matches(match_topic, s.real_filter))
    if qos is not None:
        checks.append(lambda s: s.qos == qos)
    if share_group is not None:
        checks.append(lambda s: s.group == share_group)
    if durable:  # no durable sessions on this broker
        checks.append(lambda s: False)

    def fmt(s) -> dict:
        return sub_info(broker, s.session.clientid, s)

    fuzzy = match_topic is not None
    if not checks and clientid is None and topic is None and match_topic is None:
        return Selection(cands, broker.subscription_total, fuzzy, fmt)
    rows = (s for s in cands if all(c(s) for c in checks)) if checks else cands
    return Selection(rows, None, fuzzy, fmt)


def _route_subs(route, group: str | None, plain_only: bool = False) -> Iterator:
    """The subscriptions on one route: plain ones, then each shared group's members (or only
    the plain ones, or only the members of `group`)."""
    if group is None:
        yield from route.subs.values()
        if plain_only:
            return
        for g in route.groups.values():
            yield from g.members
    else:
        g = route.groups.get(group)
        if g is not None:
            yield from g.members


_TOPIC_SCHEMA = {"type": "object", "required": ["node", "topic"], "properties": {
    "topic": {"type": "string", "description": "Topic Name"},
    "node": {"type": "string", "description": "Node"}}}


def _route_rows(broker, route) -> Iterator[dict]:
    if route.subs:
        yield {"topic": route.filter, "node": broker.node_name}
    for name in route.groups:
        prefix = "$queue/" if name == "$queue" else f"$share/{name}/"
        yield {"topic": prefix + route.filter, "node": broker.node_name}


@topics_router.get("/topics", description="Topics list",
                   responses=cluster_page_responses(_TOPIC_SCHEMA))
async def list_topics(
    request: Request, page: Page,
    topic: Annotated[Optional[str], Query(description="Topic Name", examples=[""])] = None,
    node: Annotated[Optional[str], Query(description="Node Name",
                                         examples=["emqx@127.0.0.1"])] = None,
):
    broker = broker_of(request)
    query = {"topic": topic}
    if topic is not None:
        _parse_filter("topic", topic)  # (checked here, before asking other nodes)
    if broker.cluster is not None:
        from emqpy.mgmt import cluster_query
        if node is not None and node not in broker.cluster.running_nodes():
            return await page_response(paginate((), page))  # a filter: no route has it
        return await cluster_query.page(broker, "topics", query, page, node)
    if node is not None and node != broker.node_name:  # a filter: no route has that node
        return await page_response(paginate((), page))
    sel = select_topics(broker, query)
    return await page_response(paginate(sel.rows, page, sel.total))


def select_topics(broker, q: dict) -> Selection:
    """GET /topics' query (`q`: its parameters by name) on this node: its routes."""
    routes = broker.router.routes
    topic = q.get("topic")
    if topic is not None:
        # As EMQX: "t" selects the plain route of t, "$share/g/t" the route of group g on t.
        group, real = _parse_filter("topic", topic)
        route = routes.get(real)
        want = topic if group is not None else real
        rows = [] if route is None else [r for r in _route_rows(broker, route)
                                         if r["topic"] == want]
        return Selection(iter(rows), len(rows), False, _same)
    # Rows are routes plus shared groups: counting them walks the routes once (no copies).
    total = sum((1 if r.subs else 0) + len(r.groups) for r in routes.values())
    rows_iter = (row for r in routes.values() for row in _route_rows(broker, r))
    return Selection(rows_iter, total, False, _same)


def _same(row):
    return row


@topics_router.get(
    "/topics/{topic:path}", description="Lookup topic info by name",
    responses={**ok({"type": "array", "items": _TOPIC_SCHEMA}),
               **error_responses({404: ["TOPIC_NOT_FOUND"]})})
async def get_topic(request: Request, topic: Annotated[str, Path(description="Topic Name")]):
    broker = broker_of(request)
    if broker.cluster is not None:  # the routes of every node, node by node
        from emqpy.mgmt import cluster_query
        answers = await cluster_query.per_node(broker, cluster_query.PAGE, "topic",
                                               {"topic": topic}, 0, 1000)
        rows = [row for a in answers.values() for row in a["data"]]
    else:
        rows = list(select_topic(broker, {"topic": topic}).rows)
    if not rows:
        raise ApiError(404, "TOPIC_NOT_FOUND", "Topic not found")
    return reply(rows)


def select_topic(broker, q: dict) -> Selection:
    """GET /topics/{topic}'s routes on this node (all of a filter's rows for a plain name)."""
    topic = q["topic"]
    try:
        group, real, _ = parse_share(topic)
    except MQTTError:
        return Selection(iter(()), 0, False, _same)
    route = broker.router.routes.get(real)
    rows = [] if route is None else [r for r in _route_rows(broker, route)
                                     if group is None or r["topic"] == topic]
    return Selection(iter(rows), len(rows), False, _same)


router.include_router(subscriptions_router)
router.include_router(topics_router)
