"""EMQX's v1 bridge API (/bridges*) and config root (`bridges`) over connectors + actions and
sources, against a started broker, a real HTTP server and Mosquitto (cases after
emqx_bridge_api_SUITE, emqx_bridge_v1_compatibility_layer_SUITE and emqx_bridge_mqtt_SUITE)."""
from __future__ import annotations

import json

import pytest

from emqpy.config import ConfigError
from emqpy.config.bridges_v1 import MQTT_BOTH
from emqpy.config.schema import validate_config
from support.mqttclient import MqttClient, uid
from support.servers import HttpSink, free_port
from support.waiting import wait_until


def webhook(name: str, url: str, **extra) -> dict:
    return {"type": "webhook", "name": name, "url": url, "method": "post",
            "body": "${payload}", "headers": {"Content-Type": "application/json"},
            "ssl": {"enable": False}, **extra}


def mqtt_bridge(name: str, mosq, **extra) -> dict:
    return {"type": "mqtt", "name": name, "server": f"127.0.0.1:{mosq.port}",
            "proto_ver": "v4", "username": "user1", "password": "secret",
            "resource_opts": {"health_check_interval": "200ms"}, **extra}


def test_webhook_bridge_is_a_connector_and_an_action(api, sink):
    name = uid("wh")
    bid = f"webhook:{name}"
    body = api.ok("POST", "/bridges", 201, json=webhook(name, sink.url("/path1")))
    assert (body["type"], body["name"], body["enable"]) == ("webhook", name, True)
    assert body["url"] == sink.url("/path1") and body["method"] == "post"
    assert body["status"] == "connected"
    assert body["node_status"] == [{"node": api.name, "status": "connected"}]
    # the v2 API sees both halves, under the bridge's name
    conn = api.get(f"/connectors/http:{name}")
    assert conn["url"] == sink.url("/path1") and conn["actions"] == [name]
    act = api.get(f"/actions/http:{name}")
    assert act["connector"] == name and act["parameters"]["body"] == "${payload}"
    assert act["parameters"]["path"] == "" and act["parameters"]["headers"] == {}
    assert [b["name"] for b in api.get("/bridges") if b["name"] == name] == [name]
    # a duplicate, and a name EMQX refuses
    r = api.api.post("/bridges", json=webhook(name, sink.url()))
    assert r.status_code == 400 and r.json() == {
        "code": "ALREADY_EXISTS", "message": "bridge already exists",
        "reason": "bridge already exists"}
    long = "a" * 256
    r = api.api.post("/bridges", json=webhook(long, sink.url()))
    assert r.status_code == 400 and long in r.json()["message"]

    # a rule naming the v1 bridge delivers through it
    topic = uid("t")
    rule = api.ok("POST", "/rules", 201, json={
        "sql": f'SELECT * FROM "{topic}/#"', "actions": [bid]})
    sink.clear()
    pub = MqttClient(api.host, api.port, uid("p")).connect()
    pub.publish(f"{topic}/1", b"my msg", qos=1)
    got = wait_until(sink.requests, what="the webhook request")
    assert got[0]["path"] == "/path1" and got[0]["body"] == "my msg"
    wait_until(lambda: api.get(f"/bridges/{bid}/metrics")["metrics"]["success"] == 1)

    # PUT changes the URL (and so the connector); the same rule now reaches /path2
    put = api.ok("PUT", f"/bridges/{bid}", json=webhook(name, sink.url("/path2")))
    assert put["url"] == sink.url("/path2")
    assert api.get(f"/connectors/http:{name}")["url"] == sink.url("/path2")
    sink.clear()
    pub.publish(f"{topic}/2", b"again", qos=1)
    got = wait_until(sink.requests, what="the second request")
    assert got[0]["path"] == "/path2"
    r = api.api.put(f"/bridges/{bid}", json={"method": "post"})  # url missing
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
    r = api.api.put(f"/bridges/{bid}", json=webhook(name, "htpp://localhost:12341234/foo"))
    assert r.status_code == 400

    # a rule uses it: EMQX's 400 with the rule ids, then also_delete_dep_actions
    r = api.api.delete(f"/bridges/{bid}")
    assert r.status_code == 400 and r.json()["rules"] == [rule["id"]]
    assert r.json()["message"] == "Cannot delete bridge while active rules are depending on it"
    api.ok("DELETE", f"/bridges/{bid}?also_delete_dep_actions=true", 204)
    assert api.get(f"/rules/{rule['id']}")["actions"] == []
    # both halves are gone
    for path in (f"/bridges/{bid}", f"/actions/http:{name}", f"/connectors/http:{name}"):
        assert api.api.get(path).status_code == 404, path
    r = api.api.put(f"/bridges/{bid}", json=webhook(name, sink.url()))
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    r = api.api.delete("/bridges/foo")
    assert r.status_code == 404 and r.json()["message"].startswith("Invalid bridge ID")
    api.ok("DELETE", f"/rules/{rule['id']}", 204)
    pub.disconnect()


def test_broken_target_and_operations(api, sink):
    name = uid("wh")
    bid = f"webhook:{name}"
    broken = f"http://127.0.0.1:{free_port()}/foo"
    body = api.ok("POST", "/bridges", 201, json=webhook(
        name, broken, resource_opts={"health_check_interval": "200ms"}))
    assert body["status"] == "disconnected"
    assert body["status_reason"] == "econnrefused"
    assert body["node_status"] == [{"node": api.name, "status": "disconnected",
                                    "status_reason": "econnrefused"}]
    api.ok("PUT", f"/bridges/{bid}", json=webhook(
        name, sink.url(), resource_opts={"health_check_interval": "200ms"}))
    wait_until(lambda: api.get(f"/bridges/{bid}")["status"] == "connected")
    # stop / start / restart, also on the node
    api.ok("POST", f"/bridges/{bid}/stop", 204)
    assert api.get(f"/bridges/{bid}")["status"] == "stopped"
    assert api.get(f"/actions/http:{name}")["status"] == "disconnected"
    api.ok("POST", f"/bridges/{bid}/start", 204)
    assert api.get(f"/bridges/{bid}")["status"] == "connected"
    api.ok("POST", f"/nodes/{api.name}/bridges/{bid}/restart", 204)
    assert api.get(f"/bridges/{bid}")["status"] == "connected"
    assert api.api.post(f"/bridges/{bid}/pause").status_code == 400
    assert api.api.post(f"/nodes/nope@host/bridges/{bid}/start").status_code == 404
    assert api.api.post(f"/bridges/webhook:{uid('none')}/start").status_code == 404
    # enable/disable takes both halves along
    api.ok("PUT", f"/bridges/{bid}/enable/false", 204)
    assert api.get(f"/bridges/{bid}")["enable"] is False
    assert api.get(f"/actions/http:{name}")["enable"] is False
    r = api.api.post(f"/bridges/{bid}/start")
    assert r.status_code == 400 and r.json()["message"] == \
        "Forbidden operation, bridge not enabled"
    api.ok("PUT", f"/bridges/{bid}/enable/true", 204)
    assert api.get(f"/actions/http:{name}")["enable"] is True
    wait_until(lambda: api.get(f"/bridges/{bid}")["status"] == "connected")
    # metrics and their reset
    api.call(lambda: api.broker.bridges.send(f"http:{name}", {"payload": "x"}, {}))
    wait_until(lambda: api.get(f"/bridges/{bid}/metrics")["metrics"]["matched"] == 1)
    m = api.get(f"/bridges/{bid}/metrics")
    assert m["node_metrics"][0]["node"] == api.name
    api.ok("PUT", f"/bridges/{bid}/metrics/reset", 204)
    assert api.get(f"/bridges/{bid}/metrics")["metrics"]["matched"] == 0
    api.ok("DELETE", f"/bridges/{bid}", 204)


def test_local_topics_feed_the_bridge_without_a_rule(api, sink, mosquitto):
    """A webhook's `local_topic` and an MQTT egress's `local.topic` (EMQX's
    on_message_publish): what is published there goes out with no rule; $SYS does not."""
    wh, eg = uid("wh"), uid("eg")
    topic = uid("lt")
    api.ok("POST", "/bridges", 201, json=webhook(wh, sink.url("/lt"),
                                                 local_topic=f"{topic}/http/#"))
    assert api.get(f"/bridges/webhook:{wh}")["local_topic"] == f"{topic}/http/#"
    api.ok("POST", "/bridges", 201, json=mqtt_bridge(eg, mosquitto, egress={
        "local": {"topic": f"{topic}/mqtt/#"},
        "remote": {"topic": "fwd/${topic}", "payload": "${payload}|${clientid}"}}))
    assert api.get(f"/bridges/mqtt:{eg}")["egress"]["local"] == {"topic": f"{topic}/mqtt/#"}
    wait_until(lambda: api.get(f"/bridges/mqtt:{eg}")["status"] == "connected")
    remote = MqttClient("127.0.0.1", mosquitto.port, uid("rs"), version=4).connect()
    remote.subscribe("fwd/#", qos=1)
    sink.clear()
    pub_id = uid("p")
    pub = MqttClient(api.host, api.port, pub_id).connect()
    pub.publish(f"{topic}/http/1", b"to http", qos=1)
    pub.publish(f"{topic}/mqtt/1", b"to mqtt", qos=1)
    pub.publish(f"{topic}/other", b"nowhere", qos=1)
    got = wait_until(sink.requests, what="the webhook request")
    assert [(r["path"], r["body"]) for r in got] == [("/lt", "to http")]
    m = remote.get()
    assert (m.topic, m.payload) == (f"fwd/{topic}/mqtt/1", f"to mqtt|{pub_id}".encode())
    # disabled: nothing more goes out
    api.ok("PUT", f"/bridges/webhook:{wh}/enable/false", 204)
    pub.publish(f"{topic}/http/2", b"late", qos=1)
    api.ok("PUT", f"/bridges/webhook:{wh}/enable/true", 204)
    pub.publish(f"{topic}/http/3", b"back", qos=1)
    wait_until(lambda: len(sink.requests()) == 2, what="the request after re-enabling")
    assert sink.requests()[1]["body"] == "back"
    for bid in (f"webhook:{wh}", f"mqtt:{eg}"):
        api.ok("DELETE", f"/bridges/{bid}", 204)
    assert api.call(lambda: api.broker.bridges.local_topics.routes) == []
    pub.disconnect()
    remote.disconnect()


def test_probe(api, sink):
    api.ok("POST", "/bridges_probe", 204, json=webhook("p", sink.url()))
    r = api.api.post("/bridges_probe", json=webhook("p", f"http://127.0.0.1:{free_port()}"))
    assert r.status_code == 400 and r.json()["code"] == "TEST_FAILED"
    r = api.api.post("/bridges_probe", json={"type": "mqtt", "name": "p",
                                              "server": "127.0.0.1:1"})
    assert r.status_code == 400 and r.json()["code"] == "TEST_FAILED"
    assert all(b["name"] != "p" for b in api.get("/bridges"))
    assert all(c["name"] != "p" for c in api.get("/connectors"))


def test_v2_entries_v1_cannot_show(api, sink):
    """Two actions on one connector: neither is a v1 bridge (EMQX's non-compatible case)."""
    cname, a1, a2 = uid("c"), uid("a"), uid("a")
    api.ok("POST", "/connectors", 201, json={"type": "http", "name": cname, "url": sink.url()})
    for a in (a1, a2):
        api.ok("POST", "/actions", 201, json={"type": "http", "name": a, "connector": cname,
                                             "parameters": {}})
    listed = {b["name"] for b in api.get("/bridges")}
    assert a1 not in listed and a2 not in listed
    assert api.api.get(f"/bridges/webhook:{a1}").status_code == 404
    r = api.api.post("/bridges", json=webhook(a1, sink.url()))
    assert r.status_code == 400 and r.json() == {
        "code": "ALREADY_EXISTS",
        "message": "bridge already exists as non Bridge V1 compatible action",
        "reason": "bridge already exists as non Bridge V1 compatible action"}
    r = api.api.put(f"/bridges/webhook:{a1}", json=webhook(a1, sink.url()))
    assert r.status_code == 400 and r.json()["code"] == "ALREADY_EXISTS"
    for method, path in (("DELETE", f"/bridges/webhook:{a1}"),
                         ("PUT", f"/bridges/webhook:{a1}/enable/false")):
        r = api.api.request(method, path)
        assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST", path
    # one action left alone on its connector is a v1 bridge again
    api.ok("DELETE", f"/actions/http:{a2}", 204)
    assert api.get(f"/bridges/webhook:{a1}")["url"] == sink.url()
    # a connector already named as the bridge: the new connector is NAME_2
    r = api.api.post("/bridges", json=webhook(cname, sink.url()))
    assert r.status_code == 201
    assert api.get(f"/actions/http:{cname}")["connector"] == f"{cname}_2"
    api.ok("DELETE", f"/bridges/webhook:{cname}", 204)
    assert api.api.get(f"/connectors/http:{cname}_2").status_code == 404
    api.ok("DELETE", f"/bridges/webhook:{a1}", 204)
    assert api.api.get(f"/connectors/http:{cname}").status_code == 404


def test_mqtt_bridge_egress(api, mosquitto):
    """egress: an mqtt connector + action; a rule's messages reach the remote broker."""
    name = uid("eg")
    bid = f"mqtt:{name}"
    body = api.ok("POST", "/bridges", 201, json=mqtt_bridge(name, mosquitto, egress={
        "pool_size": 2, "remote": {"topic": "remote/${topic}", "qos": 1,
                                   "payload": "${payload}"}}))
    assert body["password"] == "******"
    assert body["egress"]["pool_size"] == 2
    assert body["egress"]["remote"]["topic"] == "remote/${topic}"
    assert "ingress" not in body
    assert api.get(f"/connectors/mqtt:{name}")["pool_size"] == 2
    assert api.get(f"/actions/mqtt:{name}")["parameters"]["topic"] == "remote/${topic}"
    stored = api.call(lambda: api.broker.config.connectors.mqtt[name].password)
    assert stored == "secret"
    wait_until(lambda: api.get(f"/bridges/{bid}")["status"] == "connected")
    sub = MqttClient("127.0.0.1", mosquitto.port, uid("rs"), version=4).connect()
    sub.subscribe("remote/#", qos=1)
    topic = uid("t")
    rule = api.ok("POST", "/rules", 201, json={
        "sql": f'SELECT * FROM "{topic}/#"', "actions": [bid]})
    pub = MqttClient(api.host, api.port, uid("p")).connect()
    pub.publish(f"{topic}/x", b"out", qos=1)
    m = sub.get()
    assert (m.topic, m.payload) == (f"remote/{topic}/x", b"out")
    # a PUT that sends the masked password back keeps it
    api.ok("PUT", f"/bridges/{bid}", json={
        **mqtt_bridge(name, mosquitto, password="******"),
        "egress": {"remote": {"topic": "remote2/${topic}", "qos": 1}}})
    assert api.call(lambda: api.broker.config.connectors.mqtt[name].password) == "secret"
    assert api.get(f"/bridges/{bid}")["egress"]["remote"]["topic"] == "remote2/${topic}"
    api.ok("DELETE", f"/rules/{rule['id']}", 204)
    api.ok("DELETE", f"/bridges/{bid}", 204)
    assert api.api.get(f"/connectors/mqtt:{name}").status_code == 404
    pub.disconnect()
    sub.disconnect()


def test_mqtt_bridge_ingress(api, mosquitto):
    """ingress: an mqtt connector + source; remote messages are published locally at
    `local.topic` and feed the rules `FROM "$bridges/mqtt:NAME"`."""
    name = uid("in")
    bid = f"mqtt:{name}"
    local = uid("local")
    body = api.ok("POST", "/bridges", 201, json=mqtt_bridge(name, mosquitto, ingress={
        "remote": {"topic": "remote/#", "qos": 1},
        "local": {"topic": f"{local}/${{topic}}", "qos": "${qos}", "payload": "${payload}"}}))
    assert body["ingress"]["remote"] == {"topic": "remote/#", "qos": 1}
    assert body["ingress"]["local"]["topic"] == f"{local}/${{topic}}"
    assert "egress" not in body
    assert api.get(f"/sources/mqtt:{name}")["parameters"]["topic"] == "remote/#"
    assert api.api.get(f"/actions/mqtt:{name}").status_code == 404
    ruled = uid("ruled")
    rule = api.ok("POST", "/rules", 201, json={
        "sql": f'SELECT payload FROM "$bridges/{bid}"',
        "actions": [{"function": "republish", "args": {"topic": ruled,
                                                        "payload": "${payload}"}}]})
    sub = MqttClient(api.host, api.port, uid("sub")).connect()
    sub.subscribe(f"{local}/#", qos=1)
    sub.subscribe(ruled, qos=1)
    wait_until(lambda: api.get(f"/bridges/{bid}")["status"] == "connected")
    wait_until(lambda: api.get(f"/sources/mqtt:{name}")["status"] == "connected")
    pub = MqttClient("127.0.0.1", mosquitto.port, uid("rp"), version=4).connect()
    pub.publish("remote/a", b"in", qos=1)
    got = {m.topic: m for m in (sub.get(), sub.get())}
    assert got[f"{local}/remote/a"].payload == b"in"
    assert got[f"{local}/remote/a"].qos == 1
    assert got[ruled].payload == b"in"
    assert api.get(f"/bridges/{bid}/metrics")["metrics"]["received"] == 1
    # ingress and egress together cannot be one bridge (EMQX's 400)
    r = api.api.put(f"/bridges/{bid}", json=mqtt_bridge(name, mosquitto, ingress={
        "remote": {"topic": "a"}}, egress={"remote": {"topic": "b"}}))
    assert r.status_code == 400 and MQTT_BOTH in r.json()["message"]
    api.ok("DELETE", f"/rules/{rule['id']}", 204)
    api.ok("DELETE", f"/bridges/{bid}", 204)
    assert api.api.get(f"/sources/mqtt:{name}").status_code == 404
    assert api.api.get(f"/connectors/mqtt:{name}").status_code == 404
    pub.disconnect()
    sub.disconnect()


def test_bridges_root_is_converted_as_emqx_does():
    cfg = validate_config({
        "connectors": {"mqtt": {"m2": {"server": "h:1"}, "m1": {"server": "old:1"}}},
        "sources": {"mqtt": {"other": {"connector": "m2", "parameters": {"topic": "x"}}}},
        "bridges": {
            "webhook": {"w": {"url": "http://h:8080/x", "method": "put", "body": "${payload}",
                              "local_topic": "l/#",
                              "resource_opts": {"worker_pool_size": 2,
                                                "health_check_interval": "5s"}}},
            "mqtt": {"m1": {"server": "h:1883", "egress": {
                         "pool_size": 3, "local": {"topic": "l/#"},
                         "remote": {"topic": "r/${topic}", "qos": 1}}},
                     "m2": {"server": "h:1883", "ingress": {
                         "remote": {"topic": "r/#"}, "local": {"topic": "loc/${topic}"}}}}}})
    assert cfg.connectors.http["w"].url == "http://h:8080/x"
    assert cfg.connectors.http["w"].resource_opts.health_check_interval == 5.0
    w = cfg.actions.http["w"]
    assert (w.connector, w.parameters.method, w.parameters.body, w.local_topic) == \
        ("w", "put", "${payload}", "l/#")
    assert w.resource_opts.worker_pool_size == 2
    m1 = cfg.actions.mqtt["m1"]
    assert (m1.connector, m1.parameters.topic, m1.local_topic) == ("m1", "r/${topic}", "l/#")
    assert cfg.connectors.mqtt["m1"].pool_size == 3
    # m1 was nobody's: the bridge's own from an earlier start (saved in cluster.hocon), so
    # it is replaced; m2 is another source's: EMQX's NAME_2
    assert cfg.connectors.mqtt["m1"].server == "h:1883"
    assert cfg.sources.mqtt["m2"].connector == "m2_2"
    assert cfg.sources.mqtt["m2"].parameters.local.topic == "loc/${topic}"
    assert cfg.connectors.mqtt["m2_2"].server == "h:1883"
    assert "bridges" not in (cfg.model_extra or {})
    with pytest.raises(ConfigError) as e:
        validate_config({"bridges": {"mqtt": {"b": {"server": "h:1", "ingress": {
            "remote": {"topic": "a"}}, "egress": {"remote": {"topic": "b"}}}}}})
    assert "Upgrade not supported" in str(e.value)
    with pytest.raises(ConfigError):
        validate_config({"bridges": {"kafka": {"k": {}}}})


def test_bridges_from_the_config_file(make_broker):
    sink = HttpSink()
    try:
        node = make_broker({"bridges": {"webhook": {"w": {
            "url": sink.url("/in"), "body": "${payload}"}}}})
        assert node.get("/connectors/http:w")["status"] == "connected"
        b = node.get("/bridges/webhook:w")
        assert (b["type"], b["url"], b["status"]) == ("webhook", sink.url("/in"), "connected")
        rule = node.ok("POST", "/rules", 201, json={
            "sql": 'SELECT * FROM "cfg/#"', "actions": ["webhook:w"]})
        pub = MqttClient(node.host, node.port, uid("p")).connect()
        pub.publish("cfg/1", json.dumps({"k": 1}).encode(), qos=1)
        got = wait_until(sink.requests, what="the request")
        assert got[0]["path"] == "/in" and json.loads(got[0]["body"]) == {"k": 1}
        node.ok("DELETE", f"/rules/{rule['id']}", 204)
        pub.disconnect()
        # another connector made over the API saves the connectors root, w's included; after
        # a restart w is still one connector + one action
        node.ok("POST", "/connectors", 201, json={"type": "http", "name": "other",
                                                  "url": sink.url()})
        node.restart()
        assert sorted(c["name"] for c in node.get("/connectors")) == ["other", "w"]
        assert node.get("/actions/http:w")["connector"] == "w"
        assert node.get("/bridges/webhook:w")["url"] == sink.url("/in")
    finally:
        sink.stop()
