"""Counters with EMQX's metric names.

Hot-path counters are plain list slots (per QoS) bumped by the channel; the EMQX names that are
sums of others (packets.sent, messages.received, ...) are computed when read, so that each
message costs as few increments as possible.
"""
from __future__ import annotations

NAMES = (
    "bytes.received", "bytes.sent", "packets.received", "packets.sent",
    "packets.connect.received", "packets.connack.sent", "packets.connack.error",
    "packets.connack.auth_error", "packets.publish.received", "packets.publish.sent",
    "packets.publish.inuse", "packets.publish.error", "packets.publish.auth_error",
    "packets.publish.dropped", "packets.puback.received", "packets.puback.sent",
    "packets.puback.inuse", "packets.puback.missed", "packets.pubrec.received",
    "packets.pubrec.sent", "packets.pubrec.inuse", "packets.pubrec.missed",
    "packets.pubrel.received", "packets.pubrel.sent", "packets.pubrel.missed",
    "packets.pubcomp.received", "packets.pubcomp.sent", "packets.pubcomp.inuse",
    "packets.pubcomp.missed", "packets.subscribe.received", "packets.subscribe.error",
    "packets.subscribe.auth_error", "packets.suback.sent", "packets.unsubscribe.received",
    "packets.unsubscribe.error", "packets.unsuback.sent", "packets.pingreq.received",
    "packets.pingresp.sent", "packets.disconnect.received", "packets.disconnect.sent",
    "packets.auth.received", "packets.auth.sent", "messages.received", "messages.sent",
    "messages.qos0.received", "messages.qos0.sent", "messages.qos1.received",
    "messages.qos1.sent", "messages.qos2.received", "messages.qos2.sent", "messages.publish",
    "messages.dropped", "messages.validation_failed", "messages.validation_succeeded",
    "messages.transformation_failed", "messages.transformation_succeeded",
    "messages.dropped.await_pubrel_timeout", "messages.dropped.no_subscribers",
    "messages.forward", "messages.delayed", "messages.delivered", "messages.acked",
    "messages.persisted", "messages.retained", "delivery.dropped", "delivery.dropped.no_local",
    "delivery.dropped.too_large", "delivery.dropped.qos0_msg", "delivery.dropped.queue_full",
    "delivery.dropped.expired", "client.connect", "client.connack", "client.connected",
    "client.authenticate", "client.auth.anonymous", "client.authorize", "client.subscribe",
    "client.unsubscribe", "client.disconnected", "session.created", "session.resumed",
    "session.takenover", "session.discarded", "session.terminated", "authorization.allow",
    "authorization.deny", "authorization.cache_hit", "authorization.cache_miss",
    "authentication.success", "authentication.success.anonymous", "authentication.failure",
    "overload_protection.delay.ok", "overload_protection.delay.timeout",
    "overload_protection.hibernation", "overload_protection.gc", "overload_protection.new_conn",
)

_PACKET_SENT = ("packets.connack.sent", "packets.puback.sent", "packets.pubrec.sent",
                "packets.pubrel.sent", "packets.pubcomp.sent", "packets.suback.sent",
                "packets.unsuback.sent", "packets.pingresp.sent", "packets.disconnect.sent",
                "packets.auth.sent")
_PACKET_RECEIVED = ("packets.connect.received", "packets.puback.received",
                    "packets.pubrec.received", "packets.pubrel.received",
                    "packets.pubcomp.received", "packets.subscribe.received",
                    "packets.unsubscribe.received", "packets.pingreq.received",
                    "packets.disconnect.received", "packets.auth.received")


class Metrics:
    __slots__ = ("c", "recv_q", "sent_q")

    def __init__(self):
        self.c: dict[str, int] = dict.fromkeys(NAMES, 0)
        self.recv_q = [0, 0, 0]  # PUBLISH packets received per QoS
        self.sent_q = [0, 0, 0]  # PUBLISH packets sent per QoS

    def snapshot(self) -> dict[str, int]:
        c = dict(self.c)
        rq, sq = self.recv_q, self.sent_q
        for q in range(3):
            c[f"messages.qos{q}.received"] = rq[q]
            c[f"messages.qos{q}.sent"] = sq[q]
        received = sum(rq)
        sent = sum(sq)
        c["messages.received"] = received
        c["messages.sent"] = sent
        c["messages.delivered"] = sent
        c["messages.publish"] = received + c["messages.publish"]  # + API/system publishes
        c["packets.publish.received"] = received + c["packets.publish.error"] + c[
            "packets.publish.auth_error"]
        c["packets.publish.sent"] = sent
        c["packets.received"] = c["packets.publish.received"] + sum(c[k] for k in _PACKET_RECEIVED)
        c["packets.sent"] = sent + sum(c[k] for k in _PACKET_SENT)
        c["messages.dropped"] = c["messages.dropped.no_subscribers"] + c[
            "messages.dropped.await_pubrel_timeout"] + c["delivery.dropped"]
        return c
