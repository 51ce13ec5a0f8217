"""The sending side's immediate path (emqpy/bridge/delivery.py `Delivery._now`, used by the
MQTT action): a delivery made at once is settled by its callback; one that cannot be made at
once, that fails recoverably, or whose acknowledgement does not come in time goes on in the
retrying coroutine, counted as EMQX counts it."""
from __future__ import annotations

import asyncio

from emqpy.bridge.delivery import FAIL, OK, RETRY, Delivery, encode


class Action:
    """An action whose outcomes the test decides: `now[payload]` is what `send_now` does
    (("ok"|"fail"), "later": keep `done` for the test, "busy": cannot at once); `send` (the
    coroutine's path) always succeeds and records what it sent."""

    def __init__(self, now: dict):
        self.now = now
        self.later: dict = {}
        self.sent: list = []

    def send_now(self, selected, envelope, done) -> bool:
        what = self.now[selected["p"]]
        if what == "busy":
            return False
        if what == "later":
            self.later[selected["p"]] = done
        else:
            done(OK if what == "ok" else FAIL, "refused" if what == "fail" else "")
        return True

    async def send(self, selected, envelope, timeout):
        self.sent.append(selected["p"])
        return OK, ""


def run(now: dict, steps, send_timeout: float = 5.0) -> tuple[list, Action]:
    reports: list = []
    action = Action(now)

    async def main():
        d = Delivery("t", action.send, lambda *r: reports.append(r[:4]), lanes=1,
                     send_timeout=send_timeout, ttl=0.0, resume_interval=0.01,
                     send_now=action.send_now)
        d.deliver_batch(0, [(seq, encode({"p": p}, {}, 0.0)) for seq, p in enumerate(now)])
        await steps(action)
        await asyncio.sleep(0.1)
        await d.cancel()
    asyncio.run(main())
    return reports, action


def test_immediate_outcomes_and_fallbacks():
    async def steps(action):
        await asyncio.sleep(0.01)
        action.later["c"](OK, "")
        action.later["d"](RETRY, "connection lost")

    reports, action = run({"a": "ok", "b": "fail", "c": "later", "d": "later", "e": "busy"},
                          steps)
    assert reports[0] == (0, 0, "success", True)
    assert reports[1] == (0, 1, "failed", False)
    assert (0, 2, "success", True) in reports
    # recoverable: counted as a retry, sent again by the coroutine, then retried.success
    assert (0, 3, "retried", None) in reports and (0, 3, "retried.success", True) in reports
    assert (0, 4, "success", True) in reports  # no room at once: the coroutine sent it
    assert sorted(action.sent) == ["d", "e"]


def test_an_acknowledgement_that_does_not_come_in_time_is_retried():
    async def steps(action):
        await asyncio.sleep(0.2)  # past send_timeout: the timer settles it as a retry
        action.later["a"](OK, "")  # too late: ignored

    reports, action = run({"a": "later"}, steps, send_timeout=0.05)
    assert reports == [(0, 0, "retried", None), (0, 0, "retried.success", True)]
    assert action.sent == ["a"]


def test_buffer_records_round_trip_any_payload():
    # a payload that is not UTF-8 reaches the rule as surrogate escapes: orjson refuses it,
    # the record is pickled; records written as JSON by earlier versions still read back
    import json

    from emqpy.bridge.delivery import decode

    binary = {"payload": b"\x00\xff\xfe ok".decode("utf-8", "surrogateescape"), "qos": 1}
    text = {"payload": "h\u00e9llo", "n": [1, 2.5, None, True]}
    for selected in (binary, text):
        record = encode(selected, {"clientid": "c"}, 12.5)
        assert decode(record) == (12.5, selected, {"clientid": "c"})
    assert encode(binary, {}, 0.0)[8:9] == b"\x80" and encode(text, {}, 0.0)[8:9] == b"["
    old = encode(text, {}, 3.0)[:8] + json.dumps([binary, {}]).encode()
    assert decode(old) == (3.0, binary, {})
