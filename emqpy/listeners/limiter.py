"""Per-connection receive limits: a listener's `messages_rate` and `bytes_rate` (EMQX's limiter
short paths), enforced by pausing reads on the transport until tokens are back. Nothing is
dropped: what was read while the limit holds waits, unprocessed, and the socket is not read.

Semantics of EMQX 5.8 (emqx_limiter_utils, emqx_htb_limiter, emqx_connection):

* each of the two is a token bucket per connection, refilled at the rate, holding at most one
  second's worth (a "500/10s" rate: 50 per second, at most 50 at once), starting with a tenth
  of a second's worth;
* incoming MQTT packets are what is counted: each costs its size in `bytes` tokens and one
  `messages` token (EMQX counts every packet, not only PUBLISH);
* when a bucket runs dry the connection stops reading until the refill has paid for what was
  taken (EMQX's `divisible`: a packet larger than a second's worth still passes, then waits),
  checking again after at least 50 ms and at most 5 s.

Where EMQX admits a whole socket read once its cost is paid, emqpy admits the packets of a read
one by one as the tokens allow: the same average rate without a burst of a read's worth after
each pause. Reads that arrive while packets wait (reading resumed by something else) queue
behind them.

A connection of a listener without these keys has no limiter: the read path checks one
attribute (`Channel.limiter is None`) and nothing else.
"""
from __future__ import annotations

import collections
import time

from emqpy.broker.protocol.states import CLOSED
from emqpy.config import parse_rate

MIN_PAUSE = 0.05  # EMQX's ?MINIMUM_PAUSE
MAX_PAUSE = 5.0  # EMQX's ?MAXIMUM_PAUSE


def limits_of(cfg) -> tuple[float | None, float | None] | None:
    """(messages per second, bytes per second) of a listener config, None when neither is
    set (or both are "infinity")."""
    msgs = _per_second(cfg.messages_rate)
    octs = _per_second(cfg.bytes_rate)
    return None if msgs is None and octs is None else (msgs, octs)


def _per_second(text: str | None) -> float | None:
    if text is None:
        return None
    rate = parse_rate(text)  # (checked when the config was validated)
    return None if rate is None else rate[0]


class Bucket:
    """One token bucket. Tokens may go below zero: a read that costs more than there is
    takes it all and owes the rest, which the refill pays before the next read goes on."""

    __slots__ = ("rate", "capacity", "tokens", "at")

    def __init__(self, rate: float, now: float):
        self.rate = rate
        self.capacity = rate  # one second's worth
        self.tokens = rate / 10  # EMQX's initial value: one 100 ms period's worth
        self.at = now

    def refill(self, now: float) -> None:
        tokens = self.tokens + (now - self.at) * self.rate
        self.tokens = tokens if tokens < self.capacity else self.capacity
        self.at = now

    def wait(self) -> float:
        """Seconds until the debt is paid (0 when there is none)."""
        return -self.tokens / self.rate if self.tokens < 0 else 0.0

    def retune(self, rate: float, now: float) -> None:
        self.refill(now)
        self.rate = self.capacity = rate
        if self.tokens > rate:
            self.tokens = rate


def wire_size(body_len: int) -> int:
    """Bytes of an MQTT packet on the wire: fixed header byte, remaining length, body."""
    if body_len < 128:
        return body_len + 2
    if body_len < 16_384:
        return body_len + 3
    return body_len + (4 if body_len < 2_097_152 else 5)


class ConnLimiter:
    """The limits of one connection (`Channel.limiter`)."""

    __slots__ = ("ch", "messages", "bytes", "held", "timer", "clock", "pauses")

    def __init__(self, ch, limits: tuple[float | None, float | None], clock=time.monotonic):
        self.ch = ch
        self.clock = clock
        now = clock()
        msgs, octs = limits
        self.messages = Bucket(msgs, now) if msgs is not None else None
        self.bytes = Bucket(octs, now) if octs is not None else None
        self.held: collections.deque | None = None  # frames read but not yet admitted
        self.timer = None
        self.pauses = 0  # how often this connection's reading was paused by its limits

    def hold(self, nbytes: int, frames: list) -> bool:
        """A read completed `frames`: True when they must wait (reading is paused and what
        the rate allows is processed as it allows it), False to process them now."""
        if self.held is not None:  # already waiting: this read queues behind
            self.held.extend(frames)
            self._pause_reading()  # (something else may have resumed it)
            return True
        if not frames:
            return False
        now = self.clock()
        b, m = self.bytes, self.messages
        cost = 0
        if b is not None:
            b.refill(now)
            for _, body in frames:
                cost += wire_size(len(body))
        if m is not None:
            m.refill(now)
        if (b is None or b.tokens >= cost) and (m is None or m.tokens >= len(frames)):
            if b is not None:
                b.tokens -= cost
            if m is not None:
                m.tokens -= len(frames)
            return False
        self.held = collections.deque(frames)
        self.pauses += 1
        self._pause_reading()
        self._drain(now)
        return True

    def retune(self, limits) -> None:
        """New rates (a listener's config changed): the buckets keep what they hold."""
        now = self.clock()
        for name, rate in zip(("messages", "bytes"), limits):
            bucket = getattr(self, name)
            if rate is None:
                setattr(self, name, None)
            elif bucket is None:
                setattr(self, name, Bucket(rate, now))
            else:
                bucket.retune(rate, now)
        if self.held is not None:  # go on at the new pace
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            self._drain(now)

    def release(self) -> None:
        """The limits are gone: let the held frames through at once."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.held is not None:
            frames, self.held = list(self.held), None
            self._resume_reading()
            self._deliver(frames)

    # -- internals ---------------------------------------------------------------------------

    def _drain(self, now: float) -> None:
        """Admit held frames while every bucket has tokens (the last one may overdraw: a
        packet larger than a second's worth of bytes still goes, then the debt is paid);
        wait for the refill for the rest."""
        b, m, held = self.bytes, self.messages, self.held
        if b is not None:
            b.refill(now)
        if m is not None:
            m.refill(now)
        admitted = []
        while held and (b is None or b.tokens > 0) and (m is None or m.tokens > 0):
            frame = held.popleft()
            if b is not None:
                b.tokens -= wire_size(len(frame[1]))
            if m is not None:
                m.tokens -= 1
            admitted.append(frame)
        if held:
            wait = max(-bk.tokens / bk.rate for bk in (b, m) if bk is not None)
            wait = MIN_PAUSE if wait < MIN_PAUSE else MAX_PAUSE if wait > MAX_PAUSE else wait
            self.timer = self.ch.broker.loop.call_later(wait, self._retry)
        else:
            self.held = None
            self._resume_reading()
        if admitted:
            self._deliver(admitted)

    def _retry(self) -> None:
        self.timer = None
        if self.ch.state == CLOSED:
            self.held = None
            return
        self._drain(self.clock())

    def _pause_reading(self) -> None:
        t = self.ch.transport
        if t is not None:
            t.pause_reading()

    def _resume_reading(self) -> None:
        ch = self.ch
        t = ch.transport
        # not while a congested subscriber or an I/O answer holds the reading back
        if t is not None and not ch._read_holds and ch._pending is None \
                and ch.state != CLOSED:
            t.resume_reading()

    def _deliver(self, frames: list) -> None:
        ch = self.ch
        if ch.state == CLOSED:
            return
        # Packets we held count as heard from the client: its keep alive must not expire
        # because the broker chose not to read it.
        ch._recv_flag = True
        if ch._pending is not None:  # waiting for an I/O answer: these come after its frames
            ch._pending.extend(frames)
        else:
            ch._process(frames)
