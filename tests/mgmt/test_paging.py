"""`page` and `limit` on every paged list endpoint, as EMQX takes them: `limit` 1..10000
(EMQX's ?MAX_ROW_LIMIT), `page` 1 or more with no upper bound (a page past the end is empty);
anything else is 400 BAD_REQUEST naming the parameter, never a 500."""
from __future__ import annotations

import pytest

from conftest import TARGET
from emqpy.testing import BrokerThread
from support.mqttclient import MqttClient
from support.node import Node
from support.waiting import wait_until

HUGE = 1152921504606846976  # 2**60: islice and SQLite gave up on it (issue 12)
HUGER = 10 ** 30  # past 64 bits
AUTHN = "/authentication/password_based:built_in_database/users"
RULES = "/authorization/sources/built_in_database/rules"

# (path, query) of every paged list, unfiltered and with each kind of filter (index lookup,
# scan, fuzzy search without a count), all of which have at least one row here.
LISTS = [
    ("/clients", {}), ("/clients", {"like_clientid": "pg-"}),
    ("/clients", {"conn_state": "connected"}), ("/clients", {"clientid": "pg-1"}),
    ("/subscriptions", {}), ("/subscriptions", {"match_topic": "pg/#"}),
    ("/subscriptions", {"clientid": "pg-1"}), ("/subscriptions", {"qos": 1}),
    ("/topics", {}), ("/topics", {"topic": "pg/1"}),
    ("/banned", {}), ("/banned", {"like_clientid": "bad"}), ("/banned", {"clientid": "bad-1"}),
    ("/alarms", {}), ("/alarms", {"activated": "false"}),
    ("/mqtt/retainer/messages", {}), ("/mqtt/retainer/messages", {"topic": "pg/#"}),
    (AUTHN, {}), (AUTHN, {"like_user_id": "user"}),
    (RULES + "/clients", {}), (RULES + "/users", {"like_username": "user"}),
]
IDS = [p + ("?" + "&".join(f"{k}={v}" for k, v in q.items()) if q else "") for p, q in LISTS]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    if TARGET == "mosquitto":
        pytest.skip("HTTP API")
    # A full listener raises an alarm: 4 connections fill it, one leaving clears the alarm
    # (a row in the history), one more raises it again (a row in the active list).
    node = Node(BrokerThread({"listeners": {"tcp": {"default": {"max_connections": 4}}},
                              "sysmon": {"vm": {"process_check_interval": "1s"}}},
                             data_dir=str(tmp_path_factory.mktemp("paging"))).start())
    http = node.api
    http.timeout = 60
    clients = []
    for i in range(4):
        c = MqttClient("127.0.0.1", node.port, f"pg-{i}")
        c.connect()
        c.subscribe(f"pg/{i}", qos=1)
        clients.append(c)
    wait_until(lambda: http.get("/alarms").json()["data"], what="the alarm")
    clients.pop().close()
    wait_until(lambda: http.get("/alarms", params={"activated": "false"}).json()["data"],
               what="the alarm to clear")
    clients.append(MqttClient("127.0.0.1", node.port, "pg-3"))
    clients[-1].connect()
    wait_until(lambda: http.get("/alarms").json()["data"], what="the alarm again")
    clients[0].publish("pg/r", b"kept", qos=1, retain=True)
    for i in range(3):
        assert http.post("/banned", json={"as": "clientid", "who": f"bad-{i}"}).status_code == 200
    assert http.post("/authentication", json={
        "mechanism": "password_based", "backend": "built_in_database"}).status_code == 200
    for i in range(3):
        assert http.post(AUTHN, json={"user_id": f"user{i}", "password": "p"}).status_code == 201
    assert http.post("/authorization/sources",
                     json={"type": "built_in_database"}).status_code == 204
    assert http.post(RULES + "/clients", json=[{"clientid": "nobody", "rules": [
        {"topic": "x", "permission": "allow", "action": "all"}]}]).status_code == 204
    assert http.post(RULES + "/users", json=[{"username": "user1", "rules": [
        {"topic": "x", "permission": "allow", "action": "all"}]}]).status_code == 204
    wait_until(lambda: http.get("/mqtt/retainer/messages").json()["data"], what="retained")
    yield http
    for c in clients:
        c.close()
    node.stop()


def get(api, path, query, **paging):
    return api.get(path, params={**query, **paging})


@pytest.mark.parametrize("path,query", LISTS, ids=IDS)
def test_page_past_the_end_is_empty(api, path, query):
    first = get(api, path, query, page=1, limit=10000)
    assert first.status_code == 200, first.text
    whole = first.json()
    assert whole["data"], "the fixture gives every list at least one row"
    assert whole["meta"]["limit"] == 10000 and whole["meta"]["hasnext"] is False
    if "count" in whole["meta"]:
        assert whole["meta"]["count"] == len(whole["data"])
    for page in (HUGE, HUGER, len(whole["data"]) + 1):
        r = get(api, path, query, page=page, limit=1)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["data"] == []
        assert body["meta"]["page"] == page and body["meta"]["hasnext"] is False
        assert body["meta"].get("count") == whole["meta"].get("count")
    r = get(api, path, query, page=HUGE, limit=10000)
    assert r.status_code == 200 and r.json()["data"] == [], r.text


@pytest.mark.parametrize("path,query", LISTS, ids=IDS)
def test_bad_page_or_limit_is_400_naming_it(api, path, query):
    bad = [("page", 0), ("page", -1), ("page", "abc"), ("page", "1.5"), ("page", ""),
           ("limit", 0), ("limit", 10001), ("limit", -5), ("limit", "abc"),
           ("limit", HUGER)]
    for name, value in bad:
        r = get(api, path, query, **{name: value})
        assert r.status_code == 400, f"{name}={value!r}: {r.status_code} {r.text}"
        body = r.json()
        assert body["code"] == "BAD_REQUEST" and name in body["message"], (name, value, body)


def test_pages_cover_the_list_once(api):
    """Walking with limit=1 gives the limit=10000 listing, row by row, with hasnext right."""
    def stable(rows):  # an active alarm's duration grows between requests
        return [{k: v for k, v in r.items() if k != "duration"} for r in rows]

    for path, query in LISTS:
        whole = stable(get(api, path, query, limit=10000).json()["data"])
        rows = []
        for page in range(1, len(whole) + 1):
            body = get(api, path, query, page=page, limit=1).json()
            rows += stable(body["data"])
            assert body["meta"]["hasnext"] is (page < len(whole)), (path, query, page)
        assert rows == whole, (path, query)


def test_default_and_documented_limit(api):
    body = api.get("/banned").json()
    assert body["meta"] == {"page": 1, "limit": 100, "count": 3, "hasnext": False}
    spec = api.get(api.base_url.copy_with(path="/api-docs/swagger.json")).json()
    for path, _ in LISTS:
        path = path.replace("password_based:built_in_database", "{id}")
        params = spec["paths"]["/" + path.lstrip("/")]["get"]["parameters"]
        limit = next(p for p in params if p.get("name") == "limit")
        assert limit["schema"]["maximum"] == 10000, path
