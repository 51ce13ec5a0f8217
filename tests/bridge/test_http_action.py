"""The HTTP action end to end: what `broker.bridges.send` (the rule engine's call) makes the
target receive, EMQX's retry rules, outages, request_ttl, a full buffer, order, TLS. The target
is a real aiohttp server in its own process; outages are made by stopping it."""
from __future__ import annotations

import json

import pytest

from support.mqttclient import uid
from support.servers import HttpSink
from support.waiting import wait_until


class Results(list):
    """The outcomes `on_result` reports, filled in the broker's loop."""


def make(api, url: str, *, connector: dict | None = None, **action) -> str:
    cname, aname = uid("c"), uid("a")
    api.ok("POST", "/connectors", 201, json={"type": "http", "name": cname, "url": url,
                                             **(connector or {})})
    params = action.pop("parameters", {})
    api.ok("POST", "/actions", 201, json={"type": "http", "name": aname, "connector": cname,
                                          "parameters": params, **action})
    return f"http:{aname}"


def send(api, aid: str, messages: list[tuple[dict, dict]]) -> Results:
    results = Results()
    api.call(lambda: [api.broker.bridges.send(aid, sel, env, results.append)
                      for sel, env in messages])
    return results


def metrics(api, aid: str) -> dict:
    return api.get(f"/actions/{aid}/metrics")["metrics"]


def test_templates_and_default_body(api, sink):
    aid = make(api, sink.url("/api"), connector={"headers": {"x-node": "n1"}},
               parameters={"path": "/${topic}?c=${clientid}",
                           "headers": {"x-qos": "${qos}", "content-type": "text/plain"},
                           "body": "t=${topic} x=${payload.x} y=${payload.y.z} m=${missing}"})
    selected = {"topic": "a/b", "qos": 1, "payload": json.dumps({"x": 1, "y": {"z": [1, 2]}})}
    results = send(api, aid, [(selected, {"clientid": "dev-1", "topic": "ignored"})])
    wait_until(lambda: results == [True], what="the outcome")
    (req,) = sink.requests()
    assert req["method"] == "POST" and req["path"] == "/api/a/b" and req["query"] == "c=dev-1"
    assert req["headers"]["x-node"] == "n1" and req["headers"]["x-qos"] == "1"
    assert req["headers"]["content-type"] == "text/plain"
    assert req["body"] == "t=a/b x=1 y=[1,2] m=undefined"
    # no body template: the rule's whole output as JSON
    sink.clear()
    aid2 = make(api, sink.url(), parameters={"method": "put"})
    out = {"id": "m1", "payload": "hello", "n": 1.5, "flag": True, "none": None,
           "nested": {"k": [1, "two"]}}
    results = send(api, aid2, [(out, {"clientid": "c"})])
    wait_until(lambda: results == [True])
    (req,) = sink.requests()
    assert req["method"] == "PUT" and json.loads(req["body"]) == out
    m = metrics(api, aid2)
    assert (m["matched"], m["success"], m["failed"], m["queuing"], m["inflight"]) == \
        (1, 1, 0, 0, 0)


def test_get_has_no_body(api, sink):
    aid = make(api, sink.url(), parameters={"method": "get", "path": "/q?v=${payload}"})
    results = send(api, aid, [({"payload": "p1"}, {})])
    wait_until(lambda: results == [True])
    (req,) = sink.requests()
    assert req["method"] == "GET" and req["query"] == "v=p1" and req["body"] == ""
    assert "content-type" not in req["headers"]


def test_final_failures_are_not_retried(api, sink):
    aid = make(api, sink.url())
    sink.answer(400)
    results = send(api, aid, [({"payload": str(i)}, {}) for i in range(3)])
    wait_until(lambda: len(results) == 3)
    assert results == [False] * 3
    m = metrics(api, aid)
    assert (m["matched"], m["failed"], m["success"], m["retried"]) == (3, 3, 0, 0)
    assert sink.count() == 3  # each tried once


def test_retriable_statuses_are_retried_until_they_pass(api, sink):
    # 503 is retried: max_retries times at once, then by the buffer every resume_interval
    aid = make(api, sink.url(), parameters={"max_retries": 1},
               resource_opts={"health_check_interval": "200ms", "inflight_window": 1})
    sink.answer(503)
    results = send(api, aid, [({"payload": "a"}, {}), ({"payload": "b"}, {})])
    wait_until(lambda: metrics(api, aid)["retried"] >= 2, what="retries")
    assert results == []
    sink.answer(429)
    wait_until(lambda: metrics(api, aid)["retried"] >= 4, what="more retries")
    sink.answer(200)
    wait_until(lambda: results == [True, True], what="delivery")
    m = metrics(api, aid)
    assert m["retried.success"] >= 1 and m["success"] + m["retried.success"] == 2
    assert m["failed"] == 0 and m["queuing"] == 0


def test_outage_loses_nothing_and_keeps_order(api, sink):
    aid = make(api, sink.url(), parameters={"body": "${payload}"},
               resource_opts={"health_check_interval": "100ms", "inflight_window": 1,
                              "worker_pool_size": 1})
    sink.stop()
    results = send(api, aid, [({"payload": str(i)}, {"clientid": "c1"}) for i in range(50)])
    wait_until(lambda: metrics(api, aid)["retried"] >= 1, what="a retry")
    m = metrics(api, aid)
    assert m["queuing"] + m["inflight"] == 50 and results == []
    sink.start()
    wait_until(lambda: len(results) == 50, what="all 50 delivered")
    assert all(results)
    assert [r["body"] for r in sink.requests()] == [str(i) for i in range(50)]


def test_request_ttl_expiry_is_counted(api, sink):
    aid = make(api, sink.url(), resource_opts={"request_ttl": "300ms",
                                               "health_check_interval": "100ms"})
    sink.stop()
    results = send(api, aid, [({"payload": str(i)}, {"clientid": f"c{i}"}) for i in range(5)])
    wait_until(lambda: len(results) == 5, what="the messages to expire")
    assert results == [False] * 5
    m = metrics(api, aid)
    assert m["dropped.expired"] == 5 and m["dropped"] == 5 and m["success"] == 0
    sink.start()
    assert metrics(api, aid)["queuing"] == 0


def test_full_buffer_drops_the_oldest(api, sink):
    aid = make(api, sink.url(), parameters={"body": "${payload}"},
               resource_opts={"max_buffer_bytes": "2KB", "worker_pool_size": 1,
                              "inflight_window": 1, "health_check_interval": "100ms"})
    sink.stop()
    payload = "x" * 100
    results = send(api, aid, [({"payload": f"{i:03d}{payload}"}, {}) for i in range(100)])
    m = metrics(api, aid)
    assert m["dropped.queue_full"] > 0 and m["dropped"] == m["dropped.queue_full"]
    dropped = m["dropped.queue_full"]
    assert results.count(False) == dropped
    sink.start()
    wait_until(lambda: len(results) == 100, what="the rest delivered")
    bodies = [r["body"][:3] for r in sink.requests()]
    # the newest survive, in order (the first one was in flight when the buffer filled)
    assert bodies[-1] == "099" and bodies == sorted(bodies)
    assert len(bodies) == 100 - dropped


def test_unknown_action_raises_lookup_error(api):
    with pytest.raises(LookupError):
        api.call(lambda: api.broker.bridges.send("http:nope", {}, {}))
    assert api.call(lambda: api.broker.bridges.action_exists("http:nope")) is False


def test_https_with_ca_and_client_certificate(api, pki):
    target = HttpSink(tls={"certfile": pki.server_cert, "keyfile": pki.server_key,
                           "cafile": pki.ca},
                      control_cert=(pki.client_cert, pki.client_key))
    try:
        ssl = {"enable": True, "verify": "verify_peer", "cacertfile": str(pki.ca),
               "certfile": str(pki.client_cert), "keyfile": pki.client_key.read_text()}
        aid = make(api, target.url(), connector={"ssl": ssl})
        assert api.get(f"/actions/{aid}")["status"] == "connected"
        results = send(api, aid, [({"payload": "secure"}, {})])
        wait_until(lambda: results == [True], what="the TLS request")
        assert json.loads(target.requests()[0]["body"]) == {"payload": "secure"}
        # without the client certificate the server refuses the handshake
        no_cert = {"enable": True, "verify": "verify_peer", "cacertfile": str(pki.ca)}
        aid2 = make(api, target.url(), connector={"ssl": no_cert},
                    resource_opts={"request_ttl": "1s"})
        results = send(api, aid2, [({"payload": "x"}, {})])
        wait_until(lambda: results == [False], what="the refused request to expire")
        # a CA that did not sign the server's certificate: verify_peer refuses it
        r = api.api.post("/connectors_probe", json={
            "type": "http", "name": "p", "url": target.url(),
            "ssl": {"enable": True, "verify": "verify_peer", "cacertfile": str(pki.client_cert)}})
        assert r.status_code == 400 and r.json()["code"] == "TEST_FAILED"
        # the name checked (and sent as SNI) is server_name_indication when set
        probe = {"type": "http", "name": "p", "url": target.url(),
                 "ssl": {**ssl, "server_name_indication": "localhost"}}
        assert api.api.post("/connectors_probe", json=probe).status_code == 204
        probe["ssl"]["server_name_indication"] = "wrong.example"
        r = api.api.post("/connectors_probe", json=probe)
        assert r.status_code == 400 and r.json()["code"] == "TEST_FAILED"
    finally:
        target.stop()


def test_config_and_buffer_survive_a_restart(make_broker, sink, tmp_path):
    node = make_broker(data_dir=str(tmp_path))
    aid = make(node, sink.url(), parameters={"body": "${payload}"},
               resource_opts={"health_check_interval": "100ms", "worker_pool_size": 2})
    sink.stop()
    send(node, aid, [({"payload": str(i)}, {"clientid": f"c{i % 4}"}) for i in range(20)])
    node.restart()
    assert node.get(f"/actions/{aid}")["resource_opts"]["worker_pool_size"] == 2
    m = node.get(f"/actions/{aid}/metrics")["metrics"]
    assert m["queuing"] + m["inflight"] == 20  # handed out again at once, and retrying
    sink.start()
    wait_until(lambda: len(sink.requests()) >= 20, what="the buffered messages")
    assert sorted(int(r["body"]) for r in sink.requests()) == list(range(20))


def test_an_update_keeps_what_is_buffered(api, sink):
    """PUT restarts the action: messages waiting (in lanes a smaller pool no longer has,
    too) are sent with the new config."""
    aid = make(api, sink.url(), parameters={"body": "${payload}"},
               resource_opts={"worker_pool_size": 4, "health_check_interval": "100ms"})
    sink.stop()
    results = send(api, aid, [({"payload": str(i)}, {"clientid": f"c{i % 8}"})
                              for i in range(20)])
    wait_until(lambda: metrics(api, aid)["retried"] >= 1, what="a retry")
    cname = api.get(f"/actions/{aid}")["connector"]
    api.ok("PUT", f"/actions/{aid}", json={
        "connector": cname, "parameters": {"body": "v2-${payload}"},
        "resource_opts": {"worker_pool_size": 1, "health_check_interval": "100ms"}})
    assert results == []  # not final yet: the callers hear when they are
    sink.start()
    wait_until(lambda: len({r["body"] for r in sink.requests()}) == 20, what="all 20")
    assert {r["body"] for r in sink.requests()} == {f"v2-{i}" for i in range(20)}
    wait_until(lambda: len(results) == 20)
    assert all(results)
