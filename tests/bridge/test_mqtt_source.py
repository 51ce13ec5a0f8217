"""The MQTT source end to end: a Mosquitto publisher -> the source's subscription -> a rule
`FROM "$bridges/mqtt:NAME"` -> republish -> an emqpy subscriber; EMQX's columns, the
`received` metric, a Mosquitto restart (reconnect and resubscribe), the /sources API."""
from __future__ import annotations

import json


from support.mqttclient import MqttClient, uid
from support.waiting import wait_until

from .test_mqtt_action import connector


def source(api, cname: str, topic: str, qos: int = 1) -> str:
    name = uid("src")
    got = api.ok("POST", "/sources", 201, json={
        "type": "mqtt", "name": name, "connector": cname,
        "parameters": {"topic": topic, "qos": qos},
        "resource_opts": {"health_check_interval": "200ms"}})
    assert got["type"] == "mqtt" and got["name"] == name
    return f"mqtt:{name}"


def received(api, sid: str) -> int:
    return api.get(f"/sources/{sid}/metrics")["metrics"]["received"]


def remote_publisher(mosq) -> MqttClient:
    return MqttClient("127.0.0.1", mosq.port, uid("rp"), version=4).connect()


def test_remote_messages_feed_rules_and_are_republished(api, mosquitto):
    cname = connector(api, mosquitto)
    sid = source(api, cname, "remote/#")
    local = uid("local")
    rule = api.ok("POST", "/rules", 201, json={
        "sql": f'SELECT * FROM "$bridges/{sid}"',
        "actions": [{"function": "republish", "args": {
            "topic": f"{local}/${{topic}}", "qos": 1,
            "payload": "${payload}|${qos}|${retain}|${server}|${id}|${message_received_at}"}}]})
    sub = MqttClient(api.host, api.port, uid("sub")).connect()
    sub.subscribe(f"{local}/#", qos=1)
    wait_until(lambda: api.get(f"/sources/{sid}")["status"] == "connected",
               what="the source to be connected")
    pub = remote_publisher(mosquitto)
    pub.publish("remote/a", b"hello", qos=1)
    pub.publish("elsewhere", b"not subscribed", qos=1)
    m = sub.get()
    assert m.topic == f"{local}/remote/a"
    payload, qos, retain, server, mid, at = m.payload.decode().split("|")
    assert (payload, qos, retain) == ("hello", "1", "false")
    assert server == f"127.0.0.1:{mosquitto.port}" and len(mid) == 32 and int(at) > 0
    sub.expect_none()
    assert received(api, sid) == 1
    assert api.get(f"/sources/{sid}")["rules"] == [rule["id"]]
    assert api.get(f"/rules/{rule['id']}/metrics")["metrics"]["passed"] == 1
    conn = api.get(f"/connectors/mqtt:{cname}")
    assert conn["sources"] == [sid.split(":")[1]]
    # the connector cannot go while the source uses it
    r = api.api.delete(f"/connectors/mqtt:{cname}")
    assert r.status_code == 400, r.text
    pub.disconnect()
    sub.disconnect()


def test_columns_of_a_v5_message(api, mosquitto):
    cname = connector(api, mosquitto, proto_ver="v5")
    sid = source(api, cname, "cols/+", qos=2)
    local = uid("cols")
    api.ok("POST", "/rules", 201, json={
        "sql": f'SELECT * FROM "$bridges/{sid}"',
        "actions": [{"function": "republish", "args": {"topic": local, "payload": "${.}"}}]})
    sub = MqttClient(api.host, api.port, uid("sub")).connect()
    sub.subscribe(local, qos=1)
    pub = MqttClient("127.0.0.1", mosquitto.port, uid("rp"), version=5).connect()
    pub.publish("cols/x", json.dumps({"k": 1}).encode(), qos=2)
    cols = json.loads(sub.get().payload)
    assert {k: cols[k] for k in ("topic", "qos", "dup", "retain", "payload")} == \
        {"topic": "cols/x", "qos": 2, "dup": False, "retain": False,
         "payload": json.dumps({"k": 1})}
    assert set(cols) >= {"id", "server", "pub_props", "message_received_at"}
    pub.disconnect()
    sub.disconnect()


def test_the_remote_broker_restarting_is_survived(api, mosquitto):
    cname = connector(api, mosquitto)
    sid = source(api, cname, "again/#")
    local = uid("again")
    api.ok("POST", "/rules", 201, json={
        "sql": f'SELECT payload FROM "$bridges/{sid}"',
        "actions": [{"function": "republish", "args": {"topic": local,
                                                       "payload": "${payload}"}}]})
    sub = MqttClient(api.host, api.port, uid("sub")).connect()
    sub.subscribe(local, qos=1)
    mosquitto.stop(remove=False)
    wait_until(lambda: api.get(f"/sources/{sid}")["status"] != "connected",
               what="the source to see the outage")
    mosquitto.start()
    wait_until(lambda: api.get(f"/sources/{sid}")["status"] == "connected", timeout=20,
               what="the source to reconnect")
    pub = remote_publisher(mosquitto)
    # subscriptions are restored right after CONNACK; publish until the first arrives
    wait_until(lambda: (pub.publish("again/1", b"back", qos=1), sub.drain())[1],
               interval=0.2, what="a message through the resubscribed source")
    assert received(api, sid) >= 1
    pub.disconnect()
    sub.disconnect()


def test_sources_api_shapes(api, mosquitto):
    cname = connector(api, mosquitto)
    assert api.get("/source_types") == ["mqtt"]
    sid = source(api, cname, "api/#")
    name = sid.split(":")[1]
    r = api.api.post("/sources", json={"type": "mqtt", "name": name, "connector": cname,
                                       "parameters": {"topic": "x"}})
    assert r.status_code == 400 and r.json()["code"] == "ALREADY_EXISTS"
    r = api.api.post("/sources", json={"type": "mqtt", "name": uid("s"), "connector": "nope",
                                       "parameters": {"topic": "x"}})
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
    r = api.api.post("/sources", json={"type": "mqtt", "name": uid("s"), "connector": cname,
                                       "parameters": {"topic": "a/#/b"}})
    assert r.status_code == 400
    got = api.get(f"/sources/{sid}")
    assert got["parameters"] == {"topic": "api/#", "qos": 1} and got["enable"] is True
    assert got["node_status"][0]["status"] == got["status"]
    assert any(s["name"] == name for s in api.get("/sources"))
    got = api.ok("PUT", f"/sources/{sid}", 200, json={"connector": cname,
                                                     "parameters": {"topic": "api2/#"}})
    assert got["parameters"]["topic"] == "api2/#"
    api.ok("PUT", f"/sources/{sid}/enable/false", 204)
    assert api.get(f"/sources/{sid}")["enable"] is False
    r = api.api.post(f"/sources/{sid}/start")
    assert r.status_code == 400
    api.ok("PUT", f"/sources/{sid}/enable/true", 204)
    api.ok("POST", f"/sources/{sid}/start", 204)
    api.ok("POST", f"/nodes/{api.broker.node_name}/sources/{sid}/start", 204)
    assert api.api.post(f"/nodes/nope/sources/{sid}/start").status_code == 404
    m = api.get(f"/sources/{sid}/metrics")
    assert m["metrics"]["received"] == 0 and m["node_metrics"][0]["node"] == api.broker.node_name
    api.ok("PUT", f"/sources/{sid}/metrics/reset", 204)
    api.ok("POST", "/sources_probe", 204, json={"type": "mqtt", "name": "p", "connector": cname,
                                                "parameters": {"topic": "p"}})
    r = api.api.post("/sources_probe", json={"type": "mqtt", "name": "p", "connector": "none",
                                             "parameters": {"topic": "p"}})
    assert r.status_code == 400 and r.json()["code"] == "TEST_FAILED"
    assert api.api.get("/sources/mqtt:missing").status_code == 404
    assert api.api.get("/sources/bad-id").status_code == 404
    rule = api.ok("POST", "/rules", 201, json={"sql": f'SELECT * FROM "$bridges/{sid}"',
                                               "actions": []})
    r = api.api.delete(f"/sources/{sid}")
    assert r.status_code == 400 and r.json()["rules"] == [rule["id"]]
    api.ok("DELETE", f"/sources/{sid}", 204, params={"also_delete_dep_actions": "true"})
    assert api.api.get(f"/sources/{sid}").status_code == 404
    assert api.broker.config.sources.mqtt.get(name) is None
