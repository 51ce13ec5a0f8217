"""GET/DELETE /clients..., subscriptions on behalf of a client, queues, kick, keepalive:
driven over HTTP against a real broker, checked against what real MQTT clients observe."""
from __future__ import annotations

import base64
import time

from support.mqttclient import props, uid
from support.waiting import wait_until


def test_list_and_lookup_clients(env):
    a = env.mqtt(uid("a"), username="alice")
    b = env.mqtt(uid("b"), version=4, username="bob")
    r = env.ok("GET", "/clients")
    assert r["meta"] == {"page": 1, "limit": 100, "count": 2, "hasnext": False}
    by_id = {c["clientid"]: c for c in r["data"]}
    assert set(by_id) == {a.client_id, b.client_id}
    ca = by_id[a.client_id]
    assert ca["connected"] is True and ca["username"] == "alice" and ca["proto_ver"] == 5
    assert ca["proto_name"] == "MQTT" and ca["ip_address"] == "127.0.0.1"
    assert ca["node"] == env.broker.node_name and ca["clean_start"] is True
    assert ca["keepalive"] == 60 and ca["listener"] == "tcp:default"
    assert ca["port"] == a.c.socket().getsockname()[1]
    assert ca["created_at"].count(":") >= 2 and "disconnected_at" not in ca
    assert by_id[b.client_id]["proto_ver"] == 4

    one = env.ok("GET", f"/clients/{a.client_id}")
    assert one["clientid"] == a.client_id and one["subscriptions_cnt"] == 0
    a.subscribe("x/#", 1)
    assert env.ok("GET", f"/clients/{a.client_id}")["subscriptions_cnt"] == 1

    r = env.api.get("/clients/nobody")
    assert r.status_code == 404 and r.json()["code"] == "CLIENTID_NOT_FOUND"


def test_client_filters(env):
    a = env.mqtt(uid("dev-a"), username="alice")
    b = env.mqtt(uid("dev-b"), version=4, username="bob")
    c = env.mqtt(uid("other"), username="carol")

    def ids(**params):
        r = env.ok("GET", "/clients", params=params)
        return {x["clientid"] for x in r["data"]}, r["meta"]

    got, meta = ids(clientid=[a.client_id, c.client_id, "missing"])
    assert got == {a.client_id, c.client_id} and meta["count"] == 2
    assert ids(username=["bob", "carol"])[0] == {b.client_id, c.client_id}
    got, meta = ids(like_clientid="dev-")
    assert got == {a.client_id, b.client_id} and "count" not in meta  # fuzzy: no count
    assert ids(like_username="aro")[0] == {c.client_id}
    assert ids(proto_ver="4")[0] == {b.client_id}
    assert ids(conn_state="connected")[0] == {a.client_id, b.client_id, c.client_id}
    assert ids(conn_state="disconnected")[0] == set()
    assert ids(clean_start="true")[0] == {a.client_id, b.client_id, c.client_id}
    assert ids(clean_start="false")[0] == set()
    assert ids(ip_address="127.0.0.1")[0] == {a.client_id, b.client_id, c.client_id}
    assert ids(ip_address="10.1.2.3")[0] == set()
    future_ms = int((time.time() + 3600) * 1000)
    assert ids(gte_created_at=future_ms)[0] == set()
    assert ids(lte_created_at=future_ms)[0] == {a.client_id, b.client_id, c.client_id}
    assert ids(gte_connected_at="2000-01-01T00:00:00Z")[0] == {a.client_id, b.client_id,
                                                                c.client_id}
    assert ids(lte_connected_at="2000-01-01T00:00:00+01:00")[0] == set()
    assert ids(node=env.broker.node_name, username=["alice"])[0] == {a.client_id}

    r = env.ok("GET", "/clients", params={"fields": "clientid,connected"})
    assert all(set(x) == {"clientid", "connected"} for x in r["data"]) and len(r["data"]) == 3
    r = env.ok("GET", "/clients", params={"fields": ["username", "proto_ver"]})
    assert sorted((x["username"], x["proto_ver"]) for x in r["data"]) == [
        ("alice", 5), ("bob", 4), ("carol", 5)]
    assert len(env.ok("GET", "/clients", params={"fields": "all"})["data"][0]) > 20

    for bad in ({"fields": "clientid,nonsense"}, {"node": "other@host"},
                {"ip_address": "not-an-ip"}, {"gte_created_at": "yesterday"},
                {"conn_state": "sleeping"}, {"limit": 0}, {"page": 0}, {"limit": 10001},
                {"proto_ver": "five"}):
        r = env.api.get("/clients", params=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["code"] in ("INVALID_PARAMETER", "BAD_REQUEST")


def test_pagination(env):
    cs = [env.mqtt(f"page-{i:02d}") for i in range(5)]
    seen = []
    for page in (1, 2, 3):
        r = env.ok("GET", "/clients", params={"limit": 2, "page": page})
        assert r["meta"]["count"] == 5
        assert r["meta"]["hasnext"] is (page < 3)
        seen += [x["clientid"] for x in r["data"]]
    assert seen == [c.client_id for c in cs]  # creation order, no duplicates
    r = env.ok("GET", "/clients", params={"limit": 2, "page": 9})
    assert r["data"] == [] and r["meta"]["count"] == 5 and r["meta"]["hasnext"] is False
    # a filtered listing pages and counts the matches only
    r = env.ok("GET", "/clients", params={"limit": 2, "page": 2, "proto_ver": "5"})
    assert [x["clientid"] for x in r["data"]] == ["page-02", "page-03"]
    assert r["meta"]["count"] == 5 and r["meta"]["hasnext"] is True
    r = env.ok("GET", "/clients", params={"limit": 2, "page": 3, "like_clientid": "page"})
    assert [x["clientid"] for x in r["data"]] == ["page-04"] and r["meta"]["hasnext"] is False


def test_offline_persistent_session_is_listed(env):
    # No API request before the disconnection: the mgmt feature remembers last connections
    # from broker start (emqpy.mgmt.setup), not from the first request.
    cid = uid("persist")
    c = env.mqtt(cid, clean=False, username="pat",
                   properties=props("CONNECT", SessionExpiryInterval=300))
    c.subscribe("offline/#", 1)
    c.disconnect()
    info = wait_until(lambda: (lambda x: x if not x["connected"] else None)(
        env.ok("GET", f"/clients/{cid}")), what="client shown disconnected")
    assert info["expiry_interval"] == 300 and info["subscriptions_cnt"] == 1
    assert info["username"] == "pat" and info["disconnected_at"]
    r = env.ok("GET", "/clients", params={"conn_state": "disconnected"})
    assert [x["clientid"] for x in r["data"]] == [cid]
    # messages for it are queued, and the API shows the queue
    env.ok("POST", "/publish", json={"topic": "offline/1", "payload": "m1", "qos": 1})
    assert env.ok("GET", f"/clients/{cid}")["mqueue_len"] == 1
    # kicking an offline session discards it
    env.ok("DELETE", f"/clients/{cid}", 204)
    assert env.api.get(f"/clients/{cid}").status_code == 404


def test_kick(env):
    a = env.mqtt(uid("k"))
    env.ok("DELETE", f"/clients/{a.client_id}", 204)
    assert a.wait_disconnected() == 0x98  # Administrative action
    wait_until(lambda: env.api.get(f"/clients/{a.client_id}").status_code == 404)
    r = env.api.delete(f"/clients/{a.client_id}")
    assert r.status_code == 404 and r.json()["code"] == "CLIENTID_NOT_FOUND"

    # a kicked persistent session ends too (it does not stay behind offline)
    p = env.mqtt(uid("p"), clean=False, properties=props("CONNECT", SessionExpiryInterval=300))
    env.ok("DELETE", f"/clients/{p.client_id}", 204)
    assert p.wait_disconnected() == 0x98
    assert env.api.get(f"/clients/{p.client_id}").status_code == 404

    b, c, d = env.mqtt(uid("b")), env.mqtt(uid("c")), env.mqtt(uid("d"), version=4)
    env.ok("POST", "/clients/kickout/bulk", 204, json=[b.client_id, d.client_id, "nobody"])
    assert b.wait_disconnected() == 0x98
    d.wait_disconnected()
    wait_until(lambda: {x["clientid"] for x in env.ok("GET", "/clients")["data"]}
               == {c.client_id}, what="only c left")
    assert env.api.get("/clients/kickout/bulk").status_code in (404, 405)
    r = env.api.post("/clients/kickout/bulk", json={"not": "a list"})
    assert r.status_code == 400


def test_api_subscribe_delivers(env):
    sub = env.mqtt(uid("s"))
    pub = env.mqtt(uid("p"))
    cid = sub.client_id
    r = env.ok("POST", f"/clients/{cid}/subscribe", json={"topic": "api/+/t", "qos": 1})
    assert r["topic"] == "api/+/t" and r["qos"] == 1 and r["clientid"] == cid
    assert r["node"] == env.broker.node_name
    pub.publish("api/x/t", b"hello", qos=1)
    m = sub.get()
    assert m.topic == "api/x/t" and m.payload == b"hello" and m.qos == 1

    r = env.ok("POST", f"/clients/{cid}/subscribe/bulk",
               json=[{"topic": "b/1", "qos": 0}, {"topic": "$share/g/b/2", "qos": 2, "rap": 1}])
    assert [x["topic"] for x in r] == ["b/1", "$share/g/b/2"]
    subs = env.ok("GET", f"/clients/{cid}/subscriptions")
    assert {(s["topic"], s["qos"]) for s in subs} == {("api/+/t", 1), ("b/1", 0),
                                                     ("$share/g/b/2", 2)}
    assert all(set(s) >= {"topic", "qos", "nl", "rap", "rh", "clientid", "node", "durable"}
               for s in subs)
    pub.publish("b/2", b"shared", qos=1)
    assert sub.get().payload == b"shared"

    env.ok("POST", f"/clients/{cid}/unsubscribe", 204, json={"topic": "api/+/t"})
    env.ok("POST", f"/clients/{cid}/unsubscribe/bulk", 204,
           json=[{"topic": "b/1"}, {"topic": "$share/g/b/2"}, {"topic": "never"}])
    assert env.ok("GET", f"/clients/{cid}/subscriptions") == []
    pub.publish("api/x/t", b"gone", qos=1)
    pub.publish("b/1", b"gone", qos=1)
    sub.expect_none()

    # errors: unknown client, bad filter (nothing subscribed), bad qos
    r = env.api.post("/clients/nobody/subscribe", json={"topic": "a"})
    assert r.status_code == 404 and r.json()["code"] == "CLIENTID_NOT_FOUND"
    r = env.api.post(f"/clients/{cid}/subscribe/bulk",
                      json=[{"topic": "ok/1"}, {"topic": "bad/#/x"}])
    assert r.status_code == 400
    assert env.ok("GET", f"/clients/{cid}/subscriptions") == []
    assert env.api.post(f"/clients/{cid}/subscribe",
                         json={"topic": "a", "qos": 3}).status_code == 400
    assert env.api.post(f"/clients/{cid}/subscribe", json={}).status_code == 400
    r = env.api.post("/clients/nobody/unsubscribe", json={"topic": "a"})
    assert r.status_code == 404


def test_api_subscribe_gets_retained(env):
    sub = env.mqtt(uid("r"))
    env.ok("POST", "/publish", 202, json={"topic": "ret/1", "payload": "kept", "retain": True})
    env.ok("POST", f"/clients/{sub.client_id}/subscribe", json={"topic": "ret/#"})
    m = sub.get()
    assert m.topic == "ret/1" and m.payload == b"kept" and m.retain


def test_mqueue_messages_paging(env):
    cid = env.offline_session("q", "q/#")
    payloads = [f"msg-{i}".encode() for i in range(5)]
    before = time.time_ns()
    for i, p in enumerate(payloads):
        env.ok("POST", "/publish", json={"topic": f"q/{i}", "payload": p.decode(), "qos": 1})
    # EMQX's paging: tokens are "<inserted_at ns>_<priority>"; meta.start is the first queued
    # message's, meta.position the page's last one's (the request's own past the end).
    got, pos, pages = [], None, []
    while True:
        params = {"limit": 2}
        if pos:
            params["position"] = pos
        r = env.ok("GET", f"/clients/{cid}/mqueue_messages", params=params)
        pages.append(len(r["data"]))
        if not r["data"]:
            assert r["meta"] == {"start": got[0]["inserted_at"] + "_0", "position": pos}
            break
        got += r["data"]
        last = r["data"][-1]
        assert r["meta"]["position"] == f"{last['inserted_at']}_{last['mqueue_priority']}"
        assert r["meta"]["start"] == got[0]["inserted_at"] + "_0"
        pos = r["meta"]["position"]
    assert pages == [2, 2, 1, 0]
    assert [base64.b64decode(m["payload"]) for m in got] == payloads
    stamps = [int(m["inserted_at"]) for m in got]
    assert before < stamps[0] and stamps == sorted(set(stamps)) and stamps[-1] < time.time_ns()
    assert [m["topic"] for m in got] == [f"q/{i}" for i in range(5)]
    assert all(m["qos"] == 1 and m["from_clientid"] == "http_api" and m["mqueue_priority"] == 0
               for m in got)
    r = env.ok("GET", f"/clients/{cid}/mqueue_messages", params={"payload": "plain"})
    assert [m["payload"] for m in r["data"]] == [p.decode() for p in payloads]
    r = env.ok("GET", f"/clients/{cid}/mqueue_messages", params={"payload": "none"})
    assert all("payload" not in m for m in r["data"]) and len(r["data"]) == 5
    # the byte budget (of payload as sent: 8 base64 characters each) cuts the page, but always
    # returns at least one message
    r = env.ok("GET", f"/clients/{cid}/mqueue_messages", params={"max_payload_bytes": "16"})
    assert len(r["data"]) == 2
    assert r["meta"]["position"] == r["data"][1]["inserted_at"] + "_0"
    r = env.ok("GET", f"/clients/{cid}/mqueue_messages", params={"max_payload_bytes": "1"})
    assert len(r["data"]) == 1
    for bad in ({"position": "garbage"}, {"max_payload_bytes": "lots"}, {"payload": "hex"},
                {"max_payload_bytes": "0"}, {"position": str(stamps[0])},
                {"position": "1_x"}, {"position": "--1_0"},
                {"limit": 0}):
        r = env.api.get(f"/clients/{cid}/mqueue_messages", params=bad)
        assert r.status_code == 400 and r.json()["code"] in ("INVALID_PARAMETER", "BAD_REQUEST")
    assert env.api.get("/clients/nobody/mqueue_messages").status_code == 404

    # the client comes back and receives exactly what the API listed
    c2 = env.mqtt(cid, clean=False, properties=props("CONNECT", SessionExpiryInterval=300))
    assert [m.payload for m in c2.get_many(5)] == payloads


def test_inflight_messages(env):
    cid = uid("inf")
    c = env.mqtt(cid, manual_ack=True)
    c.subscribe("inf/#", 1)
    for i in range(3):
        env.ok("POST", "/publish", json={"topic": f"inf/{i}", "payload": f"p{i}", "qos": 1})
    got = c.get_many(3)  # received, not acknowledged
    r = env.ok("GET", f"/clients/{cid}/inflight_messages", params={"payload": "plain"})
    assert [m["payload"] for m in r["data"]] == [m.payload.decode() for m in got]
    stamps = [m["inserted_at"] for m in r["data"]]  # EMQX's token for the window: inserted_at
    assert r["meta"] == {"start": stamps[0], "position": stamps[-1]}
    assert [int(t) for t in stamps] == sorted({int(t) for t in stamps})
    first = env.ok("GET", f"/clients/{cid}/inflight_messages", params={"limit": 1})
    assert first["meta"] == {"start": stamps[0], "position": stamps[0]}
    rest = env.ok("GET", f"/clients/{cid}/inflight_messages",
                  params={"position": first["meta"]["position"]})
    assert rest["meta"] == {"start": stamps[0], "position": stamps[-1]}
    assert [m["topic"] for m in first["data"] + rest["data"]] == ["inf/0", "inf/1", "inf/2"]
    past = env.ok("GET", f"/clients/{cid}/inflight_messages", params={"position": stamps[-1]})
    assert past == {"data": [], "meta": {"start": stamps[0], "position": stamps[-1]}}
    for bad in ("1_0", "x", "1.5"):
        r = env.api.get(f"/clients/{cid}/inflight_messages", params={"position": bad})
        assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETER"
    assert env.ok("GET", f"/clients/{cid}")["inflight_cnt"] == 3
    for m in got:
        c.ack(m)
    wait_until(lambda: env.ok("GET", f"/clients/{cid}")["inflight_cnt"] == 0,
               what="acks processed")
    assert env.ok("GET", f"/clients/{cid}/inflight_messages") == {
        "data": [], "meta": {"start": "none", "position": "none"}}


def test_keepalive_and_sessions_count(env):
    a = env.mqtt(uid("ka"))
    env.mqtt(uid("kb"))
    assert env.ok("GET", "/sessions_count") == 2
    assert env.ok("GET", "/sessions_count", params={"since": 1705391625}) == 2
    assert env.api.get("/sessions_count", params={"since": -1}).status_code == 400
    r = env.ok("PUT", f"/clients/{a.client_id}/keepalive", json={"interval": 3600})
    assert r["keepalive"] == 3600
    assert env.ok("GET", f"/clients/{a.client_id}")["keepalive"] == 3600
    assert env.api.put(f"/clients/{a.client_id}/keepalive",
                        json={"interval": 70000}).status_code == 400
    assert env.api.put("/clients/nobody/keepalive", json={"interval": 5}).status_code == 404


def test_needs_authentication(env):
    import httpx
    r = httpx.get(f"http://127.0.0.1:{env.http_port}/api/v5/clients")
    assert r.status_code == 401
