"""Authorization seen by MQTT clients: file and built-in database sources, no_match,
deny_action, cache, superusers, and the REST API."""
import pytest

from support.node import assert_error
from support.rawmqtt import (
    DISCONNECT, PUBACK, PUBREC, SUBACK, publish_packet, subscribe_packet,
)

ACL = """
{allow, {username, "admin"}, all, ["#"]}.
{allow, all, subscribe, ["open/#", "${clientid}/inbox"]}.
{allow, all, publish, ["open/#"]}.
{deny, all}.
"""
RULES = "/authorization/sources/built_in_database/rules"


def sub(c, topic, qos=0, pid=1, version=5):
    c.send(subscribe_packet(pid, [(topic, qos)], version=version))
    return c.expect(SUBACK).rcs[0]


def pub(c, topic, qos=1, pid=7, retain=False, version=5):
    c.send(publish_packet(topic, b"x", qos=qos, pid=pid, retain=retain, version=version))
    return c.expect(PUBACK if qos == 1 else PUBREC).rc


@pytest.fixture
def acl_node(make_broker, tmp_path):
    path = tmp_path / "acl.conf"
    path.write_text(ACL)
    return lambda extra=None: make_broker({"authorization": {
        "sources": [{"type": "file", "path": str(path)}], **(extra or {})}})


def test_file_source_outcomes(acl_node):
    n = acl_node()
    c, code = n.connect("cid1", username="u")
    assert code == 0
    assert sub(c, "open/a", qos=1) == 1
    assert sub(c, "cid1/inbox", pid=2) == 0
    assert sub(c, "cid2/inbox", pid=3) == 0x87
    assert sub(c, "secret/#", pid=4) == 0x87
    assert pub(c, "open/x") == 0x10  # allowed, no subscriber
    assert pub(c, "secret/x") == 0x87
    assert pub(c, "secret/x", qos=2, pid=8) == 0x87
    v3, code = n.connect("cid3", username="u", password="p", version=4)
    assert sub(v3, "secret/#", version=4) == 0x80
    assert sub(v3, "open/#", pid=2, version=4) == 0
    assert pub(v3, "secret/x", version=4) == 0  # v3 PUBACK has no code: message dropped
    adm, code = n.connect("adm", username="admin")
    assert sub(adm, "secret/#") == 0
    m = n.broker.metrics.c
    assert m["authorization.deny"] >= 5 and m["authorization.allow"] >= 4


def test_denied_message_is_not_delivered(acl_node):
    n = acl_node()
    watcher, _ = n.connect("watch", username="admin")
    assert sub(watcher, "#") == 0
    c, _ = n.connect("pubber", username="u")
    assert pub(c, "secret/x") == 0x87
    assert pub(c, "open/y", pid=9) == 0
    got = watcher.expect(3)  # PUBLISH
    assert got.topic == "open/y"


def test_deny_action_disconnect(acl_node):
    n = acl_node({"deny_action": "disconnect"})
    c, _ = n.connect("d1", username="u")
    c.send(publish_packet("secret/x", b"x", qos=1, pid=1))
    pkts = c.expect_close()
    assert pkts[-1].type == DISCONNECT and pkts[-1].rc == 0x87
    c2, _ = n.connect("d2", username="u")
    c2.send(subscribe_packet(1, [("secret/#", 0)]))
    pkts = c2.expect_close()
    assert pkts[-1].type == DISCONNECT and pkts[-1].rc == 0x87


def test_no_match_and_superuser(make_broker):
    n = make_broker({"authorization": {"no_match": "deny", "sources": []},
              "authentication": [{"mechanism": "password_based",
                                  "backend": "built_in_database"}]})
    base = "/authentication/password_based:built_in_database/users"
    n.api.post(base, json={"user_id": "root", "password": "pw", "is_superuser": True})
    n.api.post(base, json={"user_id": "joe", "password": "pw"})
    c, _ = n.connect("j", username="joe", password="pw")
    assert sub(c, "any") == 0x87
    s, _ = n.connect("r", username="root", password="pw")
    assert sub(s, "any") == 0  # superusers skip authorization
    r = n.api.put("/authorization/settings", json={"no_match": "allow"})
    assert r.status_code == 200 and r.json()["no_match"] == "allow"
    assert sub(c, "any", pid=2) == 0


def test_outcome_counters(make_broker):
    # EMQX's emqx_authz counters: superuser (allowed before any source), matched.allow and
    # matched.deny (a source's rule decided), nomatch (none did); on /metrics and Prometheus.
    n = make_broker({"authorization": {"no_match": "deny", "sources": [],
                                "cache": {"enable": False}},
              "authentication": [{"mechanism": "password_based",
                                  "backend": "built_in_database"}]})
    base = "/authentication/password_based:built_in_database/users"
    n.api.post(base, json={"user_id": "root", "password": "pw", "is_superuser": True})
    n.api.post(base, json={"user_id": "joe", "password": "pw"})
    rules = '{allow, all, subscribe, ["open/#"]}.\n{deny, all, subscribe, ["closed/#"]}.\n'
    assert n.api.post("/authorization/sources",
                      json={"type": "file", "rules": rules}).status_code == 204
    c, _ = n.connect("j", username="joe", password="pw")
    assert sub(c, "open/a") == 0 and sub(c, "closed/a", pid=2) == 0x87
    assert sub(c, "other", pid=3) == 0x87
    s, _ = n.connect("r", username="root", password="pw")
    assert sub(s, "closed/a") == 0
    assert pub(s, "closed/b") == 0x10  # allowed (no subscribers)
    m = n.api.get("/metrics").json()[0]
    assert {k: m[k] for k in ("authorization.superuser", "authorization.matched.allow",
                              "authorization.matched.deny", "authorization.nomatch",
                              "authorization.allow", "authorization.deny",
                              "client.authorize")} == {
        "authorization.superuser": 2, "authorization.matched.allow": 1,
        "authorization.matched.deny": 1, "authorization.nomatch": 1,
        "authorization.allow": 3, "authorization.deny": 2, "client.authorize": 5}
    text = n.api.get("/prometheus/stats").text
    for name, value in (("emqx_authorization_superuser", 2), ("emqx_authorization_nomatch", 1),
                        ("emqx_authorization_matched_allow", 1),
                        ("emqx_authorization_matched_deny", 1)):
        assert f"# TYPE {name} counter\n" in text and f"\n{name} {value}\n" in text, name


def test_builtin_database_rules(make_broker):
    n = make_broker({"authorization": {"sources": [{"type": "built_in_database"}],
                                "no_match": "deny"}})
    r = n.api.post(RULES + "/users", json=[{"username": "u1", "rules": [
        {"topic": "u1/#", "permission": "allow", "action": "all"},
        {"topic": "eq t/#", "permission": "allow", "action": "subscribe"}]}])
    assert r.status_code == 204, r.text
    assert_error(n.api.post(RULES + "/users", json=[{"username": "u1", "rules": []}]),
                 409, "ALREADY_EXISTS")
    r = n.api.post(RULES + "/clients", json=[{"clientid": "c9", "rules": [
        {"topic": "c/+", "permission": "allow", "action": "publish", "qos": [1],
         "retain": False}]}])
    assert r.status_code == 204, r.text
    r = n.api.post(RULES + "/all", json={"rules": [
        {"topic": "all/#", "permission": "allow", "action": "subscribe"}]})
    assert r.status_code == 204
    assert_error(n.api.post(RULES + "/all", json={"rules": [{"topic": "x"}]}),
                 400, "BAD_REQUEST")
    assert_error(n.api.post(RULES + "/all", json={"rules": [
        {"topic": "x", "permission": "allow", "action": "all", "qos": [5]}]}),
        400, "BAD_REQUEST")

    c, _ = n.connect("c9", username="u1")
    assert sub(c, "u1/x") == 0
    assert sub(c, "t/#", pid=2) == 0
    assert sub(c, "t/x", pid=3) == 0x87
    assert sub(c, "all/x", pid=4) == 0
    assert sub(c, "nope", pid=5) == 0x87
    assert pub(c, "c/1", qos=1) == 0x10
    assert pub(c, "c/1", qos=2, pid=9) == 0x87
    assert pub(c, "c/1", qos=1, pid=10, retain=True) == 0x87

    got = n.api.get(RULES + "/users/u1").json()
    assert got["username"] == "u1" and got["rules"][0]["qos"] == [0, 1, 2]
    assert got["rules"][0]["retain"] == "all"
    lst = n.api.get(RULES + "/users", params={"like_username": "u"}).json()
    assert lst["meta"]["count"] == 1 and lst["data"][0]["username"] == "u1"
    assert n.api.get(RULES + "/clients").json()["data"][0]["clientid"] == "c9"
    assert n.api.get(RULES + "/all").json()["rules"][0]["topic"] == "all/#"
    # replace the user's rules: the cache is cleaned, the new rules apply at once
    r = n.api.put(RULES + "/users/u1", json={"username": "u1", "rules": [
        {"topic": "u1/#", "permission": "deny", "action": "all"}]})
    assert r.status_code == 204
    assert sub(c, "u1/x", pid=6) == 0x87
    assert n.api.delete(RULES + "/users/u1").status_code == 204
    assert_error(n.api.get(RULES + "/users/u1"), 404, "NOT_FOUND")
    assert_error(n.api.delete(RULES + "/users/u1"), 404, "NOT_FOUND")
    assert n.api.delete(RULES + "/all").status_code == 204
    assert sub(c, "all/x", pid=7) == 0x87
    assert n.api.delete(RULES).status_code == 204
    assert n.api.get(RULES + "/clients").json()["meta"]["count"] == 0
    # rules survive a restart
    n.api.post(RULES + "/all", json={"rules": [
        {"topic": "kept/#", "permission": "allow", "action": "all"}]})
    n.restart()
    c, _ = n.connect("z")
    assert sub(c, "kept/1") == 0 and sub(c, "other", pid=2) == 0x87


def test_cache(make_broker, tmp_path):
    path = tmp_path / "acl.conf"
    path.write_text('{allow, all, subscribe, ["a/#"]}.\n{deny, all}.\n')
    n = make_broker({"authorization": {"sources": [{"type": "file", "path": str(path)}],
                                "cache": {"enable": True, "max_size": 2, "ttl": "1h"}}})
    c, _ = n.connect("cc")
    assert sub(c, "a/1") == 0 and sub(c, "b/1", pid=2) == 0x87 and sub(c, "a/2", pid=3) == 0
    cache = n.api.get("/clients/cc/authorization/cache").json()
    assert [(e["topic"], e["result"]) for e in cache] == [("b/1", "deny"), ("a/2", "allow")]
    assert all(e["access"] == "subscribe" for e in cache)
    hits = n.broker.metrics.c["authorization.cache_hit"]
    assert sub(c, "a/2", pid=4) == 0
    assert n.broker.metrics.c["authorization.cache_hit"] == hits + 1
    assert n.api.delete("/clients/cc/authorization/cache").status_code == 204
    assert n.api.get("/clients/cc/authorization/cache").json() == []
    assert_error(n.api.get("/clients/ghost/authorization/cache"), 404, "CLIENTID_NOT_FOUND")
    sub(c, "a/3", pid=5)
    assert n.api.delete("/authorization/cache").status_code == 204
    assert n.api.get("/clients/cc/authorization/cache").json() == []


def test_sources_api(make_broker):
    n = make_broker()
    assert n.api.get("/authorization/sources").json() == {"sources": []}
    assert n.broker.authorize is None  # nothing to check: the publish path stays bare
    rules = '{allow, all, subscribe, ["x/#"]}.\n{deny, all}.\n'
    r = n.api.post("/authorization/sources", json={"type": "file", "rules": rules})
    assert r.status_code == 204, r.text
    assert_error(n.api.post("/authorization/sources", json={"type": "file", "rules": rules}),
                 400, "BAD_REQUEST")
    assert_error(n.api.post("/authorization/sources", json={"type": "file",
                                                            "rules": "{allow, oops"}),
                 400, "BAD_REQUEST")
    assert_error(n.api.post("/authorization/sources", json={"type": "nope"}),
                 400, "BAD_REQUEST")
    assert n.api.post("/authorization/sources",
                      json={"type": "built_in_database"}).status_code == 204
    got = n.api.get("/authorization/sources/file").json()
    assert got["rules"] == rules and got["enable"] is True
    c, _ = n.connect("s1")
    assert sub(c, "x/1") == 0 and sub(c, "y", pid=2) == 0x87
    types = lambda: [s["type"] for s in n.api.get("/authorization/sources").json()["sources"]]
    assert types() == ["file", "built_in_database"]
    assert n.api.post("/authorization/sources/built_in_database/move",
                      json={"position": "front"}).status_code == 204
    assert types() == ["built_in_database", "file"]
    assert n.api.post("/authorization/sources/built_in_database/move",
                      json={"position": "after:file"}).status_code == 204
    assert types() == ["file", "built_in_database"]
    assert_error(n.api.post("/authorization/sources/file/move", json={"position": "up"}),
                 400, "BAD_REQUEST")
    assert_error(n.api.post("/authorization/sources/http/move", json={"position": "front"}),
                 404, "NOT_FOUND")
    assert n.api.put("/authorization/sources/order", json=[
        {"type": "built_in_database"}, {"type": "file"}]).status_code == 204
    assert types() == ["built_in_database", "file"]
    assert_error(n.api.put("/authorization/sources/order", json=[{"type": "file"}]),
                 400, "BAD_REQUEST")
    st = n.api.get("/authorization/sources/file/status").json()
    assert st["status"] == "connected" and st["metrics"]["deny"] >= 1
    # disable the file source: nothing denies any more
    assert n.api.put("/authorization/sources/file",
                     json={"enable": False, "rules": rules}).status_code == 204
    assert sub(c, "y", pid=3) == 0
    assert n.api.delete("/authorization/sources/file").status_code == 204
    assert_error(n.api.get("/authorization/sources/file"), 404, "NOT_FOUND")
    # PUT only updates: a source that does not exist is 404 (as in EMQX), not created
    assert_error(n.api.put("/authorization/sources/file", json={"type": "file", "rules": rules}),
                 404, "NOT_FOUND")
    assert_error(n.api.get("/authorization/sources/file"), 404, "NOT_FOUND")
    assert_error(n.api.delete("/authorization/sources/file"), 404, "NOT_FOUND")
    s = n.api.get("/authorization/settings").json()
    assert s == {"no_match": "allow", "deny_action": "ignore",
                 "cache": {"enable": True, "max_size": 32, "ttl": "1m", "excludes": []}}
    assert_error(n.api.put("/authorization/settings", json={"no_match": "perhaps"}),
                 400, "BAD_REQUEST")
    assert_error(n.api.put("/authorization/settings", json={"cache": {"ttl": "soon"}}),
                 400, "BAD_REQUEST")
