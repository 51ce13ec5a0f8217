"""/clients/{clientid}/mqueue_messages and /inflight_messages: EMQX's inserted_at (ns) on every
item and its paging tokens (emqx_mgmt_api_clients / emqx_mqueue:query / inflight_query, 5.8.1),
checked while real MQTT clients change the collections between pages."""
from __future__ import annotations

from support.mqttclient import props, uid
from support.waiting import wait_until


def _publish(env, topic, payloads):
    for p in payloads:
        env.ok("POST", "/publish", json={"topic": topic, "payload": p, "qos": 1})


def test_inflight_page_token_outlives_its_message(env):
    cid = uid("inf")
    c = env.mqtt(cid, manual_ack=True)
    c.subscribe("pg/#", 1)
    _publish(env, "pg/1", ["a", "b", "c", "d"])
    got = c.get_many(4)
    path = f"/clients/{cid}/inflight_messages"
    first = env.ok("GET", path, params={"limit": 2, "payload": "plain"})
    assert [m["payload"] for m in first["data"]] == ["a", "b"]
    token = first["meta"]["position"]
    assert token == first["data"][1]["inserted_at"]
    c.ack(got[1])  # the token's own message leaves the window before the next page
    wait_until(lambda: env.ok("GET", f"/clients/{cid}")["inflight_cnt"] == 3, what="ack")
    rest = env.ok("GET", path, params={"position": token, "payload": "plain"})
    assert [m["payload"] for m in rest["data"]] == ["c", "d"]
    assert rest["meta"]["start"] == first["meta"]["start"]


def test_queue_to_window_gets_a_new_insertion_time(env):
    # As EMQX: inserted_at is when the message entered the collection it is listed in.
    cid = uid("mv")
    c = env.mqtt(cid, manual_ack=True, properties=props("CONNECT", ReceiveMaximum=1))
    c.subscribe("mv/#", 1)
    _publish(env, "mv/1", ["one", "two"])
    first = c.get()
    queued = env.ok("GET", f"/clients/{cid}/mqueue_messages", params={"payload": "plain"})
    assert [m["payload"] for m in queued["data"]] == ["two"]
    queued_at = int(queued["data"][0]["inserted_at"])
    inflight = env.ok("GET", f"/clients/{cid}/inflight_messages")["data"]
    assert int(inflight[0]["inserted_at"]) < queued_at
    c.ack(first)
    c.get()
    moved = env.ok("GET", f"/clients/{cid}/inflight_messages", params={"payload": "plain"})
    assert [m["payload"] for m in moved["data"]] == ["two"]
    assert int(moved["data"][0]["inserted_at"]) > queued_at
    assert env.ok("GET", f"/clients/{cid}/mqueue_messages") == {
        "data": [], "meta": {"start": "none", "position": "none"}}


def test_queue_token_priorities(env):
    cid = env.offline_session("prio", "pr/#")
    _publish(env, "pr/1", ["x", "y", "z"])
    path = f"/clients/{cid}/mqueue_messages"
    rows = env.ok("GET", path, params={"payload": "plain"})["data"]
    assert [m["mqueue_priority"] for m in rows] == [0, 0, 0]
    ts = rows[0]["inserted_at"]
    # every message has priority 0: a token of any priority >= 0 continues in the one queue...
    for prio in ("0", "7", "infinity"):
        r = env.ok("GET", path, params={"position": f"{ts}_{prio}", "payload": "plain"})
        assert [m["payload"] for m in r["data"]] == ["y", "z"]
        assert r["meta"]["position"] == rows[2]["inserted_at"] + "_0"
    # ...and one below 0 says the priority-0 queue was already read to the end
    r = env.ok("GET", path, params={"position": f"{ts}_-1"})
    assert r == {"data": [], "meta": {"start": f"{ts}_0", "position": f"{ts}_-1"}}
