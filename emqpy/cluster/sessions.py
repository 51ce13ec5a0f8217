"""A client id is one client in the whole cluster: when it connects on one node, the node
that had it closes the old connection (DISCONNECT 0x8E, session taken over) and, unless the new
connection started clean, hands the session's subscriptions and queued and unacknowledged
messages to the new node, which subscribes and delivers them.

A CONNECT with clean start 0 for a client this node has no session of takes the session
before it is answered, as EMQX does (``take_before_connack``): every other running node is
asked at once (``session.take``, at most TAKEOVER_TIMEOUT seconds); the one that has it closes
the old connection, ends its session there and answers with its subscriptions and messages,
which are in place before the CONNACK, whose session present flag is then 1. Reading from
the new connection waits meanwhile; a single node, a clean start, or a client whose session
is here pays nothing.

Every connection is also announced after the fact (``client.connected``, batched per loop
iteration on ``<p>.conn``): a node that still has the client (a clean start, or a takeover
that timed out) ends it then, and hands its session over unless the new one started clean.

A node that restarts brings its persistent sessions back from its data dir (emqpy/durable);
before it lets clients in it asks the running nodes which of those client ids they have
(``session.claimed``): a client that connected elsewhere while this node was down has its old
session handed over there (or dropped, if it started clean), as the announcement it missed
would have done, instead of a second copy staying here with its routes.

After a partition, a client may have connected on each side (each side's takeover could not
reach the other): when a node comes back without a restart, each of the two asks the other
which of its client ids it has too (``session.claimed``), and the side whose session is older
ends it there (DISCONNECT 0x8E if it is connected) and hands it over to the newer one.

Wills, as the local broker and EMQX do: the old connection's will is published by its node
when it is taken over (at once without a will delay); a delayed will (MQTT 5) is dropped
when the client is back on another node within the delay, and published at once when a
clean start there discards the session.
"""
from __future__ import annotations

import asyncio
import logging
import time

import msgpack

from emqpy.broker.protocol.states import CLOSED
from emqpy.broker.session import Session
from emqpy.cluster.link import HEARTBEAT, RpcError
from emqpy.cluster.records import pack_message, unpack_message
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.packets import SubOpts
from emqpy.mqtt.topic import matches

log = logging.getLogger("emqpy.cluster")

TAKE = "session.take"  # take(clientid) on the node that has the session
TAKEOVER_TIMEOUT = 3.0  # seconds a CONNECT waits for the other nodes' answers
CLAIMED = "session.claimed"  # claimed([clientid...]) -> those the node has (see _claimed)
CLAIMED_BATCH = 1000  # client ids asked about at once


class SessionRegistry:
    def __init__(self, link):
        self.link = link
        self.broker = link.broker
        self._connected: list = []  # [clientid, clean_start] announced at the next flush

    async def start(self) -> None:
        p = self.link.prefix
        await self.link.nc.subscribe(f"{p}.conn", cb=self._on_connected_elsewhere)
        await self.link.nc.subscribe(f"{p}.takeover.{self.link.node}", cb=self._on_handover)
        self.broker.hooks.add("client.connected", self._connected_here)
        self.link.flushers.append(self._flush)
        self.link.register(TAKE, self._take)
        self.link.register(CLAIMED, self._claimed)
        self.link.on_back.append(self._reconcile_later)

    def stop(self) -> None:
        self.broker.hooks.remove("client.connected", self._connected_here)

    def _connected_here(self, ch) -> None:
        pkt = ch.connect_pkt
        self._connected.append([ch.clientid, bool(pkt.clean_start) if pkt else True])
        self.link._schedule()

    def _flush(self, publish) -> None:
        if self._connected:
            publish(f"{self.link.prefix}.conn", msgpack.packb([self.link.node, self._connected]))
            self._connected = []

    async def _on_connected_elsewhere(self, m) -> None:
        node, clients = msgpack.unpackb(m.data, raw=False)
        if node == self.link.node:
            return
        for clientid, clean in clients:
            await self._yield_to(node, clientid, clean)

    async def _yield_to(self, node: str, clientid: str, clean: bool) -> None:
        """`clientid` connected on `node` since it connected here: close its connection here
        (session taken over, or discarded when it started clean there) and leave it there."""
        broker = self.broker
        ch = broker.channels.get(clientid)
        if ch is not None:
            broker.metrics.c["session.takenover"] += 1
            ch.close(rc.SESSION_TAKEN_OVER, "discarded" if clean else "takenover")
        await self._leave_to(node, clientid, clean)

    def _reconcile_later(self, node: str) -> None:
        self.link.add_task(self._reconcile(node))

    async def _reconcile(self, node: str) -> None:
        """`node` is back after a partition: of the client ids with a session both here and
        there, the older session (by creation time, then node name) yields to the newer."""
        broker = self.broker
        ours = list(broker.sessions)
        given = 0
        for i in range(0, len(ours), CLAIMED_BATCH):
            try:
                claimed = await self.link.call(node, CLAIMED, ours[i:i + CLAIMED_BATCH])
            except RpcError as e:
                log.warning("cluster: could not compare sessions with %s: %s", node, e)
                return
            for clientid, created_at, clean in claimed:
                sess = broker.sessions.get(clientid)
                if sess is not None and (sess.created_at, self.link.node) < (created_at, node):
                    await self._yield_to(node, clientid, clean)
                    given += 1
        if given:
            log.info("cluster: %d session(s) that clients opened on both sides of a partition "
                     "given up to %s, where they are newer", given, node)

    async def _leave_to(self, node: str, clientid: str, clean: bool) -> None:
        """`clientid` is now `node`'s: end its session here, handing it over there unless
        the client started clean."""
        broker = self.broker
        sess = broker.sessions.get(clientid)
        if sess is None:
            return
        _end_delayed_will(broker, sess, publish=clean)
        if not clean:
            await self._hand_over(node, clientid, sess)
        broker.discard_session(sess, "discarded" if clean else "takenover")

    def _claimed(self, clientids: list) -> list:
        """Which of `clientids` have a session here: [[clientid, its creation time, whether
        its connection started clean (False when offline)]...]."""
        broker = self.broker
        out = []
        for clientid in clientids:
            sess = broker.sessions.get(clientid)
            if sess is not None:
                ch = broker.channels.get(clientid)
                pkt = ch.connect_pkt if ch is not None else None
                out.append([clientid, sess.created_at,
                            bool(pkt.clean_start) if pkt is not None else False])
        return out

    async def settle_restored(self) -> None:
        """Before clients are let in: the offline sessions here (brought back from the data
        dir) that another running node has a newer session of (made while this one was down)
        are given up to it; the newer one stays, so two nodes that both restored a client's
        session agree. Asks the nodes heard from since the link started, after a heartbeat
        round, so that every running node has had the time to be heard."""
        broker = self.broker
        offline = [cid for cid, sess in broker.sessions.items() if sess.channel is None]
        if not offline:
            return
        heard_by = self.link.started_at / 1000 + 1.5 * HEARTBEAT
        await asyncio.sleep(max(0.0, heard_by - time.time()))
        given = 0
        for i in range(0, len(offline), CLAIMED_BATCH):
            answers = await self.link.call_all(CLAIMED, offline[i:i + CLAIMED_BATCH],
                                               include_self=False)
            for node, claimed in answers.items():
                for clientid, created_at, clean in claimed:
                    sess = broker.sessions.get(clientid)
                    if sess is not None and sess.channel is None and \
                            sess.created_at < created_at:
                        await self._leave_to(node, clientid, clean)
                        given += 1
        if given:
            log.info("cluster: %d restored session(s) given up to the node(s) their clients "
                     "connected to meanwhile", given)

    async def _hand_over(self, node: str, clientid: str, sess) -> None:
        subs, msgs = _state(sess)
        await self.link.nc.publish(f"{self.link.prefix}.takeover.{node}",
                                   msgpack.packb([clientid, subs, msgs], use_bin_type=True))
        log.info("cluster: session %s handed over to %s (%d subscriptions, %d messages)",
                 clientid, node, len(subs), len(msgs))

    async def _on_handover(self, m) -> None:
        clientid, subs, msgs = msgpack.unpackb(m.data, raw=False)
        broker = self.broker
        sess = broker.sessions.get(clientid)
        if sess is None:
            return
        self._install(sess, subs, msgs, broker.channels.get(clientid))

    # -- the takeover before CONNACK ---------------------------------------------------------
    def take_before_connack(self, ch, pkt):
        """None when this CONNECT needs nothing from the other nodes, else the awaitable that
        brings the client's session here (the CONNECT path waits for it, then establishes)."""
        if pkt.clean_start or pkt.clientid in self.broker.sessions \
                or len(self.link.running_nodes()) < 2:
            return None
        task = self.broker.loop.create_task(self._take_from_cluster(pkt.clientid))
        # Runs just before the channel's own callback (which then establishes the connection
        # on the session installed here), in the same loop iteration.
        task.add_done_callback(lambda t: self._taken(ch, pkt, t))
        return task

    async def _take_from_cluster(self, clientid: str):
        answers = await self.link.call_all(TAKE, clientid, timeout=TAKEOVER_TIMEOUT,
                                           include_self=False)
        return next((a for a in answers.values() if a is not None), None)

    def _taken(self, ch, pkt, task) -> None:
        """Register the session another node handed over (`_take`'s answer) here, offline,
        for the CONNECT to resume; if the client went away meanwhile, it stays offline
        with its expiry (it was ended where it came from)."""
        if task.cancelled() or task.exception() is not None:
            return
        state = task.result()
        broker = self.broker
        if state is None or pkt.clientid in broker.sessions:
            return
        sess = broker.sessions[pkt.clientid] = Session(broker, pkt.clientid, 0)
        subs, msgs = state
        self._install(sess, subs, msgs, None)
        if ch.state == CLOSED:
            expiry = pkt.props.get("session_expiry_interval", 0) if pkt.proto_ver == 5 \
                else broker.config.mqtt.session_expiry_interval
            sess.expiry_interval = expiry
            if not expiry:
                broker.discard_session(sess, "terminated")
            elif expiry < 0xFFFFFFFF:
                sess.expiry_handle = broker.loop.call_later(expiry, broker._expire_session,
                                                            sess)

    def _take(self, clientid: str):
        """Another node's CONNECT (clean start 0) takes `clientid`: close its connection here
        and end the session, answering with what it had ([subscriptions, messages]), or None
        when it is not here."""
        broker = self.broker
        ch = broker.channels.get(clientid)
        if ch is not None:
            broker.metrics.c["session.takenover"] += 1
            ch.close(rc.SESSION_TAKEN_OVER, "takenover")
        sess = broker.sessions.get(clientid)
        if sess is None:
            return None
        _end_delayed_will(broker, sess, publish=False)  # the client is back within the delay
        state = _state(sess)
        broker.discard_session(sess, "takenover")
        log.info("cluster: session %s taken over (%d subscriptions, %d messages)",
                 clientid, len(state[0]), len(state[1]))
        return state

    def _install(self, sess, subs, msgs, ch) -> None:
        broker = self.broker
        for flt, qos, nl, rap, rh, sub_id in subs:
            if flt in sess.subscriptions:
                continue  # the client subscribed again itself
            broker.subscribe(sess, [(flt, SubOpts(qos, nl, rap, rh))], sub_id, ch,
                             authorize=False)  # (authorized where it was made)
        for qos, rec in msgs:
            _flt, _group, msg = unpack_message(rec)
            sub = next((s for s in sess.subscriptions.values()
                        if s.group is None and matches(s.real_filter, msg.topic)), None)
            if sub is not None:
                sess.deliver(msg, sub)


def _state(sess) -> list:
    """A session as it moves between nodes: [subscriptions, [granted QoS, message]...]; the
    unacknowledged messages first, then the queued ones."""
    subs = [[s.topic_filter, s.qos, s.no_local, s.retain_as_published, s.retain_handling,
             s.sub_id] for s in sess.subscriptions.values()]
    msgs = [[qos, pack_message("", None, msg)] for msg, qos, _ts in
            list(sess.inflight_after(None)) + list(sess.queued_after(None))]
    return [subs, msgs]


def _end_delayed_will(broker, sess, *, publish: bool) -> None:
    """The session leaves this node: its will waiting for a delay is published now (the
    session is discarded) or dropped (the client is connected again elsewhere)."""
    if sess.will_handle is not None:
        sess.will_handle.cancel()
        sess.will_handle = None
        if publish:
            broker._publish_will(sess)
    sess.pending_will = None
