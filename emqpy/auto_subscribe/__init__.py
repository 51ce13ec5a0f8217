"""Auto subscribe (EMQX's emqx_auto_subscribe), config root `auto_subscribe`: every client that
connects is subscribed to `auto_subscribe.topics`, with `${clientid}`, `${username}`,
`${host}` and `${port}` filled in.

As EMQX: the subscriptions are made once the client is connected (after CONNACK), are not
checked by authorization and do not pass `client.subscribe`; a topic whose placeholder the
client cannot fill (no username) is skipped with a warning. The `client.connected` callback is
registered only while topics are configured (`config_changed` follows the root).
"""
from __future__ import annotations

import logging

from emqpy.feature import Feature

log = logging.getLogger("emqpy.auto_subscribe")

PRIORITY = 920  # EMQX's HP_AUTO_SUB


def fill(topic: str, ch) -> str | None:
    """`topic` with the client's values in its placeholders; None when one has no value."""
    if "${username}" in topic:
        if ch.username is None:
            return None
        topic = topic.replace("${username}", ch.username)
    return (topic.replace("${clientid}", ch.clientid or "")
            .replace("${host}", str(ch.peerhost or ""))
            .replace("${port}", str(ch.peerport or "")))


class AutoSubscriber:
    def __init__(self, broker, topics):
        from emqpy.mqtt.packets import SubOpts

        self.broker = broker
        self.topics = [(t.topic, SubOpts(t.qos, bool(t.nl), bool(t.rap), t.rh)) for t in topics]

    def on_connected(self, ch) -> None:
        table = []
        for raw, opts in self.topics:
            topic = fill(raw, ch)
            if not topic:
                log.warning("auto subscribe to %r skipped for %s: %s", raw, ch.clientid,
                            "no username" if topic is None else "empty topic")
                continue
            table.append((topic, opts))
        if not table or ch.session is None:
            return
        codes, retained = self.broker.subscribe(ch.session, table, None, ch, authorize=False)
        for (topic, _), code in zip(table, codes):
            if code >= 0x80:
                log.warning("auto subscribe of %s to %r failed: reason code %#x", ch.clientid,
                            topic, code)
        for deliver in retained:
            deliver()


def setup(broker) -> None:
    config_changed(broker)


def config_changed(broker) -> None:
    old = broker.auto_subscribe
    if old is not None:
        broker.hooks.remove("client.connected", old.on_connected)
        broker.auto_subscribe = None
    topics = broker.config.auto_subscribe.topics
    if topics:
        broker.auto_subscribe = AutoSubscriber(broker, topics)
        broker.hooks.add("client.connected", broker.auto_subscribe.on_connected, PRIORITY)


async def teardown(broker) -> None:
    if broker.auto_subscribe is not None:
        broker.hooks.remove("client.connected", broker.auto_subscribe.on_connected)
        broker.auto_subscribe = None


FEATURE = Feature("auto_subscribe", setup=setup, teardown=teardown,
                  routers=("emqpy.auto_subscribe.api",))
