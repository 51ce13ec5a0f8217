"""GET /monitor, /monitor/nodes/{node}, /monitor_current(/nodes/{node}): samples taken every
dashboard.sample_interval (1 s here), stored in SQLite, surviving a restart."""
from __future__ import annotations

import threading
import time

from emqpy.monitor import storage
from support.mqttclient import uid
from support.waiting import wait_until

SAMPLE_KEYS = set(storage.SAMPLER_KEYS)


def _received_sample(node, path="/monitor", latest=120, at_least=1):
    """A stored sample that counted at least ``at_least`` received messages."""
    def find():
        for s in node.get(path, params={"latest": latest}):
            if s.get("received", 0) >= at_least:
                return s
        return None
    return wait_until(find)


def test_samples_count_traffic(node):
    sub = node.mqtt(uid("msub"), version=4)
    topic = uid("mon/t")
    sub.subscribe(topic, 1)
    pub = node.mqtt(uid("mpub"), version=4)
    for _ in range(5):
        pub.publish(topic, b"x", qos=1)
    total = wait_until(lambda: sum(s.get("received", 0) for s in node.get(
        "/monitor", params={"latest": 120})) >= 5 and node.get(
        "/monitor", params={"latest": 120}))
    samples = [s for s in total if len(s) > 1]
    assert samples, total
    stamps = [s["time_stamp"] for s in total]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert all(s["time_stamp"] % 1000 == 0 for s in total)
    for s in samples:  # gap fillers hold only time_stamp
        assert SAMPLE_KEYS <= set(s) and "subscriptions_ram" in s
    # the newest sample sees the two connected clients and the subscription
    latest = wait_until(lambda: (lambda s: s if s["live_connections"] >= 2 else None)(
        [s for s in node.get("/monitor", params={"latest": 120}) if len(s) > 1][-1]))
    assert latest["connections"] >= 2 and latest["subscriptions"] >= 1
    assert sum(s.get("sent", 0) for s in node.get("/monitor", params={"latest": 120})) >= 5


def test_node_variant_and_all(node):
    per_node = node.get(f"/monitor/nodes/{node.name}", params={"latest": 60})
    real = [s for s in per_node if len(s) > 1]
    assert real and "subscriptions_ram" not in real[-1] and SAMPLE_KEYS <= set(real[-1])
    everything = node.get("/monitor/nodes/all", params={"latest": 60})
    assert [s for s in everything if len(s) > 1][-1].keys() >= {"subscriptions_ram"}
    # without latest: everything stored, in wide buckets
    assert node.get("/monitor")


def test_current_rates_follow_traffic(node):
    sub = node.mqtt(uid("rsub"), version=4)
    topic = uid("mon/rate")
    sub.subscribe(topic, 0)
    pub = node.mqtt(uid("rpub"), version=4)
    stop = threading.Event()

    def publish_loop():
        while not stop.is_set():
            pub.publish(topic, b"r", qos=0)
            stop.wait(0.02)
    t = threading.Thread(target=publish_loop, daemon=True)
    t.start()
    try:
        cur = wait_until(lambda: (lambda c: c if c["received_msg_rate"] > 0 and
                                  c["sent_msg_rate"] > 0 else None)(
            node.get("/monitor_current")))
    finally:
        stop.set()
        t.join(5)
    assert cur["live_connections"] >= 2 and cur["connections"] >= 2
    assert cur["subscriptions"] >= 1 and cur["topics"] >= 1
    assert {"retained_msg_count", "shared_subscriptions", "subscriptions_ram",
            "dropped_msg_rate", "persisted_rate"} <= set(cur)
    assert "node_uptime" not in cur

    mine = node.get(f"/monitor_current/nodes/{node.name}")
    assert mine["node_uptime"] > 0 and "subscriptions_durable" not in mine
    assert mine["live_connections"] >= 2


def test_unknown_node_and_bad_latest(node):
    for path in ("/monitor/nodes/nobody@nowhere", "/monitor_current/nodes/nobody@nowhere"):
        body = node.get(path, status=404)
        assert body == {"code": "NOT_FOUND", "message": "Node not found: nobody@nowhere",
                        "reason": "Node not found: nobody@nowhere"}
    assert isinstance(node.get("/monitor", params={"latest": 10 ** 15}), list)
    for bad in ("0", "-5", "soon"):
        r = node.api.get("/monitor", params={"latest": bad})
        assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"


def test_samples_survive_restart(make_broker, tmp_path):
    n = make_broker({"dashboard": {"sample_interval": "1s"}}, data_dir=tmp_path)
    pub = n.mqtt(uid("keep"), version=4)
    for _ in range(3):
        pub.publish(uid("mon/keep"), b"k", qos=1)
    # latest <= 60 s: one-second buckets, i.e. the samples as stored
    before = _received_sample(n, latest=60, at_least=3)
    assert n.broker.store.version(storage.COMPONENT) == 1
    n.restart()
    after = n.get("/monitor", params={"latest": 60})
    match = [s for s in after if s["time_stamp"] == before["time_stamp"]]
    assert match and match[0]["received"] == before["received"], (before, after)
    # and sampling goes on after the restart
    wait_until(lambda: max(s["time_stamp"] for s in n.get("/monitor", params={"latest": 3600})
                           if len(s) > 1) > before["time_stamp"])


def test_compaction_buckets():
    now = 10 * storage.DAY
    samples = [(now - 2 * storage.HOUR + i * 10 * storage.SECOND,
                {"received": 1, "connections": i}) for i in range(12)]
    compacted = storage.compact(now, samples)
    # two hours old: one-minute buckets; deltas add up, gauges keep the newest value
    assert [ts % storage.MINUTE for ts, _ in compacted] == [0] * len(compacted)
    assert sum(d["received"] for _, d in compacted) == 12
    assert compacted[-1][1]["connections"] == 11


def test_latest_longer_than_retention_is_cut_to_it(node):
    """`latest` past the 7 days samples are kept answers what 7 days do, not an empty entry
    per 10-minute bucket back to then (50,000,000 s built 83,000 of them in the event loop)."""
    week_s = storage.RETENTION // 1000
    wait_until(lambda: [s for s in node.get("/monitor", params={"latest": 60}) if len(s) > 1])
    # a sample from two hours ago, as a broker running that long has stored
    now = int(time.time() * 1000)
    old = now - now % storage.HOUR - 2 * storage.HOUR
    storage.store_sample(node.broker.store, old, {k: 1 for k in storage.SAMPLER_KEYS})
    for path in ("/monitor", f"/monitor/nodes/{node.name}"):
        for latest in (50_000_000, 10 ** 20):
            got = node.get(path, params={"latest": latest})
            week = node.get(path, params={"latest": week_s})
            # one entry per 10-minute bucket at most
            assert 2 <= len(got) <= week_s // 600 + 2, len(got)
            assert got[0]["time_stamp"] >= now - storage.RETENTION - 600_000
            stored = [s for s in got if len(s) > 1]
            assert stored[0] == [s for s in week if len(s) > 1][0]
            assert stored[0]["time_stamp"] == old and stored[0]["received"] == 1
