"""Banned clients: refused at CONNECT, kicked when banned, regex and network bans, expiry,
the /banned API and durability."""
from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from support.mqttclient import uid
from support.rawmqtt import connack_bytes
from support.waiting import wait_until

BANNED = 0x8A


@pytest.fixture
def h(make_broker):
    return make_broker()


def _ban(c, kind, who, **extra):
    r = c.post("/banned", json={"as": kind, "who": who, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_ban_refuses_connect_v5_and_v3(h):
    cid = uid("bad")
    c = h.api
    body = _ban(c, "clientid", cid, reason="spam", by="test")
    assert body["as"] == "clientid" and body["who"] == cid
    assert body["reason"] == "spam" and body["by"] == "test" and body["until"] == "infinity"
    assert "T" in body["at"]
    cl = h.mqtt(cid, expect_rc=None)
    assert cl.connack_rc == BANNED
    cl.close()
    assert connack_bytes(h.host, h.port, cid) == b"\x20\x02\x00\x05"  # v3: not authorized
    ok = h.mqtt(uid("good"), expect_rc=None)
    assert ok.connack_rc == 0
    ok.close()


def test_ban_kicks_connected_client(h):
    cid = uid("kick")
    cl = h.mqtt(cid, expect_rc=None)
    assert cl.connack_rc == 0
    c = h.api
    _ban(c, "clientid", cid)
    rc = cl.wait_disconnected()
    assert rc == 0x98  # administrative action
    cl.close()
    user = uid("u")
    cl2 = h.mqtt(uid("byuser"), expect_rc=None, username=user, password="pw")
    _ban(c, "username", user)
    cl2.wait_disconnected()
    cl2.close()
    assert h.mqtt(uid("other"), expect_rc=None, username=user,
                  password="pw").connack_rc == BANNED


def test_regex_and_network_bans(h):
    tag = uid("re").replace("-", "")
    c = h.api
    _ban(c, "clientid_re", f"^{tag}-dev-[0-9]+$")
    _ban(c, "username_re", f"{tag}admin")
    assert h.mqtt(f"{tag}-dev-17", expect_rc=None).connack_rc == BANNED
    assert h.mqtt(f"{tag}-dev-x", expect_rc=None).connack_rc == 0
    assert h.mqtt(uid("c"), expect_rc=None, username=f"x{tag}admin",
                  password="pw").connack_rc == BANNED
    body = _ban(c, "peerhost_net", "127.0.0.5/8")
    assert body["who"] == "127.0.0.0/8"  # normalised, as EMQX
    assert h.mqtt(uid("any"), expect_rc=None).connack_rc == BANNED
    assert connack_bytes(h.host, h.port, uid("any3")) == b"\x20\x02\x00\x05"
    assert c.delete("/banned/peerhost_net/" + quote("127.0.0.0/8", safe="")).status_code \
        == 204
    assert h.mqtt(uid("any"), expect_rc=None).connack_rc == 0
    _ban(c, "peerhost", "127.0.0.1")
    assert h.mqtt(uid("any"), expect_rc=None).connack_rc == BANNED
    assert c.delete("/banned/peerhost/127.0.0.1").status_code == 204


def test_expired_bans_disappear(h):
    cid = uid("tmp")
    c = h.api
    until = int(time.time()) + 2
    body = _ban(c, "clientid", cid, until=until)
    assert body["until"] != "infinity"
    assert h.mqtt(cid, expect_rc=None).connack_rc == BANNED
    wait_until(lambda: time.time() > until, what="the ban to end")
    assert c.get("/banned", params={"clientid": cid}).json()["data"] == []
    assert all(b["who"] != cid for b in c.get("/banned").json()["data"])
    assert h.mqtt(cid, expect_rc=None).connack_rc == 0
    assert h.broker.store.query("SELECT * FROM banned WHERE who=?", (cid,))
    n = h.call(h.broker.banned.purge)
    assert n >= 1
    assert not h.broker.store.query("SELECT * FROM banned WHERE who=?", (cid,))
    # an already-expired ban cannot be created
    r = c.post("/banned", json={"as": "clientid", "who": cid, "until": 1000})
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
    assert "expired" in r.json()["message"]


def test_api_errors_filters_and_delete(h):
    a, b = uid("fa"), uid("fb")
    c = h.api
    _ban(c, "clientid", a)
    _ban(c, "clientid", b, until="2099-01-01T00:00:00Z")
    dup = c.post("/banned", json={"as": "clientid", "who": a})
    assert dup.status_code == 400 and dup.json()["code"] == "ALREADY_EXISTS"
    for body in ({"as": "peerhost", "who": "300.1.1.1"}, {"as": "clientid_re", "who": "("},
                 {"as": "nope", "who": "x"}, {"who": "x"},
                 {"as": "peerhost_net", "who": "10.0.0.0/40"},
                 {"as": "clientid", "who": "x", "until": "soon"}):
        r = c.post("/banned", json=body)
        assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST", body
    r = c.get("/banned", params={"clientid": a})
    assert [x["who"] for x in r.json()["data"]] == [a]
    assert r.json()["meta"]["count"] == 1 and r.json()["meta"]["hasnext"] is False
    r = c.get("/banned", params={"like_clientid": a.split("-")[0] + "-"})
    assert {x["who"] for x in r.json()["data"]} >= {a}
    r = c.get("/banned", params={"clientid": a, "username": "x"})
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
    r = c.get("/banned", params={"like_username": "("})
    assert r.status_code == 400
    r = c.get("/banned", params={"limit": 1})
    assert len(r.json()["data"]) == 1 and r.json()["meta"]["hasnext"] is True
    assert c.delete(f"/banned/clientid/{a}").status_code == 204
    r = c.delete(f"/banned/clientid/{a}")
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    assert c.delete("/banned/bogus/x").status_code == 400
    assert c.delete("/banned").status_code == 204
    assert c.get("/banned").json()["data"] == []


def test_bans_survive_restart(make_broker, tmp_path):
    cid = uid("dur")
    bt = make_broker(data_dir=tmp_path)
    try:
        c = bt.api
        _ban(c, "clientid", cid)
        _ban(c, "peerhost_net", "10.9.0.0/16")
    finally:
        bt.stop()
    bt.start()
    try:
        assert bt.mqtt(cid, expect_rc=None).connack_rc == BANNED
        c = bt.api
        whos = {(x["as"], x["who"]) for x in c.get("/banned").json()["data"]}
        assert whos == {("clientid", cid), ("peerhost_net", "10.9.0.0/16")}
    finally:
        bt.stop()
