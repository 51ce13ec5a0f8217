"""The MQTT connector and action end to end, against a real Mosquitto: a rule's output published
to the remote broker with the action's topic/qos/retain/payload templates, the connector's
status and status_reason, an outage of the remote broker (messages wait and are delivered when
it returns), the client ids EMQX gives the pool."""
from __future__ import annotations

import json


from emqpy.bridge.mqtt import client_id
from support.mqttclient import MqttClient, uid
from support.waiting import wait_until

from .test_http_action import metrics


def connector(api, mosq, **conf) -> str:
    name = uid("mc")
    body = {"type": "mqtt", "name": name, "server": f"127.0.0.1:{mosq.port}",
            "pool_size": 2, "resource_opts": {"health_check_interval": "200ms"}, **conf}
    api.ok("POST", "/connectors", 201, json=body)
    wait_until(lambda: api.get(f"/connectors/mqtt:{name}")["status"] == "connected",
               what="the connector to connect")
    return name


def action(api, cname: str, **params) -> str:
    name = uid("ma")
    api.ok("POST", "/actions", 201, json={
        "type": "mqtt", "name": name, "connector": cname, "parameters": params,
        "resource_opts": {"health_check_interval": "200ms"}})
    return f"mqtt:{name}"


def remote_subscriber(mosq, topic: str) -> MqttClient:
    sub = MqttClient("127.0.0.1", mosq.port, uid("rs"), version=4).connect()
    sub.subscribe(topic, qos=1)
    return sub


def test_rule_output_is_published_to_the_remote_broker(api, mosquitto):
    cname = connector(api, mosquitto)
    aid = action(api, cname, topic="remote/${topic}", qos="${qos}", retain=False,
                 payload="${payload.v}|${clientid}|${missing}")
    plain = action(api, cname, topic="plain/out", qos=1)  # default payload: the whole output
    sub = remote_subscriber(mosquitto, "remote/#")
    sub.subscribe("plain/out", qos=1)
    topic = uid("r")
    rule = api.ok("POST", "/rules", 201, json={
        "sql": f'SELECT payload, topic, qos, clientid FROM "{topic}/#"', "actions": [aid, plain]})
    pub = MqttClient(api.host, api.port, uid("dev")).connect()
    pub.publish(f"{topic}/a", json.dumps({"v": 7}).encode(), qos=1)
    got = {m.topic: m for m in sub.get_many(2)}
    pub.disconnect()
    m = got[f"remote/{topic}/a"]
    assert m.payload == f"7|{pub.client_id}|".encode() and m.qos == 1
    whole = json.loads(got["plain/out"].payload)
    assert whole == {"payload": json.dumps({"v": 7}), "topic": f"{topic}/a", "qos": 1,
                     "clientid": pub.client_id}
    wait_until(lambda: metrics(api, aid)["success"] == 1 and metrics(api, plain)["success"] == 1,
               what="the actions' success")
    assert api.get(f"/actions/{aid}")["rules"] == [rule["id"]]
    conn = api.get(f"/connectors/mqtt:{cname}")
    assert conn["status"] == "connected" and conn["actions"] == sorted(
        [aid.split(":")[1], plain.split(":")[1]])
    sub.disconnect()


def test_retain_and_qos_templates(api, mosquitto):
    cname = connector(api, mosquitto, proto_ver="v5")
    aid = action(api, cname, topic="kept/${t}", qos=0, retain="${r}", payload="${p}")
    api.call(lambda: api.broker.bridges.send(aid, {"t": "x", "r": True, "p": "hello"}, {}))
    wait_until(lambda: metrics(api, aid)["success"] == 1, what="the publish")
    # retained on the remote broker: a later subscriber gets it
    sub = MqttClient("127.0.0.1", mosquitto.port, uid("late"), version=5).connect()
    sub.subscribe("kept/x", qos=1)
    m = sub.get()
    assert (m.payload, m.retain) == (b"hello", True)
    # a qos that is not 0..2 cannot be published: a final failure
    bad = action(api, cname, topic="t", qos="${q}")
    api.call(lambda: api.broker.bridges.send(bad, {"q": 7}, {}))
    wait_until(lambda: metrics(api, bad)["failed"] == 1, what="the failure")
    sub.disconnect()


def test_outage_of_the_remote_broker(api, mosquitto):
    cname = connector(api, mosquitto)
    aid = action(api, cname, topic="o/${n}", payload="${n}")
    mosquitto.stop(remove=False)
    cid = f"mqtt:{cname}"
    conn = wait_until(lambda: (lambda c: c if c["status"] != "connected" else None)(
        api.get(f"/connectors/{cid}")), what="the connector to see the outage")
    assert conn["status"] == "disconnected" and conn["status_reason"]
    assert api.get(f"/actions/{aid}")["status"] == "disconnected"
    n = 50
    api.call(lambda: [api.broker.bridges.send(aid, {"n": i}, {}) for i in range(n)])
    wait_until(lambda: metrics(api, aid)["retried"] >= 1, what="a retry")
    mosquitto.start()
    sub = None

    def subscribed():
        nonlocal sub
        try:
            sub = remote_subscriber(mosquitto, "o/#")
            return True
        except Exception:
            return False
    # subscribe as soon as Mosquitto is back; what the action sent before that is not lost to
    # the test: the buffer keeps it until delivered, and the count below is of successes
    wait_until(subscribed, what="a subscriber on the restarted Mosquitto")
    # what waited in the buffer is delivered after a retry: counted as retried.success
    wait_until(lambda: metrics(api, aid)["retried.success"] + metrics(api, aid)["success"] == n,
               timeout=30, what="every buffered message delivered")
    m = metrics(api, aid)
    assert (m["matched"], m["failed"], m["retried.failed"], m["dropped"], m["queuing"]) == \
        (n, 0, 0, 0, 0)
    wait_until(lambda: api.get(f"/connectors/{cid}")["status"] == "connected",
               what="the connector to reconnect")
    sub.disconnect()


def test_bad_server_and_masked_password(api, mosquitto):
    r = api.api.post("/connectors", json={"type": "mqtt", "name": uid("b"),
                                          "server": "mqtt://x:1883"})
    assert r.status_code == 400 and r.json()["code"] == "BAD_REQUEST"
    name = uid("p")
    api.ok("POST", "/connectors", 201, json={
        "type": "mqtt", "name": name, "server": f"127.0.0.1:{mosquitto.port}",
        "username": "u", "password": "secret"})
    got = api.get(f"/connectors/mqtt:{name}")
    assert got["password"] == "******" and got["username"] == "u"
    assert (got["proto_ver"], got["keepalive"], got["max_inflight"], got["pool_size"]) == \
        ("v4", "160s", 32, 8)
    # a PUT that sends the mask keeps the stored password
    got.pop("name"), got.pop("type")
    api.ok("PUT", f"/connectors/mqtt:{name}", 200, json=got)
    assert api.broker.config.connectors.mqtt[name].password == "secret"
    # a probe to a port nothing listens on fails with the reason
    from support.servers import free_port
    r = api.api.post("/connectors_probe", json={"type": "mqtt", "name": "x",
                                                "server": f"127.0.0.1:{free_port()}"})
    assert r.status_code == 400 and r.json()["code"] == "TEST_FAILED"
    r = api.api.post("/connectors_probe", json={"type": "mqtt", "name": "x",
                                                "server": f"127.0.0.1:{mosquitto.port}"})
    assert r.status_code == 204, r.text


def test_client_ids_as_emqx_makes_them():
    assert client_id(None, "c", "emqx@127.0.0.1", 1).startswith("c")
    assert len(client_id(None, "a_very_long_connector_name", "n@h", 3)) == 23
    assert client_id("pre-", "c", "n@h", 2).startswith("pre-")
    assert len(client_id("pre-", "c" * 40, "n@h", 2)) == 23
    long_prefix = "p" * 30
    assert client_id(long_prefix, "c", "n@h", 2).startswith(long_prefix + "c")
    assert client_id(None, "c", "n1@h", 1) != client_id(None, "c", "n2@h", 1)
