"""/connectors*, /actions*, /action_types and the probes: EMQX 5.8.1's shapes, status codes and
error codes (cases from emqx_connector_api_SUITE, emqx_bridge_v2_api_SUITE and
emqx_bridge_http_v2_SUITE), against a started broker and a real HTTP target."""
from __future__ import annotations

import pytest

from support.mqttclient import uid
from support.servers import HttpSink, free_port
from support.waiting import wait_until


def connector(name: str, url: str, **extra) -> dict:
    return {"type": "http", "name": name, "url": url, **extra}


def action(name: str, connector_name: str, **params) -> dict:
    return {"type": "http", "name": name, "connector": connector_name,
            "parameters": {"path": "/hook", **params}}


def test_connector_crud(api, sink):
    name = uid("c")
    cid = f"http:{name}"
    assert all(c["name"] != name for c in api.get("/connectors"))
    body = api.ok("POST", "/connectors", 201, json=connector(name, sink.url("/base")))
    assert body["type"] == "http" and body["name"] == name and body["enable"] is True
    assert body["status"] == "connected"
    assert body["node_status"] == [{"node": api.name, "status": "connected"}]
    # EMQX's defaults are filled in
    assert body["pool_size"] == 8 and body["connect_timeout"] == "15s"
    assert body["resource_opts"] == {"health_check_interval": "15s",
                                     "start_after_created": True, "start_timeout": "5s"}
    assert body["actions"] == [] and body["sources"] == []
    # duplicates: EMQX's 400 ALREADY_EXISTS
    r = api.api.post("/connectors", json=connector(name, sink.url()))
    assert r.status_code == 400 and r.json()["code"] == "ALREADY_EXISTS"
    assert api.get(f"/connectors/{cid}")["url"] == sink.url("/base")
    assert any(c["name"] == name for c in api.get("/connectors"))
    # PUT replaces the config; type/name/status in the body are ignored as EMQX ignores them
    put = api.ok("PUT", f"/connectors/{cid}", json={
        "url": sink.url("/other"), "pool_size": 2, "status": "whatever", "name": name})
    assert put["url"] == sink.url("/other") and put["pool_size"] == 2
    api.ok("DELETE", f"/connectors/{cid}", 204)
    r = api.api.get(f"/connectors/{cid}")
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    assert r.json()["message"] == (f"Connector lookup failed: connector named '{name}' of "
                                   "type http does not exist.")


@pytest.mark.parametrize("bad", [
    {"url": "ftp://x"},                       # not http(s)
    {"url": "http://127.0.0.1:1", "pool_size": 0},
    {"url": "http://127.0.0.1:1", "nope": 1},  # unknown key
    {"url": "http://127.0.0.1:1", "resource_opts": {"health_check_interval": "2h"}},
    {},                                       # url missing
])
def test_connector_bad_config_is_400(api, bad):
    r = api.api.post("/connectors", json={"type": "http", "name": uid("bad"), **bad})
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST", r.text


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 255])
def test_bad_names_are_refused(api, name):
    r = api.api.post("/connectors", json=connector(name, "http://127.0.0.1:1"))
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("cid", ["foo", "webhook:foo", "http:foo", "http:a:b", "kafka:x"])
def test_unknown_ids_are_404(api, cid):
    for method, path in (("GET", f"/connectors/{cid}"), ("DELETE", f"/connectors/{cid}"),
                         ("PUT", f"/connectors/{cid}/enable/true"),
                         ("POST", f"/connectors/{cid}/start"),
                         ("GET", f"/actions/{cid}"), ("GET", f"/actions/{cid}/metrics"),
                         ("PUT", f"/actions/{cid}/enable/false"),
                         ("POST", f"/actions/{cid}/start")):
        r = api.api.request(method, path)
        assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND", (method, path, r.text)


def test_secrets_are_masked_and_kept(api, sink):
    name = uid("sec")
    cid = f"http:{name}"
    headers = {"Authorization": "Bearer s3cret", "x-plain": "v"}
    body = api.ok("POST", "/connectors", 201,
                  json=connector(name, sink.url(), headers=headers))
    assert body["headers"] == {"Authorization": "******", "x-plain": "v"}
    # a PUT sending the mask back keeps the stored token
    api.ok("PUT", f"/connectors/{cid}", json={"url": sink.url(), "headers": {
        "Authorization": "******", "x-plain": "w"}})
    stored = api.call(lambda: api.broker.config.connectors.http[name].headers)
    assert stored == {"Authorization": "Bearer s3cret", "x-plain": "w"}
    # and it is what the target gets
    aname = uid("a")
    api.ok("POST", "/actions", 201, json=action(aname, name))
    sink.clear()
    api.call(lambda: api.broker.bridges.send(f"http:{aname}", {"payload": "x"}, {}))
    got = wait_until(sink.requests, what="the request")
    assert got[0]["headers"]["authorization"] == "Bearer s3cret"
    # saved for the next start (cluster.hocon), in clear as EMQX saves it
    text = (api.data_dir / "configs" / "cluster.hocon").read_text()
    assert "Bearer s3cret" in text and aname in text
    api.ok("DELETE", f"/actions/http:{aname}", 204)
    api.ok("DELETE", f"/connectors/{cid}", 204)


def test_action_crud_and_dependencies(api, sink):
    cname, aname = uid("c"), uid("a")
    cid, aid = f"http:{cname}", f"http:{aname}"
    # an action needs its connector
    r = api.api.post("/actions", json=action(aname, cname))
    assert r.status_code == 400 and "connector_not_found_or_wrong_type" in r.json()["message"]
    api.ok("POST", "/connectors", 201, json=connector(cname, sink.url()))
    body = api.ok("POST", "/actions", 201, json=action(aname, cname, body="${payload}"))
    assert body["type"] == "http" and body["name"] == aname and body["connector"] == cname
    assert body["status"] == "connected" and body["error"] == ""
    assert body["node_status"] == [{"node": api.name, "status": "connected",
                                    "status_reason": ""}]
    assert body["rules"] == []
    assert body["parameters"]["method"] == "post" and body["parameters"]["max_retries"] == 2
    assert body["resource_opts"] == {
        "health_check_interval": "15s", "inflight_window": 100, "max_buffer_bytes": "256MB",
        "query_mode": "async", "request_ttl": "45s", "worker_pool_size": 16}
    r = api.api.post("/actions", json=action(aname, cname))
    assert r.status_code == 400 and r.json()["code"] == "ALREADY_EXISTS"
    assert api.get(f"/connectors/{cid}")["actions"] == [aname]
    assert [a["name"] for a in api.get("/actions") if a["name"] == aname] == [aname]
    # a connector its actions use cannot go (EMQX's message names the channels)
    r = api.api.delete(f"/connectors/{cid}")
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
    assert r.json()["message"].startswith(
        '{<<"Cannot delete connector while there are active channels defined for this '
        'connector">>,')
    assert f"action:{aid}:connector:{cid}" in r.json()["message"]
    put = api.ok("PUT", f"/actions/{aid}", json={
        "connector": cname, "parameters": {"path": "/v2", "method": "put"},
        "resource_opts": {"request_ttl": "infinity"}})
    assert put["parameters"]["method"] == "put" and put["resource_opts"]["request_ttl"] == \
        "infinity"
    r = api.api.put(f"/actions/{aid}", json={"connector": cname, "parameters": {
        "method": "patch"}})
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
    api.ok("DELETE", f"/actions/{aid}", 204)
    r = api.api.get(f"/actions/{aid}")
    assert r.status_code == 404 and r.json()["message"] == (
        f"Bridge lookup failed: bridge named '{aname}' of type http does not exist.")
    api.ok("DELETE", f"/connectors/{cid}", 204)


def test_delete_action_used_by_rules(api, sink):
    """The rule engine reports the rules that use an action: EMQX's 400 with their ids, or
    also_delete_dep_actions=true takes the action out of them."""
    cname, aname = uid("c"), uid("a")
    aid = f"http:{aname}"
    api.ok("POST", "/connectors", 201, json=connector(cname, sink.url()))
    api.ok("POST", "/actions", 201, json=action(aname, cname))
    rules = {"rule_1": [aid], "rule_2": [aid, "http:other"]}

    def link(svc):
        svc.set_rule_links(lambda a: sorted(r for r, acts in rules.items() if a in acts),
                           lambda r, a: rules[r].remove(a))
    api.call(link, api.broker.bridges)
    try:
        assert api.get(f"/actions/{aid}")["rules"] == ["rule_1", "rule_2"]
        r = api.api.delete(f"/actions/{aid}")
        assert r.status_code == 400
        assert r.json()["code"] == "BAD_REQUEST" and r.json()["rules"] == ["rule_1", "rule_2"]
        assert r.json()["message"] == "Cannot delete action while active rules are depending on it"
        api.ok("DELETE", f"/actions/{aid}?also_delete_dep_actions=true", 204)
        assert rules == {"rule_1": [], "rule_2": ["http:other"]}
    finally:
        api.call(lambda: api.broker.bridges.set_rule_links(lambda a: [], lambda r, a: None))
    api.ok("DELETE", f"/connectors/http:{cname}", 204)


def test_enable_disable_and_operations(api, sink):
    cname, aname = uid("c"), uid("a")
    cid, aid = f"http:{cname}", f"http:{aname}"
    api.ok("POST", "/connectors", 201, json=connector(cname, sink.url()))
    api.ok("POST", "/actions", 201, json=action(aname, cname))
    api.ok("PUT", f"/connectors/{cid}/enable/false", 204)
    assert api.get(f"/connectors/{cid}")["status"] == "stopped"
    a = api.get(f"/actions/{aid}")
    assert (a["status"], a["status_reason"], a["error"]) == (
        "disconnected", "Not installed", "Not installed")
    # EMQX refuses to start what is disabled
    for path in (f"/connectors/{cid}/start", f"/nodes/{api.name}/connectors/{cid}/start"):
        r = api.api.post(path)
        assert r.status_code == 400 and r.json() == {
            "code": "BAD_REQUEST", "message": "Forbidden operation, connector not enabled",
            "reason": "Forbidden operation, connector not enabled"}
    r = api.api.post(f"/actions/{aid}/start")
    assert r.status_code == 400 and r.json()["message"] == \
        "Forbidden operation, bridge not enabled"
    # a message for a stopped action is dropped and counted
    api.call(lambda: api.broker.bridges.send(aid, {"payload": "x"}, {}))
    m = api.get(f"/actions/{aid}/metrics")["metrics"]
    assert m["matched"] == 1 and m["dropped.resource_stopped"] == 1 and m["dropped"] == 1
    api.ok("PUT", f"/connectors/{cid}/enable/true", 204)
    wait_until(lambda: api.get(f"/connectors/{cid}")["status"] == "connected")
    assert api.get(f"/actions/{aid}")["status"] == "connected"
    for path in (f"/connectors/{cid}/start", f"/nodes/{api.name}/connectors/{cid}/start",
                 f"/actions/{aid}/start", f"/nodes/{api.name}/actions/{aid}/start"):
        api.ok("POST", path, 204)
    # operations EMQX 5.8.1 does not have, a bad enable value, an unknown node
    for method, path, status in (("POST", f"/connectors/{cid}/stop", 400),
                                 ("POST", f"/actions/{aid}/restart", 400),
                                 ("PUT", f"/connectors/{cid}/enable/foo", 400),
                                 ("POST", f"/nodes/nope@host/actions/{aid}/start", 404),
                                 ("POST", f"/actions/{aid}/metrics", 405)):
        assert api.api.request(method, path).status_code == status, (method, path)
    api.ok("PUT", f"/actions/{aid}/enable/false", 204)
    assert api.get(f"/actions/{aid}")["enable"] is False
    assert api.get(f"/actions/{aid}")["status"] == "disconnected"
    api.ok("PUT", f"/actions/{aid}/enable/true", 204)
    assert api.get(f"/actions/{aid}")["status"] == "connected"
    api.ok("PUT", f"/actions/{aid}/metrics/reset", 204)
    assert api.get(f"/actions/{aid}/metrics")["metrics"]["matched"] == 0
    api.ok("DELETE", f"/actions/{aid}", 204)
    api.ok("DELETE", f"/connectors/{cid}", 204)


def test_connector_status_follows_the_target(api):
    target = HttpSink()
    cname = uid("c")
    cid = f"http:{cname}"
    try:
        api.ok("POST", "/connectors", 201, json=connector(
            cname, target.url(), resource_opts={"health_check_interval": "200ms"}))
        target.stop()
        c = wait_until(lambda: (lambda c: c if c["status"] == "disconnected" else None)(
            api.get(f"/connectors/{cid}")), what="disconnected")
        assert c["status_reason"] == "econnrefused"
        assert c["node_status"] == [{"node": api.name, "status": "disconnected",
                                     "status_reason": "econnrefused"}]
        target.start()
        wait_until(lambda: api.get(f"/connectors/{cid}")["status"] == "connected")
    finally:
        target.stop()
        api.api.delete(f"/connectors/{cid}")


def test_probes(api, sink):
    api.ok("POST", "/connectors_probe", 204, json=connector("p", sink.url()))
    r = api.api.post("/connectors_probe",
                     json=connector("p", f"http://127.0.0.1:{free_port()}"))
    assert r.status_code == 400 and r.json() == {
        "code": "TEST_FAILED", "message": "econnrefused", "reason": "econnrefused"}
    r = api.api.post("/connectors_probe", json=connector("p", "nope://x"))
    assert r.status_code == 400 and r.json()["code"] == "TEST_FAILED"
    # nothing was saved
    assert all(c["name"] != "p" for c in api.get("/connectors"))
    cname = uid("c")
    api.ok("POST", "/connectors", 201, json=connector(cname, sink.url()))
    api.ok("POST", "/actions_probe", 204, json=action("p", cname))
    r = api.api.post("/actions_probe", json=action("p", "missing"))
    assert r.status_code == 400 and r.json()["code"] == "TEST_FAILED"
    assert all(a["name"] != "p" for a in api.get("/actions"))
    api.ok("DELETE", f"/connectors/http:{cname}", 204)


def test_action_types(api):
    assert api.get("/action_types") == ["http", "mqtt"]


def test_openapi_lists_only_what_is_built(api):
    """The document has the paths built: the v2 API, the v1 /bridges* and emqpy's dead
    letters."""
    doc = api.client().get("/api-docs/swagger.json", auth=("admin", "public")).json()
    ours = {p for p in doc["paths"]
            if p.split("/")[1] in ("connectors", "connectors_probe", "actions", "actions_probe",
                                   "action_types", "sources", "sources_probe", "source_types",
                                   "bridges", "bridges_probe")
            or p.startswith(("/nodes/{node}/connectors", "/nodes/{node}/actions",
                             "/nodes/{node}/sources", "/nodes/{node}/bridges"))}
    assert ours == {
        "/connectors", "/connectors/{id}", "/connectors/{id}/enable/{enable}",
        "/connectors/{id}/{operation}", "/nodes/{node}/connectors/{id}/{operation}",
        "/connectors_probe", "/actions", "/actions/{id}", "/actions/{id}/enable/{enable}",
        "/actions/{id}/metrics", "/actions/{id}/metrics/reset", "/actions/{id}/{operation}",
        "/nodes/{node}/actions/{id}/{operation}", "/actions_probe", "/action_types",
        "/sources", "/sources/{id}", "/sources/{id}/enable/{enable}", "/sources/{id}/metrics",
        "/sources/{id}/metrics/reset", "/sources/{id}/{operation}",
        "/nodes/{node}/sources/{id}/{operation}", "/sources_probe", "/source_types",
        "/bridges", "/bridges/{id}", "/bridges/{id}/enable/{enable}", "/bridges/{id}/metrics",
        "/bridges/{id}/metrics/reset", "/bridges/{id}/{operation}",
        "/nodes/{node}/bridges/{id}/{operation}", "/bridges_probe",
        "/actions/{id}/dead_letters", "/actions/{id}/dead_letters/retry",
        "/actions/{id}/dead_letters/{letter_id}"}
    ext = doc["paths"]["/actions/{id}/dead_letters"]["get"]
    assert ext["x-emqpy-extension"] is True and ext["tags"] == ["Actions"]
    assert "emqpy extension" in ext["summary"]
    post = doc["paths"]["/actions"]["post"]["requestBody"]["content"]["application/json"]
    assert post["schema"] == {"oneOf": [
        {"$ref": "#/components/schemas/bridge_http.post_bridge_v2"},
        {"$ref": "#/components/schemas/bridge_mqtt_publisher.post_bridge_v2"}]}


def test_documented_bodies_accept_real_ones(api):
    import jsonschema
    doc = api.client().get("/api-docs/swagger.json", auth=("admin", "public")).json()
    cases = [("/connectors", "post", connector("c1", "http://h:80/x", pool_size=2,
                                               ssl={"enable": True, "verify": "verify_peer"})),
             ("/actions", "post", action("a1", "c1", body="${payload}",
                                         headers={"x": "${clientid}"})),
             ("/actions/{id}", "put", {"connector": "c1", "parameters": {"method": "get"},
                                       "resource_opts": {"request_ttl": "infinity"}}),
             ("/connectors/{id}", "put", {"url": "https://h", "pool_size": 4}),
             ("/connectors", "post", {"type": "mqtt", "name": "m1", "server": "h:1883",
                                      "proto_ver": "v5", "password": "p", "keepalive": "60s"}),
             ("/actions", "post", {"type": "mqtt", "name": "m1", "connector": "m1",
                                   "parameters": {"topic": "t/${topic}", "qos": "${qos}",
                                                  "retain": True}}),
             ("/sources", "post", {"type": "mqtt", "name": "s1", "connector": "m1",
                                   "parameters": {"topic": "$share/g/t/#", "qos": 2}}),
             ("/sources/{id}", "put", {"connector": "m1", "parameters": {"topic": "t"}})]
    for path, method, body in cases:
        schema = doc["paths"][path][method]["requestBody"]["content"]["application/json"][
            "schema"]
        jsonschema.validate(body, {**schema, "components": doc["components"]},
                            cls=jsonschema.Draft7Validator)
