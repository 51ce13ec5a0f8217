"""Dead letters (emqpy extension): what an action gives up on is kept, listed, sent again or
dropped through `/actions/{id}/dead_letters`. The target is a real HTTP server (in its own
process) that answers 400, then 200."""
from __future__ import annotations

import asyncio
import json

from emqpy.bridge.dead_letters import DeadLetters
from emqpy.bridge.delivery import encode
from emqpy.store import Store
from support.waiting import wait_until

from .test_http_action import make, metrics, send


def letters(api, aid: str, **params) -> dict:
    return api.get(f"/actions/{aid}/dead_letters", params=params)


def test_final_failures_are_kept_retried_and_dropped(api, sink):
    # window 1: the three fail (and are listed) in order
    aid = make(api, sink.url("/in"), parameters={"body": "${payload}"},
               resource_opts={"inflight_window": 1})
    sink.answer(400)
    results = send(api, aid, [({"payload": f"m{i}", "topic": "t/1"}, {"clientid": "c1"})
                              for i in range(3)])
    wait_until(lambda: len(results) == 3, what="three final failures")
    assert results == [False, False, False]
    page = wait_until(lambda: (p := letters(api, aid))["meta"]["count"] == 3 and p,
                      what="three dead letters")
    assert page["meta"] == {"page": 1, "limit": 100, "count": 3, "hasnext": False,
                            "dropped": 0}
    first = page["data"][0]
    assert first["kind"] == "failed" and first["reason"] == "status_code 400"
    assert first["message"] == {"payload": "m0", "topic": "t/1"}
    assert first["failed_at"].endswith("Z") or "+" in first["failed_at"]
    assert [d["message"]["payload"] for d in page["data"]] == ["m0", "m1", "m2"]
    ids = [d["id"] for d in page["data"]]
    m = metrics(api, aid)
    assert m["failed"] == 3 and m["queuing"] == 0 and m["inflight"] == 0
    # paged as EMQX's lists
    p2 = letters(api, aid, page=2, limit=2)
    assert [d["id"] for d in p2["data"]] == ids[2:] and p2["meta"]["hasnext"] is False
    assert letters(api, aid, page=1, limit=2)["meta"]["hasnext"] is True
    # the target is fixed: one sent again by id, then the rest
    sink.answer(200)
    sink.clear()
    assert api.ok("POST", f"/actions/{aid}/dead_letters/retry",
                  json={"ids": [ids[1], 999999]}) == {"retried": 1, "not_found": [999999]}
    wait_until(lambda: [r["body"] for r in sink.requests()] == ["m1"], what="m1 sent again")
    assert [d["id"] for d in letters(api, aid)["data"]] == [ids[0], ids[2]]
    assert api.ok("POST", f"/actions/{aid}/dead_letters/retry") == \
        {"retried": 2, "not_found": []}
    wait_until(lambda: sorted(r["body"] for r in sink.requests()) == ["m0", "m1", "m2"],
               what="all sent again")
    assert letters(api, aid)["meta"]["count"] == 0
    wait_until(lambda: metrics(api, aid)["success"] == 3, what="success counted")
    # dropping: one by id, then all
    sink.answer(400)
    send(api, aid, [({"payload": "x"}, {}), ({"payload": "y"}, {})])
    page = wait_until(lambda: (p := letters(api, aid))["meta"]["count"] == 2 and p)
    one = page["data"][0]["id"]
    api.ok("DELETE", f"/actions/{aid}/dead_letters/{one}", 204)
    body = api.ok("DELETE", f"/actions/{aid}/dead_letters/{one}", 404)
    assert body["code"] == "NOT_FOUND"
    assert letters(api, aid)["meta"]["count"] == 1
    api.ok("DELETE", f"/actions/{aid}/dead_letters", 204)
    assert letters(api, aid)["data"] == []


def test_request_ttl_expiry_is_a_dead_letter(api, sink):
    aid = make(api, sink.url(), resource_opts={"request_ttl": "300ms",
                                               "health_check_interval": "100ms"})
    sink.stop()
    results = send(api, aid, [({"payload": "late"}, {"clientid": "c"})])
    wait_until(lambda: results == [False], what="expiry")
    page = wait_until(lambda: (p := letters(api, aid))["meta"]["count"] == 1 and p)
    (letter,) = page["data"]
    assert letter["kind"] == "expired" and letter["message"] == {"payload": "late"}
    sink.start()
    api.ok("POST", f"/actions/{aid}/dead_letters/retry", json={})
    wait_until(lambda: [r["body"] for r in sink.requests()] ==
               [json.dumps({"payload": "late"}, separators=(",", ":"))], what="sent again")


def test_errors_and_deleted_actions(api, sink):
    assert api.ok("GET", "/actions/http:nope/dead_letters", 404)["code"] == "NOT_FOUND"
    assert api.ok("POST", "/actions/http:nope/dead_letters/retry", 404)["code"] == "NOT_FOUND"
    aid = make(api, sink.url())
    assert api.ok("GET", f"/actions/{aid}/dead_letters", 400, params={"limit": 0})["code"] \
        == "BAD_REQUEST"
    assert api.ok("POST", f"/actions/{aid}/dead_letters/retry", 400,
                  json={"ids": "all"})["code"] == "BAD_REQUEST"
    assert api.ok("DELETE", f"/actions/{aid}/dead_letters/x", 400)["code"] == "BAD_REQUEST"
    sink.answer(400)
    send(api, aid, [({"payload": "gone"}, {})])
    wait_until(lambda: letters(api, aid)["meta"]["count"] == 1)
    api.ok("PUT", f"/actions/{aid}/enable/false", 204)
    body = api.ok("POST", f"/actions/{aid}/dead_letters/retry", 400)
    assert "not running" in body["message"]
    api.ok("DELETE", f"/actions/{aid}", 204)
    assert api.store.query_one("SELECT count(*) FROM bridge_dead_letters WHERE action=?",
                               (aid,))[0] == 0


def test_the_list_is_bounded_oldest_dropped_first(tmp_path):
    store = Store.open(tmp_path)
    dl = DeadLetters(store, max_per_action=3)

    async def add(n: int) -> None:
        done = asyncio.get_running_loop().create_future()
        dl.add("http:a", [("failed", "status_code 400", encode({"n": i}, {}, 0.0))
                          for i in range(n)], done.set_result)
        assert await done is True

    asyncio.run(add(5))
    rows, total, dropped = dl.page("http:a", 0, 10)
    assert (total, dropped) == (3, 2)
    assert [json.loads(bytes(r["record"])[8:])[0]["n"] for r in rows] == [2, 3, 4]
    assert dl.page("http:b", 0, 10) == ([], 0, 0)
    assert dl.delete("http:a") == 3 and dl.page("http:a", 0, 10) == ([], 0, 0)
    store.close()
