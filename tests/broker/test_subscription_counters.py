"""The broker's subscription counters (read by GET /stats, $SYS and Prometheus) stay equal to
the subscriptions the sessions hold, through every way a subscription comes or goes."""
from __future__ import annotations

import httpx
import pytest

from support.mqttclient import client
from support.mqttclient import uid
from support.waiting import wait_until

pytestmark = pytest.mark.emqpy_only


def held(broker) -> tuple[int, int]:
    """(subscriptions, shared ones) as the sessions hold them, counted the slow way."""
    def count():
        subs = [s for sess in broker.broker.sessions.values() for s in sess.subscriptions.values()]
        return len(subs), sum(1 for s in subs if s.group is not None)
    return broker.call(count)


def check(broker, expected: tuple[int, int]) -> None:
    """The counters, the API's figures and the sessions agree on `expected` (once the
    broker has caught up with the clients)."""
    wait_until(lambda: held(broker) == expected)
    assert held(broker) == expected
    b = broker.broker
    assert broker.call(lambda: (b.subscription_total, b.shared_subscription_total)) == expected
    r = httpx.get(f"http://127.0.0.1:{broker.http_port}/api/v5/stats",
                  params={"aggregate": "true"}, auth=("admin", "public"), timeout=10)
    stats = r.json()
    assert (stats["subscriptions.count"], stats["subscriptions.shared.count"]) == expected
    assert stats["suboptions.count"] == stats["subscribers.count"] == expected[0]


def test_counters_follow_every_change(broker):
    check(broker, (0, 0))
    a = client(broker)
    for flt in ("c/1", "c/2/+", "$share/g/c/3"):
        a.subscribe(flt, 1)
    check(broker, (3, 1))
    a.subscribe("c/1", 0)  # resubscribing replaces, it does not add
    a.subscribe("$share/g/c/3", 0)
    check(broker, (3, 1))
    a.unsubscribe("c/2/+")
    a.unsubscribe("not/subscribed")
    check(broker, (2, 1))

    cid = uid("persistent")
    b = client(broker, cid, clean=False)
    b.subscribe("p/1", 1)
    b.subscribe("$share/h/p/2", 1)
    check(broker, (4, 2))
    b.disconnect()  # the session stays, with its subscriptions
    check(broker, (4, 2))
    b = client(broker, cid, clean=False)  # resumed
    check(broker, (4, 2))
    b.c.loop_stop()  # (paho would reconnect and take the session back)
    b2 = client(broker, cid, clean=False)  # takes the session over from the live connection
    check(broker, (4, 2))
    b2.disconnect()
    b3 = client(broker, cid, clean=True)  # discards it
    check(broker, (2, 1))
    b3.subscribe("p/3", 0)
    check(broker, (3, 1))
    b3.disconnect()  # clean session: ends with its connection
    check(broker, (2, 1))

    e = client(broker, v5=True, clean=True, expiry=1)
    e.subscribe("e/1", 1)
    e.subscribe("$share/g/e/2", 1)
    check(broker, (4, 2))
    e.disconnect()
    assert wait_until(lambda: held(broker) == (2, 1), timeout=5)
    check(broker, (2, 1))  # expired

    a.unsubscribe("$share/g/c/3")
    check(broker, (1, 0))
    a.disconnect()
    check(broker, (0, 0))
    s = httpx.get(f"http://127.0.0.1:{broker.http_port}/api/v5/stats", params={"aggregate": "true"},
                  auth=("admin", "public"), timeout=10).json()
    assert s["subscriptions.max"] == 4 and s["subscriptions.shared.max"] == 2
