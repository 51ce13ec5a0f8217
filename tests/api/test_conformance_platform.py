"""Issue 12, points 6-8: platform-level EMQX conformance of the HTTP API.

6. ``GET /status?format=<anything but json>`` answers the text status (EMQX's ``format`` is a
   free string).
7. A JSON-body endpoint called with another Content-Type answers 415 UNSUPPORTED_MEDIA_TYPE.
8. Percent-encoded path parameters (``/``, ``%``, ``?``, ``#``, spaces, non-ASCII) reach the
   handler decoded and intact, on every route with a path parameter.
"""
import json
import re
from urllib.parse import quote

import pytest
from fastapi.routing import iter_route_contexts

from emqpy.api import routing
from support.mqttclient import MqttClient
from support.node import assert_error


@pytest.mark.parametrize("path", ["/status", "/api/v5/status"])
@pytest.mark.parametrize("fmt", ["xml", "JSON", "", "text", "yaml&x=1"])
def test_status_format_other_than_json_is_text(api, path, fmt):
    node = api.broker.node_name
    with api.client() as c:
        r = c.get(path, params={"format": fmt})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain")
        assert r.text == f"Node {node} is started\nemqx is running"
        assert r.headers["retry-after"] == "15"
        r = c.get(path, params={"format": "json"})
        assert r.status_code == 200 and r.json()["app_status"] == "running"
        assert r.headers["retry-after"] == "15"


# -- 7. JSON bodies: 415 UNSUPPORTED_MEDIA_TYPE for another Content-Type --------------------------

UNSUPPORTED = "content-type:application/json Required"
JSON = "application/json"


def json_body_operations(api) -> list[tuple[str, str]]:
    """(method, /api/v5 path with its parameters filled) of every operation whose request body
    the OpenAPI document declares as JSON."""
    with api.client() as c:
        doc = c.get("/api-docs/swagger.json").json()
    ops = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            if JSON in (op.get("requestBody") or {}).get("content", {}):
                ops.append((method.upper(), "/api/v5" + re.sub(r"\{[^}]+\}", "x", path)))
    return ops


def test_every_json_body_operation_refuses_other_media_types(api):
    ops = json_body_operations(api)
    assert len(ops) > 30 and ("POST", "/api/v5/login") in ops
    with api.client(auth=("admin", "public")) as c:
        for method, path in ops:
            r = c.request(method, path, content=b'{"a": 1}', headers={"content-type": "text/plain"})
            assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE", UNSUPPORTED)
            assert r.json()["message"] == UNSUPPORTED


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/xml",
                                   "application/x-www-form-urlencoded", "multipart/form-data",
                                   "application/jsonx", "application/vnd.api+json", "json"])
def test_non_json_content_types_are_415(api, ctype):
    headers = {} if ctype is None else {"content-type": ctype}
    body = b'{"name": "k415", "enable": true}'
    with api.client(auth=("admin", "public")) as c:
        r = c.post("/api/v5/api_key", content=body, headers=headers)
        assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE", UNSUPPORTED)
        assert c.get("/api/v5/api_key").json() == []  # nothing was created


def test_json_with_parameters_or_odd_case_is_accepted(api):
    with api.client(auth=("admin", "public")) as c:
        for i, ctype in enumerate(["application/json; charset=utf-8", "Application/JSON",
                                   "application/json ;charset=UTF-8"]):
            r = c.post("/api/v5/api_key", content=json.dumps({"name": f"ok{i}"}).encode(),
                       headers={"content-type": ctype})
            assert r.status_code == 200, (ctype, r.text)
            assert c.delete(f"/api/v5/api_key/ok{i}").status_code == 204


def test_415_comes_after_authentication_like_emqx(api):
    with api.client() as c:
        h = {"content-type": "text/plain"}
        assert_error(c.post("/api/v5/api_key", content=b"x", headers=h),
                     401, "AUTHORIZATION_HEADER_ERROR")
        assert_error(c.post("/api/v5/api_key", content=b"x", headers=h, auth=("admin", "bad")),
                     401, "WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET")
        # an API key on a dashboard-user-only endpoint is refused as such first
        key = api.new_key("ct415")
        r = c.post("/api/v5/users", content=b"x", headers=h,
                   auth=(key["api_key"], key["api_secret"]))
        assert_error(r, 401, "API_KEY_NOT_ALLOW")
        r = c.post("/api/v5/publish", content=b"x", headers=h,
                   auth=(key["api_key"], key["api_secret"]))
        assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE", UNSUPPORTED)
        with api.client(auth=("admin", "public")) as admin:
            assert admin.delete("/api/v5/api_key/ct415").status_code == 204
        # an endpoint without authentication refuses the media type straight away
        assert_error(c.post("/api/v5/login", content=b"x", headers=h), 415,
                     "UNSUPPORTED_MEDIA_TYPE", UNSUPPORTED)


def test_a_request_without_body_is_not_checked(api):
    with api.client(auth=("admin", "public")) as c:
        # no body: the missing fields are what is wrong (400), as in EMQX
        r = c.post("/api/v5/api_key", content=b"", headers={"content-type": "text/plain"})
        assert_error(r, 400, "BAD_REQUEST")
        # an operation that takes no body ignores a stray one, whatever its Content-Type
        r = c.request("GET", "/api/v5/api_key", content=b"x",
                      headers={"content-type": "text/plain"})
        assert r.status_code == 200, r.text


def test_other_declared_media_types_still_work(api):
    """PUT /configs takes HOCON text; import_users takes a multipart file upload or JSON."""
    with api.client(auth=("admin", "public")) as c:
        r = c.put("/api/v5/configs", content=b'mqtt {max_topic_levels = 77}',
                  headers={"content-type": "text/plain"})
        assert r.status_code == 200, r.text
        r = c.post("/api/v5/authentication", json={
            "mechanism": "password_based", "backend": "built_in_database",
            "user_id_type": "username",
            "password_hash_algorithm": {"name": "plain", "salt_position": "disable"}})
        assert r.status_code in (200, 201), r.text
        auth_id = "password_based:built_in_database"
        csv = b"user_id,password,is_superuser\nimported1,pw1,false\n"
        r = c.post(f"/api/v5/authentication/{auth_id}/import_users", params={"type": "plain"},
                   files={"filename": ("users.csv", csv, "text/csv")})
        assert r.status_code == 204, r.text
        assert c.get(f"/api/v5/authentication/{auth_id}/users/imported1").status_code == 200
        assert c.delete(f"/api/v5/authentication/{auth_id}").status_code == 204


# -- 8. Percent-encoded path parameters reach the handler intact ---------------------------------

# Everything a path segment cannot hold as is; "%2F" here is the literal text, not a slash.
NASTY = "dev/42 a?b&c=d#e%f%2Fg+h ü€😀"


def enc(value: str) -> str:
    return quote(value, safe="")


def is_platform_404(r) -> bool:
    return r.status_code == 404 and r.json()["message"].startswith("Request path not found")


def test_encoded_parameters_arrive_decoded_and_intact(api):
    with api.client(auth=("admin", "public")) as c:
        r = c.get(f"/api/v5/probe/echo/{enc(NASTY)}/{enc('%')}")
        assert r.status_code == 200, r.text
        assert r.json() == {"first": NASTY, "second": "%"}
        r = c.get(f"/api/v5/probe/echo-path/{enc(NASTY)}/tail%2Fx")
        assert r.json() == {"rest": NASTY + "/tail/x"}
        # a stray "%" that is no escape stays as sent, as uvicorn decodes it
        r = c.get("/api/v5/probe/echo/a%zz/b%2")
        assert r.json() == {"first": "a%zz", "second": "b%2"}
        # a query string after encoded "?" and "#" is still the query string
        r = c.get(f"/api/v5/probe/echo/{enc('a?b')}/{enc('#')}?limit=2&page=2")
        assert r.json() == {"first": "a?b", "second": "#"}
        r = c.get("/api/v5/probe/items?limit=2&page=2")
        assert r.json()["meta"]["page"] == 2 and len(r.json()["data"]) == 2


def routes_with_parameters(api):
    """(method, path template) of every route of the running app with a path parameter."""
    out = []
    for rc in iter_route_contexts(api.broker.api.app.routes):
        path = rc.path_format or ""
        if "{" in path:
            out.extend((m, path) for m in sorted(rc.methods or ()) if m != "HEAD")
    return out


@pytest.mark.parametrize("value", [NASTY, "line\nbreak\ttab\x17\x7f"])
def test_every_route_with_a_parameter_routes_an_encoded_value(api, value):
    routes = routes_with_parameters(api)
    assert len(routes) > 50
    checked = 0
    with api.client(auth=("admin", "public")) as c:
        for method, template in routes:
            if template.startswith("/api-docs/"):
                continue  # a file name: unknown ones answer 404 "Request path not found" by design
            path = re.sub(r"\{[^}]+\}", enc(value), template)
            kw = {"json": {}} if method in ("POST", "PUT") else {}
            r = c.request(method, path, **kw)
            assert not is_platform_404(r) and r.status_code != 405, (method, template, r.text)
            checked += 1
    assert checked > 50


def test_client_with_encoded_id_round_trip(api):
    port = api.broker.listeners["tcp:default"].port
    mqtt = MqttClient("127.0.0.1", port, NASTY)
    try:
        mqtt.connect()
        mqtt.subscribe("t/1", qos=1)
        with api.client(auth=("admin", "public")) as c:
            base = f"/api/v5/clients/{enc(NASTY)}"
            r = c.get(base)
            assert r.status_code == 200, r.text
            assert r.json()["clientid"] == NASTY
            subs = c.get(base + "/subscriptions").json()
            assert [s["topic"] for s in subs] == ["t/1"]
            assert c.get(base + "/authorization/cache").status_code == 200
            assert c.delete(base).status_code == 204
            mqtt.wait_disconnected()
            assert_error(c.get(base), 404, "CLIENTID_NOT_FOUND")
    finally:
        mqtt.close()


def test_405_names_every_method_of_the_path(api):
    with api.client(auth=("admin", "public")) as c:
        r = c.patch("/api/v5/clients/x")
        assert_error(r, 405, "METHOD_NOT_ALLOWED")
        assert r.headers["allow"] == "DELETE, GET"


def test_banned_entry_with_encoded_name_round_trip(api):
    with api.client(auth=("admin", "public")) as c:
        r = c.post("/api/v5/banned", json={"as": "clientid", "who": NASTY})
        assert r.status_code == 200, r.text
        assert c.delete(f"/api/v5/banned/clientid/{enc(NASTY)}").status_code == 204
        assert_error(c.delete(f"/api/v5/banned/clientid/{enc(NASTY)}"), 404, "NOT_FOUND")


def test_authn_user_with_encoded_id_round_trip(api):
    auth_id = enc("password_based:built_in_database")
    with api.client(auth=("admin", "public")) as c:
        r = c.post("/api/v5/authentication", json={
            "mechanism": "password_based", "backend": "built_in_database",
            "user_id_type": "username",
            "password_hash_algorithm": {"name": "plain", "salt_position": "disable"}})
        assert r.status_code in (200, 201), r.text
        try:
            users = f"/api/v5/authentication/{auth_id}/users"
            r = c.post(users, json={"user_id": NASTY, "password": "pw"})
            assert r.status_code == 201, r.text
            assert c.get(f"{users}/{enc(NASTY)}").json()["user_id"] == NASTY
            r = c.put(f"{users}/{enc(NASTY)}", json={"password": "pw2", "is_superuser": True})
            assert r.status_code == 200 and r.json()["is_superuser"] is True, r.text
            assert c.delete(f"{users}/{enc(NASTY)}").status_code == 204
            assert_error(c.get(f"{users}/{enc(NASTY)}"), 404, "NOT_FOUND")
        finally:
            c.delete(f"/api/v5/authentication/{auth_id}")


@pytest.mark.parametrize("plural,field", [("users", "username"), ("clients", "clientid")])
def test_authz_rules_with_encoded_name_round_trip(api, plural, field):
    rule = {"topic": "t/#", "permission": "allow", "action": "all"}
    with api.client(auth=("admin", "public")) as c:
        if c.get("/api/v5/authorization/sources/built_in_database").status_code == 404:
            r = c.post("/api/v5/authorization/sources", json={"type": "built_in_database",
                                                              "enable": True})
            assert r.status_code == 204, r.text
        rules = f"/api/v5/authorization/sources/built_in_database/rules/{plural}"
        r = c.post(rules, json=[{field: NASTY, "rules": [rule]}])
        assert r.status_code == 204, r.text
        r = c.get(f"{rules}/{enc(NASTY)}")
        assert r.status_code == 200 and r.json()[field] == NASTY, r.text
        r = c.put(f"{rules}/{enc(NASTY)}", json={field: NASTY, "rules": [rule, rule]})
        assert r.status_code == 204, r.text
        assert c.delete(f"{rules}/{enc(NASTY)}").status_code == 204
        assert_error(c.get(f"{rules}/{enc(NASTY)}"), 404, "NOT_FOUND")


def test_retained_message_with_encoded_topic_round_trip(api):
    topic = "r/a b/ü?x&y=%2F/€"
    port = api.broker.listeners["tcp:default"].port
    mqtt = MqttClient("127.0.0.1", port)
    try:
        mqtt.connect()
        mqtt.publish(topic, b"kept", qos=1, retain=True)
        with api.client(auth=("admin", "public")) as c:
            path = f"/api/v5/mqtt/retainer/message/{enc(topic)}"
            r = c.get(path)
            assert r.status_code == 200 and r.json()["topic"] == topic, r.text
            assert c.delete(path).status_code == 204
            assert c.get(path).status_code == 404
    finally:
        mqtt.close()


def test_ordinary_paths_queries_and_docs_still_work(api):
    with api.client(auth=("admin", "public")) as c:
        assert c.get("/status").status_code == 200
        assert c.get("/api/v5/%73tatus").status_code == 200  # an encoded fixed segment
        assert c.get("/api/v5/clients", params={"limit": 1, "like_clientid": "a/b c"}
                     ).status_code == 200
        assert c.get("/api/v5/error_codes/NOT_FOUND").json()["code"] == "NOT_FOUND"
        assert c.get("/api-docs/swagger.json").json()["paths"]
        for page in ("/api-docs", "/api-docs/index.html", "/api-docs/swagger-initializer.js",
                     "/api-docs/swagger-ui.css", "/api-docs/swagger-ui-bundle.js"):
            r = c.get(page, follow_redirects=True)
            assert r.status_code == 200, (page, r.status_code)
        assert is_platform_404(c.get("/api/v5/clients/a%2Fb/no-such-child"))
        # the 404 names the whole path, an encoded "?" or "#" does not cut it
        assert_error(c.get("/api/v5/no%2Fsuch%3Fthing%23here"), 404, "NOT_FOUND",
                     "Request path not found: /api/v5/no%2Fsuch%3Fthing%23here")


def test_routed_path_of_a_server_without_raw_path():
    """ASGI servers need not pass raw_path; then every "/" is a separator, and decoding the
    parameters must still give back what the server decoded."""
    scope = {"type": "http", "path": "/api/v5/clients/100% a?b#c"}
    assert routing.routed_path(scope) == "/api/v5/clients/100%25 a%3Fb%23c"
    scope["raw_path"] = b"/api/v5/clients/100%25%20a%3Fb%23c%2Fd"
    assert routing.routed_path(scope) == "/api/v5/clients/100%25 a%3Fb%23c%2Fd"
