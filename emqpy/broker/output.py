"""A connection's output: the bytes queued during one event-loop iteration, written with one
`transport.write` by the broker's flush, and the backpressure that follows from them.

`Output` is the base class of `Channel` and owns these fields; other code goes through the
interface below, never through the channel's private state.

* `write(data, publisher=None)` queues bytes. The first write of an iteration registers the
  connection in `broker.dirty` (and schedules `broker.flush` once for everyone); `flush()`
  hands the whole queue to the transport.
* Backpressure is counted in bytes: when `queued_bytes` passes `high_watermark` (or the
  transport's own buffer is full, `pause_writing`) the connection is `congested`, and the
  `publisher` whose message was being queued here (the Channel that sent it, passed down the
  delivery path: Broker.publish -> Session.deliver -> send_publish -> write) stops reading
  until this connection drains (`throttle`). Messages from nowhere in particular (the API,
  `$SYS`, wills) pass None and are never held back.
* The QoS 0 fan-out (`Broker.fanout_qos0`) runs once per subscriber per message, where
  calling `write` would add a fifth to its time (bench/fanout_loop.py: ~118 -> ~140 ns per
  subscriber), so it does what `write` does inline, through these public fields only: when `queued` is empty, append the connection
  to `broker.dirty` and call `broker.schedule_flush()` unless `broker.flush_scheduled`; append
  to `queued`; add the length to `queued_bytes`; call `throttle(publisher)` when that passes
  `high_watermark` or the connection is already `congested`.
"""
from __future__ import annotations

from emqpy.broker.protocol.states import CLOSED


class Backpressure:
    """Something publishers' messages wait for (a connection's output, or the cluster link's
    window towards a node): while it is `congested`, the publishers that queue messages for
    it stop reading (`throttle`) until `decongest` lets them read again. A publisher counts
    the things holding it back (`_read_holds`) and reads again when the last one drains."""
    __slots__ = ("congested", "_waiters")

    def __init__(self):
        self.congested = False
        self._waiters = None  # publishers paused until this drains

    def throttle(self, publisher) -> None:
        """Congested: `publisher` (a Channel; None: nobody in particular) stops reading until
        this drains."""
        self.congested = True
        if publisher is not None and publisher is not self:
            waiters = self._waiters
            if waiters is None:
                waiters = self._waiters = set()
            if publisher not in waiters:
                waiters.add(publisher)
                publisher._read_holds += 1
                if publisher._read_holds == 1 and publisher.transport is not None:
                    publisher.transport.pause_reading()

    def decongest(self) -> None:
        """Drained (or closed): the publishers held back for this read again, those that
        nothing else holds back (a publisher may feed several congested things at once)."""
        self.congested = False
        waiters = self._waiters
        if waiters:
            self._waiters = None
            for pub in waiters:
                pub._read_holds -= 1
                if not pub._read_holds and pub.transport is not None and pub.state != CLOSED \
                        and pub._pending is None:  # (not while it waits for an I/O answer)
                    pub.transport.resume_reading()


class Output(Backpressure):
    # (a base class of Channel: it reads the channel's `state` and calls its `close`)
    __slots__ = (
        "broker", "transport", "queued", "queued_bytes", "high_watermark",
        "_read_holds", "_paused_writing", "_send_timer",
        "send_cnt", "send_oct", "send_pkt", "send_other", "send_q1", "send_q2",
    )

    def __init__(self, broker):
        Backpressure.__init__(self)
        self.broker = broker
        self.transport = None
        self.queued: list[bytes] = []  # chunks for this iteration's write, one per packet
        self.queued_bytes = 0
        self.high_watermark = broker.out_high_watermark
        self._read_holds = 0  # congested things this connection feeds: it reads when none
        self._paused_writing = False  # the transport's buffer is over its limit
        self._send_timer = None  # closes the connection after send_timeout paused
        # Counters (see Channel.stats): socket writes and their bytes; MQTT packets handed to
        # the socket, and of those the non-PUBLISH ones and the QoS 1/2 PUBLISHes (QoS 0 is
        # what remains, so the QoS 0 fan-out counts nothing per message).
        self.send_cnt = self.send_oct = 0
        self.send_pkt = self.send_other = self.send_q1 = self.send_q2 = 0

    # -- writing ---------------------------------------------------------------------------

    def write(self, data: bytes, publisher=None) -> None:
        """Queue `data`; `publisher`: the connection whose message this is, if any (it is
        held back while this one is congested)."""
        queued = self.queued
        if not queued:
            broker = self.broker
            broker.dirty.append(self)
            if not broker.flush_scheduled:
                broker.schedule_flush()
        queued.append(data)
        n = self.queued_bytes + len(data)
        self.queued_bytes = n
        if n > self.high_watermark or self.congested:
            self.throttle(publisher)

    def flush(self) -> None:
        """Write what was queued (called by Broker.flush once per loop iteration)."""
        queued = self.queued
        if not queued:
            return
        durable = self.broker.durable
        if durable is not None and durable.holding:  # it may acknowledge what is not on disk
            self.queued = []
            durable.hold(self, queued)  # (queued_bytes keeps counting it until written)
            return
        self.send_pkt += len(queued)  # one chunk per packet
        data = queued[0] if len(queued) == 1 else b"".join(queued)
        queued.clear()
        self.queued_bytes = 0
        self._send(data)

    def flush_final(self) -> None:
        """`flush` before the connection closes: output `broker.durable` holds goes out now
        (it syncs at once what that output acknowledges), not after the close."""
        self.flush()
        durable = self.broker.durable
        if durable is not None and durable.holding:
            durable.release_now(self)

    def write_held(self, chunks: list) -> None:
        """Write output an earlier `flush` handed to `broker.durable.hold` (its changes are on
        disk now), ahead of anything queued since."""
        self.send_pkt += len(chunks)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        n = self.queued_bytes - len(data)
        self.queued_bytes = n if n > 0 else 0
        self._send(data)

    def _send(self, data: bytes) -> None:
        self.send_oct += len(data)
        self.broker.metrics.c["bytes.sent"] += len(data)  # EMQX node metric bytes.sent
        t = self.transport
        if t is not None and not t.is_closing():
            self.send_cnt += 1
            t.write(data)
        if self.congested and not self._paused_writing and \
                self.queued_bytes <= self.high_watermark:
            self.decongest()

    def discard_output(self) -> None:
        """The connection ended: drop what was not written and release paused publishers."""
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        self.send_pkt += len(self.queued)  # handed to the connection, if never written
        self.queued.clear()
        self.queued_bytes = 0
        self.decongest()

    # -- asyncio.Protocol flow control -----------------------------------------------------

    def pause_writing(self) -> None:
        self._paused_writing = True
        self.congested = True
        timeout = self.broker.send_timeout
        if timeout and self._send_timer is None:
            self._send_timer = self.broker.loop.call_later(timeout, self._send_timed_out)

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        if self.queued_bytes <= self.high_watermark:
            self.decongest()

    def _send_timed_out(self) -> None:
        self._send_timer = None
        if self._paused_writing and self.state != CLOSED:
            self.close(None, "send_timeout")
