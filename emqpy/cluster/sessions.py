"""A client id is one client in the whole cluster: when it connects on one node, the node
that had it closes the old connection (DISCONNECT 0x8E, session taken over) and, unless the new
connection started clean, hands the session's subscriptions and queued and unacknowledged
messages to the new node, which subscribes and delivers them.

The hand-over is announced after the fact (``client.connected`` on the new node, batched per
loop iteration on ``<p>.conn``), so a CONNECT pays no round trip; the price is that the new
CONNACK says session present = 0 even when a session arrives a moment later.
"""
from __future__ import annotations

import logging

import msgpack

from emqpy.cluster.link import pack_message, unpack_message
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.packets import SubOpts
from emqpy.mqtt.topic import matches

log = logging.getLogger("emqpy.cluster")


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
        broker = self.broker
        for clientid, clean in clients:
            ch = broker.channels.get(clientid)
            if ch is not None:
                broker.metrics.c["session.takenover"] += 1
                ch.close(rc.SESSION_TAKEN_OVER, "discarded" if clean else "takenover")
            sess = broker.sessions.get(clientid)
            if sess is None:
                continue
            if not clean:
                await self._hand_over(node, clientid, sess)
            broker.discard_session(sess, "discarded" if clean else "takenover")

    async def _hand_over(self, node: str, clientid: str, sess) -> None:
        subs = [[s.topic_filter, s.qos, s.no_local, s.retain_as_published, s.retain_handling,
                 s.sub_id] for s in sess.subscriptions.values()]
        msgs = [[qos, pack_message("", None, msg)] for msg, qos, _ts in
                list(sess.inflight_after(None)) + list(sess.queued_after(None))]
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
        ch = broker.channels.get(clientid)
        for flt, qos, nl, rap, rh, sub_id in subs:
            if flt in sess.subscriptions:
                continue  # the client subscribed again itself
            broker.subscribe(sess, [(flt, SubOpts(qos, nl, rap, rh))], sub_id, ch)
        for qos, rec in msgs:
            _flt, _group, msg = unpack_message(rec)
            sub = next((s for s in sess.subscriptions.values()
                        if s.group is None and matches(s.real_filter, msg.topic)), None)
            if sub is not None:
                sess.deliver(msg, sub)
