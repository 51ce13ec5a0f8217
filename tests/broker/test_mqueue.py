"""Message queues ordered by topic priority (mqtt.mqueue_priorities): the queue on its own
(EMQX's emqx_mqueue_SUITE cases) and a persistent session's queue seen by a real client,
before and after a restart."""
from __future__ import annotations

import base64

from emqpy.broker.mqueue import HIGHEST, PriorityMqueue
from emqpy.durable import records
from support.mqttclient import props, uid
from support.waiting import wait_until


def _filled(q: PriorityMqueue, topics, n: int) -> PriorityMqueue:
    ts = 0
    for topic in topics:
        for i in range(1, n + 1):
            ts += 1
            q.push((f"{topic}:{i}", 1, False, None, None, ts), topic)
    return q


def _drain(q: PriorityMqueue) -> list:
    out = []
    while q:
        out.append(q.popleft()[0])
    return out


def test_each_priority_takes_turns_of_its_share():
    # EMQX's t_priority_order: shares (prio + 1) x multiplier; each priority keeps its own
    # max_len newest; a queue that runs dry hands the rest of its turn to the next one
    q = _filled(PriorityMqueue({"t1": 0, "t2": 1, "t3": 2}, False, 5, multiplier=1),
                ["t1", "t2", "t3"], 10)
    assert len(q) == 15
    assert _drain(q) == ["t3:6", "t3:7", "t3:8", "t2:6", "t2:7", "t1:6", "t3:9", "t3:10",
                         "t2:8", "t1:7", "t2:9", "t2:10", "t1:8", "t1:9", "t1:10"]


def test_turns_with_a_larger_multiplier():
    # EMQX's t_priority_order2
    q = _filled(PriorityMqueue({"t1": 0, "t2": 1}, False, 5, multiplier=2), ["t1", "t2"], 10)
    assert _drain(q) == ["t2:6", "t2:7", "t2:8", "t2:9", "t1:6", "t1:7", "t2:10", "t1:8",
                         "t1:9", "t1:10"]


def test_full_priority_drops_its_own_oldest():
    # EMQX's t_priority_mqueue: max_len bounds each priority's queue
    q = PriorityMqueue({"t1": 1, "t2": 2, "t3": 3}, False, 3)
    for i, topic in enumerate(["t2", "t1", "t3", "t2", "t2"]):
        assert q.push((f"{topic}:{i}", 1, False, None, None, i), topic) is None
    assert len(q) == 5
    dropped = q.push(("t2:5", 1, False, None, None, 5), "t2")
    assert dropped[0] == "t2:0" and len(q) == 5
    q.popleft()
    assert len(q) == 4


def test_unlisted_topics_take_the_default_priority():
    lowest = _filled(PriorityMqueue({"a": 1}, False, 0), ["x", "a"], 2)
    assert _drain(lowest) == ["a:1", "a:2", "x:1", "x:2"]
    highest = _filled(PriorityMqueue({"a": 1}, True, 0), ["a", "x"], 2)
    assert _drain(highest) == ["x:1", "x:2", "a:1", "a:2"]


def test_iteration_is_in_insertion_order():
    q = _filled(PriorityMqueue({"a": 5}, False, 0), ["x", "a"], 3)
    assert [e[0] for e in q] == ["x:1", "x:2", "x:3", "a:1", "a:2", "a:3"]


def test_journal_removes_the_named_entry(tmp_path):
    path = tmp_path / "journal.00000001"
    ops = [("s", "c", None)]
    for ts in (1, 2, 3):
        ops += [("m", ts, ("t", b"%d" % ts)), ("q", "c", ts, 1, False, None, None, ts)]
    ops += [("d", "c", 2), ("p", "c")]
    records.write_file(path, [records.encode(ops)])
    sessions, _good, torn = records.replay(path)
    assert not torn
    assert [e[5] for e in sessions["c"].queue] == [3]


# -- a persistent session's queue, through real clients ------------------------------------

# "r/a" gets 20 messages a turn, unlisted topics (lowest: 0) get 10
PRIORITIES = {"mqtt": {"mqueue_priorities": {"r/a": 1}, "mqueue_default_priority": "lowest"}}
EXPECTED = ([f"a{i}" for i in range(1, 21)] + [f"d{i}" for i in range(1, 11)]
            + [f"a{i}" for i in range(21, 31)] + [f"d{i}" for i in range(11, 31)])


def _queue_alternating(node, cid, n=30):
    pub = node.mqtt()
    for i in range(1, n + 1):
        pub.publish("r/a", b"a%d" % i, qos=1)
        pub.publish("r/d", b"d%d" % i, qos=1)
    wait_until(lambda: node.ok("GET", f"/clients/{cid}")["mqueue_len"] == 2 * n)


def _resume(node, cid):
    return node.mqtt(cid, clean=False, properties=props("CONNECT", SessionExpiryInterval=300))


def test_offline_session_delivers_by_priority(make_broker):
    node = make_broker(PRIORITIES)
    cid = node.offline_session("prio", "r/#")
    _queue_alternating(node, cid)
    # listed as EMQX lists them: the highest priority first, each oldest first, in pages
    listed, position = [], None
    while True:
        params = {"limit": 7} if position is None else {"limit": 7, "position": position}
        page = node.ok("GET", f"/clients/{cid}/mqueue_messages", params=params)
        if not page["data"]:
            break
        listed += [(r["mqueue_priority"], r["payload"]) for r in page["data"]]
        position = page["meta"]["position"]
        assert page["meta"]["start"].endswith("_1")
    assert listed == [(1, base64.b64encode(b"a%d" % i).decode()) for i in range(1, 31)] + \
        [(0, base64.b64encode(b"d%d" % i).decode()) for i in range(1, 31)]
    sub = _resume(node, cid)
    assert sub.session_present
    assert [m.payload.decode() for m in sub.get_many(60)] == EXPECTED


def test_restored_queue_keeps_the_priority_order(make_broker):
    node = make_broker(PRIORITIES)
    cid = node.offline_session("prio", "r/#")
    _queue_alternating(node, cid)
    node.restart()
    sub = _resume(node, cid)
    assert [m.payload.decode() for m in sub.get_many(60)] == EXPECTED


def test_restored_queue_after_a_drop_and_a_partial_delivery(make_broker):
    # the journal names what left a priority's queue (a drop when full, a delivery), not "the
    # oldest": after a restart exactly what was left comes back, in the order it would have
    node = make_broker({"mqtt": {"mqueue_priorities": {"r/a": 1}, "max_mqueue_len": 25}})
    cid = node.offline_session("prio", "r/#")
    _queue_alternating(node, cid, n=25)  # 25 + 25: both priorities full
    node.mqtt().publish("r/a", b"a26", qos=1)  # drops a1, the oldest of its own priority
    wait_until(lambda: node.ok("GET", f"/clients/{cid}")["mqueue_dropped"] == 1)
    expected = ([f"a{i}" for i in range(2, 22)] + [f"d{i}" for i in range(1, 11)]
                + [f"a{i}" for i in range(22, 27)] + [f"d{i}" for i in range(11, 26)])
    sub = node.mqtt(cid, clean=False, manual_ack=True,
                    properties=props("CONNECT", SessionExpiryInterval=300))
    first = sub.get_many(32)  # the inflight window (max_inflight 32), never acknowledged
    assert [m.payload.decode() for m in first] == expected[:32]
    sub.drop()
    wait_until(lambda: not node.ok("GET", f"/clients/{cid}")["connected"])
    node.restart()
    again = _resume(node, cid)  # the 32 again (DUP), then the 18 still queued
    assert [m.payload.decode() for m in again.get_many(50)] == expected
    again.expect_none()


def test_fifo_when_priorities_are_disabled(make_broker):
    node = make_broker()
    cid = node.offline_session(uid("fifo"), "r/#")
    _queue_alternating(node, cid, n=10)
    sub = _resume(node, cid)
    got = [m.payload.decode() for m in sub.get_many(20)]
    assert got == [p for i in range(1, 11) for p in (f"a{i}", f"d{i}")]


def test_listing_order_and_positions():
    # EMQX's query: the highest priority (infinity) first, then by priority, each oldest first
    q = _filled(PriorityMqueue({"a": 1, "b": 2}, True, 0), ["a", "x", "b"], 2)
    listed = [(e[0], p) for e, p in q.listed()]
    assert listed == [("x:1", HIGHEST), ("x:2", HIGHEST), ("b:1", 2), ("b:2", 2),
                      ("a:1", 1), ("a:2", 1)]
    after_b1 = [e[0] for e, _p in q.listed((5, 2))]  # b:1 was inserted 5th
    assert after_b1 == ["b:2", "a:1", "a:2"]
    assert [e[0] for e, _p in q.listed((6, 2))] == ["a:1", "a:2"]
