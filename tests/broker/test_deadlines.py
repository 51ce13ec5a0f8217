"""The deadline wheel behind idle and keep-alive timeouts, on a loop whose clock the test moves."""
from emqpy.broker.deadlines import DeadlineWheel


class ClockLoop:
    """time() and call_at() of an event loop, with time moved by the test."""

    def __init__(self, now: float):
        self.now = now
        self.timers = []

    def time(self) -> float:
        return self.now

    def call_at(self, when, fn):
        loop = self

        class Handle:
            def cancel(self):
                loop.timers.remove(entry)
        entry = (when, fn)
        self.timers.append(entry)
        return Handle()

    def advance(self, to: float) -> None:
        self.now = to
        while True:
            due = [t for t in self.timers if t[0] <= self.now]
            if not due:
                return
            self.timers.remove(due[0])
            due[0][1]()


class Conn:
    def __init__(self, wheel):
        self.wheel = wheel
        self.deadline = None
        self.fired = []

    def set(self, delay):
        self.drop()
        self.deadline = self.wheel.add(self, delay)

    def drop(self):
        if self.deadline is not None:
            self.wheel.discard(self, self.deadline)
            self.deadline = None

    def on_deadline(self, second):
        if second == self.deadline:
            self.fired.append(second)


def test_never_early_and_at_most_a_second_late():
    loop = ClockLoop(100.3)
    w = DeadlineWheel(loop)
    c = Conn(w)
    c.set(1.5)  # due at 101.8 -> filed under second 102
    loop.advance(101.9)
    assert c.fired == []
    loop.advance(102.0)
    assert c.fired == [102]
    assert len(w) == 0 and not loop.timers  # nothing filed: no timer left running


def test_moved_and_dropped_deadlines_do_not_fire():
    loop = ClockLoop(10.0)
    w = DeadlineWheel(loop)
    moved, dropped, kept = Conn(w), Conn(w), Conn(w)
    for c in (moved, dropped, kept):
        c.set(2)
    moved.set(5)
    dropped.drop()
    assert len(w) == 2
    loop.advance(12.5)
    assert (moved.fired, dropped.fired, kept.fired) == ([], [], [12])
    loop.advance(15.0)
    assert moved.fired == [15]


def test_a_long_idle_wheel_does_not_walk_every_second_since():
    loop = ClockLoop(0.0)
    w = DeadlineWheel(loop)
    c = Conn(w)
    c.set(1)
    loop.advance(1.0)
    loop.now = 1e6  # a long quiet time: no timer is pending, nothing walked
    c.set(1)
    assert w._cursor >= 1e6 - 1
    loop.advance(1e6 + 1)
    assert c.fired == [1, 1e6 + 1]


def test_a_failing_handler_does_not_stop_the_others(caplog):
    loop = ClockLoop(0.0)
    w = DeadlineWheel(loop)

    class Bad:
        def on_deadline(self, second):
            raise RuntimeError("boom")
    w.add(Bad(), 1)
    c = Conn(w)
    c.set(1)
    loop.advance(1.0)
    assert c.fired == [1]
    assert "deadline handler failed" in caplog.text


def test_a_dropped_deadline_keeps_no_reference():
    """A closed connection is not held until its keep-alive second comes (minutes away)."""
    import gc
    import weakref
    loop = ClockLoop(0.0)
    w = DeadlineWheel(loop)
    c = Conn(w)
    c.set(450)
    ref = weakref.ref(c)
    c.drop()
    del c
    gc.collect()
    assert ref() is None and len(w) == 0 and not w._buckets
