"""Per-topic message counters and rates (EMQX's emqx_topic_metrics) for the topics of the config
root `topic_metrics` (at most 512 topic names).

Counted from the hook points: `message.publish` (in, per QoS), `message.delivered` (out, per
QoS; a fan-out whose topic is not registered is skipped whole, see docs/hooks.md) and
`message.dropped`. Rates are EMQX's: every second each counter's increase feeds a moving
average over 5 samples, shown rounded to 4 decimals. The callbacks and the one-second timer
exist only while a topic is registered.
"""
from __future__ import annotations

import time

from emqpy.timefmt import rfc3339

METRICS = ("messages.in", "messages.out", "messages.qos0.in", "messages.qos0.out",
           "messages.qos1.in", "messages.qos1.out", "messages.qos2.in", "messages.qos2.out",
           "messages.dropped")
IN, OUT, DROPPED = 0, 1, 8
_QOS_IN = (2, 4, 6)  # index of messages.qos{N}.in; +1 is .out
TICK = 1.0  # seconds between rate samples (EMQX's ?TICKING_INTERVAL)
WINDOW = 5  # samples in the moving average shown as the rate (?SPEED_AVERAGE_WINDOW_SIZE)
PRIORITY = 940  # EMQX's HP_TOPIC_METRICS


class TopicCounters:
    __slots__ = ("topic", "counts", "last", "rates", "create_time")

    def __init__(self, topic: str):
        self.topic = topic
        self.create_time = rfc3339(time.time())
        self.reset()

    def reset(self) -> None:
        self.counts = [0] * len(METRICS)
        self.last = [0] * len(METRICS)  # counts at the previous sample
        self.rates = [0.0] * len(METRICS)

    def sample(self) -> None:
        counts, last, rates = self.counts, self.last, self.rates
        for i, value in enumerate(counts):
            speed = (value - last[i]) / TICK
            rates[i] = (rates[i] * (WINDOW - 1) + speed) / WINDOW
            last[i] = value

    def format(self) -> dict:
        metrics = {}
        for name, count, rate in zip(METRICS, self.counts, self.rates):
            metrics[name + ".count"] = count
            metrics[name + ".rate"] = round(rate, 4)
        return {"topic": self.topic, "metrics": metrics, "create_time": self.create_time}


class TopicMetrics:
    def __init__(self, broker):
        self.broker = broker
        self.topics: dict[str, TopicCounters] = {}
        self._timer = None
        self._hooked = False
        self.on_delivered = self._delivered_callback()

    def sync(self, names: list[str]) -> None:
        """Follow the config: keep the counters of topics still listed, add the new ones."""
        kept = {t: self.topics.get(t) or TopicCounters(t) for t in names}
        self.topics.clear()  # (in place: the callbacks hold this dict)
        self.topics.update(kept)
        self._rehook()

    def _rehook(self) -> None:
        hooks = self.broker.hooks
        want = bool(self.topics)
        if want and not self._hooked:
            hooks.add("message.publish", self.on_publish, PRIORITY)
            hooks.add("message.delivered", self.on_delivered, PRIORITY)
            hooks.add("message.dropped", self.on_dropped, PRIORITY)
            self._hooked = True
            self._arm()
        elif not want and self._hooked:
            self.stop()

    def stop(self) -> None:
        if self._hooked:
            hooks = self.broker.hooks
            hooks.remove("message.publish", self.on_publish)
            hooks.remove("message.delivered", self.on_delivered)
            hooks.remove("message.dropped", self.on_dropped)
            self._hooked = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        loop = self.broker.loop
        if loop is not None and self._timer is None:
            self._timer = loop.call_later(TICK, self._tick)

    def _tick(self) -> None:
        self._timer = None
        for tc in self.topics.values():
            tc.sample()
        if self._hooked:
            self._arm()

    # -- callbacks ----------------------------------------------------------------------------

    def on_publish(self, msg):
        tc = self.topics.get(msg.topic)
        if tc is not None:
            c = tc.counts
            c[IN] += 1
            c[_QOS_IN[msg.qos]] += 1
        return msg

    def _delivered_callback(self):
        """The `message.delivered` callback (a function: it carries `skips`/`skipped`, so
        that a QoS 0 fan-out reports its deliveries at once instead of one call each).
        The QoS counted is the message's (the point does not say the subscription's)."""
        topics = self.topics

        def on_message_delivered(msg, ch):
            tc = topics.get(msg.topic)
            if tc is not None:
                c = tc.counts
                c[OUT] += 1
                c[_QOS_IN[msg.qos] + 1] += 1
            return msg

        def skipped(msg, n: int) -> None:
            tc = topics.get(msg.topic)
            if tc is not None:
                c = tc.counts
                c[OUT] += n
                c[_QOS_IN[msg.qos] + 1] += n

        on_message_delivered.skips = lambda msg: True  # nothing is changed per receiver
        on_message_delivered.skipped = skipped
        return on_message_delivered

    def on_dropped(self, msg, reason) -> None:
        tc = self.topics.get(msg.topic)
        if tc is not None:
            tc.counts[DROPPED] += 1

    def reset(self, topic: str | None = None) -> None:
        for tc in (self.topics.values() if topic is None else (self.topics[topic],)):
            tc.reset()
