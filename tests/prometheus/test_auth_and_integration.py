"""GET /prometheus/auth and /prometheus/data_integration: EMQX's series and JSON, figures
following real clients (authentication outcomes, authorization checks, bans) and a real rule
sending through an HTTP action to a real server."""
from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from support.mqttclient import uid
from support.rawmqtt import SUBACK, subscribe_packet
from support.servers import HttpSink
from support.waiting import wait_until

from .test_prometheus import LINE

BUILTIN = "password_based:built_in_database"


def _scrape(node, path: str, **params) -> tuple[str, dict]:
    r = httpx.get(node.api_url + path, params=params)  # no credentials, as in EMQX
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    for line in r.text.splitlines():
        assert LINE.match(line), line
    values = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            # the parser names a counter <family>_total and drops a _total the name had:
            # key the samples by the name as written (all EMQX names here are unique)
            name = s.name if s.name in r.text else fam.name
            values[(name, tuple(sorted(s.labels.items())))] = s.value
    return r.text, values


def _v(values, name, **labels):
    return values[(name, tuple(sorted(labels.items())))]


def _json(node, path: str, **params) -> dict:
    r = httpx.get(node.api_url + path, params=params, headers={"accept": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()


def test_auth_series_follow_clients(make_broker):
    n = make_broker({"authorization": {"no_match": "allow", "cache": {"enable": False},
                                       "sources": []}})
    n.ok("POST", "/authentication", json={"mechanism": "password_based",
                                          "backend": "built_in_database"})
    for user in ("u1", "u2", "u3"):
        n.ok("POST", f"/authentication/{BUILTIN}/users", 201,
             json={"user_id": user, "password": "pw"})
    n.ok("POST", "/authorization/sources", 204, json={"type": "built_in_database"})
    n.ok("POST", "/authorization/sources/built_in_database/rules/users", 204, json=[
        {"username": "u1", "rules": [{"topic": "no/#", "permission": "deny",
                                      "action": "subscribe"}]},
        {"username": "u2", "rules": [{"topic": "yes/#", "permission": "allow",
                                      "action": "all"}]}])
    n.ok("POST", "/authorization/sources", 204, json={
        "type": "file", "rules": '{allow, all, subscribe, ["open/#"]}.\n'
                                 '{deny, all, subscribe, ["closed/#"]}.\n'})
    n.ok("POST", "/banned", json={"as": "clientid", "who": "banned-1"})
    n.ok("POST", "/banned", json={"as": "username", "who": "banned-user"})
    n.ok("POST", "/banned", json={"as": "clientid_re", "who": "^evil"})  # (another table)

    assert n.connack(uid("c"), username="u1", password="bad") == 0x86  # failed
    assert n.connack(uid("c"), username="nobody", password="pw") == 0x87  # nomatch
    c, rc = n.connect(uid("c"), username="u1", password="pw")  # success
    assert rc == 0
    c.send(subscribe_packet(1, [("no/a", 0), ("open/a", 0), ("closed/a", 0), ("else", 0)]))
    assert c.expect(SUBACK).rcs == [0x87, 0, 0x87, 0]

    text, v = _scrape(n, "/prometheus/auth")
    assert "# TYPE emqx_authn_total counter" in text and "# TYPE emqx_authn_enable gauge" in text
    a = {"id": BUILTIN}
    assert (_v(v, "emqx_authn_enable", **a), _v(v, "emqx_authn_status", **a)) == (1, 1)
    assert (_v(v, "emqx_authn_total", **a), _v(v, "emqx_authn_success", **a),
            _v(v, "emqx_authn_failed", **a), _v(v, "emqx_authn_nomatch", **a)) == (3, 1, 1, 1)
    assert _v(v, "emqx_authn_users_count", **a) == 3
    db, f = {"type": "built_in_database"}, {"type": "file"}
    # built-in database: no/a denied, the rest no match; file: open/a allowed, closed/a denied
    assert (_v(v, "emqx_authz_total", **db), _v(v, "emqx_authz_deny", **db),
            _v(v, "emqx_authz_nomatch", **db)) == (4, 1, 3)
    assert (_v(v, "emqx_authz_allow", **f), _v(v, "emqx_authz_deny", **f),
            _v(v, "emqx_authz_nomatch", **f)) == (1, 1, 1)
    assert _v(v, "emqx_authz_rules_count", **db) == 2  # two users' entries
    assert _v(v, "emqx_authz_rules_count", **f) == 2
    assert (_v(v, "emqx_authz_enable", **f), _v(v, "emqx_authz_status", **f)) == (1, 1)
    assert _v(v, "emqx_banned_count") == 2

    js = _json(n, "/prometheus/auth")
    assert js["emqx_banned"] == {"emqx_banned_count": 2}
    assert js["emqx_authn"] == [{"id": BUILTIN, "emqx_authn_enable": 1, "emqx_authn_status": 1,
                                 "emqx_authn_nomatch": 1, "emqx_authn_total": 3,
                                 "emqx_authn_success": 1, "emqx_authn_failed": 1,
                                 "emqx_authn_users_count": 3}]
    assert [(s["type"], s["emqx_authz_rules_count"], s["emqx_authz_allow"])
            for s in js["emqx_authz"]] == [("built_in_database", 2, 0), ("file", 2, 1)]

    n.ok("PUT", f"/authentication/{BUILTIN}", 204, json={
        "mechanism": "password_based", "backend": "built_in_database", "enable": False})
    _, v = _scrape(n, "/prometheus/auth", mode="all_nodes_unaggregated")
    assert _v(v, "emqx_authn_enable", id=BUILTIN, node=n.name) == 0
    assert _v(v, "emqx_authn_users_count", id=BUILTIN) == 3  # (cluster-wide: no node label)


def test_data_integration_actions_and_connectors(make_broker):
    sink = HttpSink()
    try:
        n = make_broker()
        n.ok("POST", "/connectors", 201, json={"type": "http", "name": "web",
                                               "url": f"http://127.0.0.1:{sink.port}"})
        n.ok("POST", "/actions", 201, json={"type": "http", "name": "hook", "connector": "web",
                                            "parameters": {"path": "/in"}})
        n.ok("POST", "/rules", 201, json={"id": "to_web", "sql": 'SELECT * FROM "di/#"',
                                           "actions": ["http:hook"]})
        wait_until(lambda: n.get("/connectors/http:web")["status"] == "connected")
        pub = n.mqtt(uid("p"))
        for i in range(3):
            pub.publish(f"di/{i}", b"x", qos=1)
        wait_until(lambda: n.get("/actions/http:hook/metrics")["metrics"]["success"] == 3)

        text, v = _scrape(n, "/prometheus/data_integration")
        assert (_v(v, "emqx_rules_count"), _v(v, "emqx_actions_count"),
                _v(v, "emqx_connectors_count")) == (1, 1, 1)
        act = {"id": "http:hook"}
        assert (_v(v, "emqx_action_enable", **act), _v(v, "emqx_action_status", **act)) == (1, 1)
        assert (_v(v, "emqx_action_matched", **act), _v(v, "emqx_action_success", **act),
                _v(v, "emqx_action_failed", **act), _v(v, "emqx_action_queuing", **act),
                _v(v, "emqx_action_inflight", **act)) == (3, 3, 0, 0, 0)
        assert "# TYPE emqx_action_dropped_queue_full counter" in text
        assert (_v(v, "emqx_connector_enable", id="http:web"),
                _v(v, "emqx_connector_status", id="http:web")) == (1, 1)
        assert _v(v, "emqx_rule_matched", id="to_web") == 3

        js = _json(n, "/prometheus/data_integration")
        assert js["data_integration_overview"] == {
            "emqx_rules_count": 1, "emqx_actions_count": 1, "emqx_connectors_count": 1}
        assert js["connectors"] == [{"id": "http:web", "emqx_connector_enable": 1,
                                     "emqx_connector_status": 1}]
        [action] = js["actions"]
        assert action["id"] == "http:hook" and action["emqx_action_success"] == 3
        assert len(action) == 19  # id and EMQX's 18 series

        n.ok("PUT", "/connectors/http:web/enable/false", 204)
        js = _json(n, "/prometheus/data_integration", mode="all_nodes_unaggregated")
        assert js["connectors"] == [{"id": "http:web", "node": n.name,
                                     "emqx_connector_enable": 0, "emqx_connector_status": 0}]
        assert js["actions"][0]["emqx_action_status"] == 0
    finally:
        sink.stop()
