"""One copy per client for overlapping subscriptions (`mqtt.overlapping_subscriptions = single`,
an emqpy extension; EMQX sends one copy per matching subscription, which stays the default).

MQTT 5 3.3.4: a server may send a client one message for all its matching subscriptions, at the
highest QoS among them, carrying the Subscription Identifier of every one that has one. No Local
takes a subscription out of the set for the client's own messages (3.8.3.1); the copy keeps the
RETAIN flag when any remaining subscription asks for Retain As Published (3.3.1.3). Shared
subscriptions are not merged: each group still gets its copy, as per_subscription does.
In a cluster the publishing node forwards a message once per matching filter of another node:
that node merges those records back into one delivery (same_message_runs).
"""
from __future__ import annotations

from emqpy.broker.router import Subscription


def merged_subscriptions(routes, msg) -> dict:
    """client id -> the subscription to deliver `msg` through, for the plain subscriptions of
    `routes` (the routes matching its topic): a client's own Subscription when only one of
    its subscriptions matches, else one made up from all that match."""
    found: dict = {}
    many = None  # client id -> [Subscription, ...] for clients with several
    for route in routes:
        for cid, sub in route.subs.items():
            first = found.get(cid)
            if first is None:
                found[cid] = sub
                continue
            if many is None:
                many = {}
            subs = many.get(cid)
            if subs is None:
                many[cid] = [first, sub]
            else:
                subs.append(sub)
    if many:
        for cid, subs in many.items():
            found[cid] = _merge(subs, msg)
    return found


def _merge(subs: list, msg) -> Subscription:
    sess = subs[0].session
    if msg.sender == sess.clientid:  # the client's own message: its No Local ones are out
        kept = [s for s in subs if not s.no_local]
        if not kept:
            return subs[0]  # (delivered as any of them would be: dropped for No Local)
        subs = kept
    qos = 0
    rap = False
    ids = []
    for s in subs:
        if s.qos > qos:
            qos = s.qos
        rap = rap or s.retain_as_published
        if s.sub_id:
            ids.append(s.sub_id)
    first = subs[0]
    merged = Subscription(sess, first.topic_filter, first.real_filter, None, qos,
                          retain_as_published=rap)
    merged.sub_ids = tuple(ids) or None
    return merged


def same_message_runs(recs: list):
    """The records of a cluster forward batch (emqpy.cluster.link: [message fields...,
    filter, group]) in runs: the consecutive plain-subscription records of one message, one per
    filter, which the sender queues together for each node; every other record alone."""
    run: list = []
    filters: set = set()
    for rec in recs:
        if run and rec[-1] is None and run[0][-1] is None and rec[-2] not in filters \
                and rec[:-3] == run[0][:-3]:  # (the third last: expiry left, read per record)
            run.append(rec)
            filters.add(rec[-2])
            continue
        if run:
            yield run
        run = [rec]
        filters = {rec[-2]}
    if run:
        yield run
