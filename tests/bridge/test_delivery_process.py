"""HTTP actions send from the delivery process (emqpy/bridge/process.py): the broker keeps
each record in its disk buffer until the process reports its final outcome, so a delivery
process that dies loses nothing; a new one sends what was out."""
from __future__ import annotations

import os
import signal

from support.waiting import wait_until

from .test_http_action import make, metrics, send


def test_requests_run_in_another_process(api, sink):
    aid = make(api, sink.url(), parameters={"body": "${payload}"})
    results = send(api, aid, [({"payload": "x"}, {})])
    wait_until(lambda: results == [True], what="the outcome")
    proc = api.broker.bridges.delivery.proc
    assert proc is not None and proc.poll() is None and proc.pid != os.getpid()


def test_a_killed_delivery_process_loses_nothing(api, sink):
    aid = make(api, sink.url(), parameters={"body": "${payload}"},
               resource_opts={"health_check_interval": "100ms", "inflight_window": 1,
                              "worker_pool_size": 1})
    sink.answer(503)  # retried: the first message stays out in the process, the rest queued
    results = send(api, aid, [({"payload": str(i)}, {"clientid": "c1"}) for i in range(20)])
    wait_until(lambda: metrics(api, aid)["retried"] >= 2, what="retries")
    dead = api.broker.bridges.delivery.proc
    os.kill(dead.pid, signal.SIGKILL)
    wait_until(lambda: dead.poll() is not None, what="the process gone")
    sink.answer(200)
    wait_until(lambda: len(results) == 20, timeout=20, what="all 20 delivered")
    assert all(results)
    assert [r["body"] for r in sink.requests() if r["body"]][-20:] == [str(i) for i in range(20)]
    new = api.broker.bridges.delivery.proc
    assert new is not None and new.pid != dead.pid and new.poll() is None
    m = metrics(api, aid)
    assert m["success"] + m["retried.success"] == 20 and m["queuing"] == m["inflight"] == 0
