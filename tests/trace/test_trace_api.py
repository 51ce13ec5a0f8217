"""The /trace API against a started broker, with real MQTT clients whose traced packets are read
back over the API (cases after EMQX's emqx_mgmt_api_trace_SUITE and emqx_trace_SUITE)."""
from __future__ import annotations

import io
import json
import time
import zipfile

import pytest

from support.waiting import wait_until

pytestmark = pytest.mark.emqpy_only


@pytest.fixture(autouse=True)
def _no_traces(broker):
    broker.ok("DELETE", "/trace", 204)
    yield
    broker.ok("DELETE", "/trace", 204)


def create(node, status=200, **body):
    return node.ok("POST", "/trace", status, json=body)


def whole_log(node, name: str) -> str:
    return node.get(f"/trace/{name}/log", params={"bytes": 10_000_000})["items"]


def test_create_list_stop_delete_clear(broker):
    assert broker.get("/trace") == []
    err = broker.ok("POST", "/trace", 400, json={})
    assert err["code"] == "BAD_REQUEST"
    made = create(broker, name="test-name", type="topic", topic="/x/y/z")
    assert made["name"] == "test-name" and made["topic"] == "/x/y/z"
    assert made["status"] == "running" and made["formatter"] == "text"
    assert made["payload_encode"] == "text"
    [listed] = broker.get("/trace")
    assert listed["name"] == "test-name" and listed["status"] == "running"

    assert broker.ok("PUT", "/trace/test-name/stop") == {"enable": False, "name": "test-name"}
    err = broker.ok("PUT", "/trace/test-name-not-found/stop", 404)
    assert err["code"] == "NOT_FOUND"
    [listed] = broker.get("/trace")
    assert listed["status"] == "stopped" and listed["type"] == "topic"
    assert set(listed["log_size"]) == {broker.name}
    assert listed["topic"] == "/x/y/z" and listed["start_at"] and listed["end_at"]

    assert broker.ok("DELETE", "/trace/test-name", 204) is None
    err = broker.ok("DELETE", "/trace/test-name", 404)
    assert (err["code"], err["message"]) == ("NOT_FOUND", "test-name NOT FOUND")
    assert broker.get("/trace") == []

    create(broker, name="test-name", type="topic", topic="/x/y/z")
    create(broker, name="rule_trace", type="ruleid", ruleid="rule_trace")
    assert len(broker.get("/trace")) == 2
    assert broker.ok("DELETE", "/trace", 204) is None
    assert broker.get("/trace") == []


def test_invalid_traces_are_refused_as_emqx_refuses_them(broker):
    def invalid(status, code, **body):
        err = broker.ok("POST", "/trace", status, json=body)
        assert err["code"] == code, err
        return err["message"]

    assert invalid(400, "BAD_REQUEST", name="/test", type="clientid", clientid="t")
    assert invalid(400, "BAD_REQUEST", name="x", type="nope", clientid="t")
    assert invalid(400, "INVALID_PARAMS", name="x", type="clientid") == \
        "required clientid field"
    assert invalid(400, "INVALID_PARAMS", name="x", type="topic", topic="#/#//") \
        .startswith("topic: #/#// invalid by")
    assert invalid(400, "INVALID_PARAMS", name="x", type="ip_address",
                   ip_address="test-name") == "ip address: einval"
    now = int(time.time())
    assert invalid(400, "INVALID_PARAMS", name="x", type="topic", topic="/x/y/z",
                   start_at=now, end_at=now - 1) == "end_at time has already passed"
    assert invalid(400, "INVALID_PARAMS", name="x", type="topic", topic="/x/y/z",
                   start_at=now + 10, end_at=now + 3) == "failed by start_at >= end_at"
    assert invalid(400, "INVALID_PARAMS", name="x", type="topic", topic="/x", start_at="soon")

    create(broker, name="name1", type="clientid", clientid="dev", start_at=now,
           end_at=now + 1800)
    assert invalid(409, "ALREADY_EXISTS", name="name1", type="clientid", clientid="other") \
        == "name1 Already Exists"
    assert invalid(409, "DUPLICATE_CONDITION", name="another", type="clientid", clientid="dev",
                   start_at=now, end_at=now + 60) == "name1 Duplication Condition"
    for i in range(2, 31):
        create(broker, name=f"name{i}", type="topic", topic=f"/x/y/{i}")
    assert invalid(400, "INVALID_PARAMS", name="name31", type="topic", topic="/x/y/31") \
        .startswith("The number of traces created has reached the maximum")
    broker.ok("DELETE", "/trace/name30", 204)
    create(broker, name="name31", type="topic", topic="/x/y/31")
    assert len(broker.get("/trace")) == 30


def test_default_times_and_rfc3339_input(broker):
    made = create(broker, name="dflt", type="clientid", clientid="good")
    [t] = broker.get("/trace")
    from emqpy.timefmt import parse_rfc3339
    start = parse_rfc3339(t["start_at"]).timestamp()
    end = parse_rfc3339(t["end_at"]).timestamp()
    assert end - start == 600 and abs(start - time.time()) < 5
    assert made["status"] == "running"
    create(broker, name="later", type="clientid", clientid="good2",
           start_at="2099-01-01T00:00:00Z", end_at="2099-01-02T00:00:00+00:00")
    later = next(t for t in broker.get("/trace") if t["name"] == "later")
    assert later["status"] == "waiting"
    assert parse_rfc3339(later["end_at"]).timestamp() - \
        parse_rfc3339(later["start_at"]).timestamp() == 86400
    # a waiting trace has no file yet: an empty log, no detail, nothing to download
    assert broker.get("/trace/later/log") == {"meta": {"position": 0, "bytes": 1000},
                                              "items": ""}
    assert broker.get("/trace/later/log_detail") == []
    assert broker.get("/trace/later/download", 404)["message"] == "Trace is empty"


def test_client_trace_reads_back_the_clients_packets(broker):
    create(broker, name="client1", type="clientid", clientid="traced-client")
    c = broker.mqtt("traced-client")
    c.subscribe("trace/t", qos=1)
    c.publish("trace/t", b"hello-trace", qos=1)
    assert c.get().payload == b"hello-trace"
    other = broker.mqtt("not-traced")
    other.publish("trace/other", b"from-other", qos=1)
    c.unsubscribe("trace/t")
    c.disconnect()
    wait_until(lambda: "emqx_connection_terminated" in whole_log(broker, "client1"))
    text = whole_log(broker, "client1")
    lines = text.splitlines()
    assert all(" [" in ln and "traced-client@127.0.0.1:" in ln for ln in lines), text
    want = [
        "msg: mqtt_packet_received, packet: CONNECT(Q0, R0, D0, ClientId=traced-client, "
        "ProtoName=MQTT, ProtoVsn=5, CleanStart=true, KeepAlive=60",
        "msg: mqtt_packet_sent, packet: CONNACK(Q0, R0, D0, AckFlags=0, ReasonCode=0)",
        "msg: mqtt_packet_received, packet: SUBSCRIBE(Q1, R0, D0, PacketId=1 "
        "TopicFilters=[trace/t(#{nl => 0,qos => 1,rap => 0,rh => 0})])",
        "[SUBSCRIBE] traced-client@",
        "msg: mqtt_packet_sent, packet: SUBACK(Q0, R0, D0, PacketId=1, ReasonCodes=[1])",
        "msg: mqtt_packet_received, packet: PUBLISH(Q1, R0, D0, Topic=trace/t, PacketId=2, "
        "Payload=hello-trace)",
        "msg: publish_to, topic: trace/t, payload: hello-trace",
        "msg: mqtt_packet_sent, packet: PUBLISH(Q1, R0, D0, Topic=trace/t, PacketId=1, "
        "Payload=hello-trace)",
        "msg: mqtt_packet_sent, packet: PUBACK(Q0, R0, D0, PacketId=2, ReasonCode=0)",
        "msg: mqtt_packet_received, packet: PUBACK(Q0, R0, D0, PacketId=1, ReasonCode=0)",
        "msg: unsubscribe, topic: trace/t",
        "msg: mqtt_packet_received, packet: DISCONNECT(Q0, R0, D0, ReasonCode=0)",
        "[SOCKET] traced-client@",
    ]
    pos = 0
    for piece in want:  # in this order
        found = text.find(piece, pos)
        assert found >= 0, (piece, text[pos:])
        pos = found
    assert "not-traced" not in text and "from-other" not in text

    # paged reading returns the same bytes, and the position of the end at the end
    size = len(text.encode())
    got, position = b"", 0
    while True:
        page = broker.get("/trace/client1/log", params={"bytes": 333, "position": position})
        assert page["meta"]["bytes"] == 333
        if not page["items"]:
            assert page["meta"]["position"] == size
            break
        got += page["items"].encode()
        position = page["meta"]["position"]
        assert position == len(got)
    assert got.decode() == text
    assert broker.get("/trace/client1/log", params={"position": size + 50})["meta"] == \
        {"position": size, "bytes": 1000}
    assert broker.get("/trace/client1/log", 400, params={"bytes": -1})["code"] == \
        "BAD_REQUEST"
    assert broker.get("/trace/client1/log", 404, params={"node": "nobody@nowhere"})
    assert broker.get("/trace/missing/log", 404)["message"] == "missing NOT FOUND"

    [detail] = broker.get("/trace/client1/log_detail")
    assert detail["node"] == broker.name and detail["size"] == size
    assert abs(detail["mtime"] - time.time()) < 60
    [listed] = broker.get("/trace")
    assert listed["log_size"] == {broker.name: size}

    r = broker.api.get("/trace/client1/download")
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-zip"
    assert r.headers["content-disposition"] == "attachment; filename=client1.zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    [entry] = z.namelist()
    day = time.strftime("%Y-%m-%d")
    assert entry == f"{broker.name}-trace_client1_{day}.log"
    assert z.read(entry).decode() == text
    assert (broker.data_dir / "trace" / f"trace_client1_{day}.log").is_file()


def test_topic_trace_sees_publishes_on_matching_topics(broker):
    create(broker, name="topic1", type="topic", topic="tt/+/x", payload_encode="hex")
    pub = broker.mqtt("topic-pub")
    sub = broker.mqtt("topic-sub")
    sub.subscribe("tt/#", qos=0)
    pub.publish("tt/a/x", b"\x01\x02ab", qos=1)
    pub.publish("tt/a/y", b"not-this", qos=1)
    sub.get_many(2)
    wait_until(lambda: "publish_to" in whole_log(broker, "topic1"))
    text = whole_log(broker, "topic1")
    [line] = text.splitlines()
    assert "[PUBLISH] topic-pub@127.0.0.1:" in line
    assert line.endswith("msg: publish_to, topic: tt/a/x, payload: 01026162")
    assert "mqtt_packet" not in text  # packets carry no topic: topic traces do not see them


def test_ip_trace_and_hidden_payload(broker):
    create(broker, name="ip1", type="ip_address", ip_address="127.0.0.1",
           payload_encode="hidden")
    c = broker.mqtt("ip-client")
    c.publish("ip/t", b"secret-payload", qos=1)
    c.disconnect()
    wait_until(lambda: "DISCONNECT" in whole_log(broker, "ip1"))
    text = whole_log(broker, "ip1")
    assert "ClientId=ip-client" in text
    assert "Topic=ip/t, PacketId=1, Payload=******" in text
    assert "payload: ******" in text and "secret-payload" not in text


def test_json_formatter(broker):
    create(broker, name="jsonfmt", type="topic", topic="/x/y/z", formatter="json")
    assert broker.get("/trace")[0]["formatter"] == "json"
    c = broker.mqtt("json-client")
    payloads = [b"log_this_message", b"\nlog\nthis\nmessage", b"\\\nlog\n_\\n_this\nmessage\\",
                b'"log_this_message"']
    for p in payloads:
        c.publish("/x/y/z", p, qos=2)
    wait_until(lambda: len(whole_log(broker, "jsonfmt").splitlines()) == 4)
    r = broker.api.get("/trace/jsonfmt/download")
    z = zipfile.ZipFile(io.BytesIO(r.content))
    entries = [json.loads(ln) for ln in z.read(z.namelist()[0]).decode().splitlines()]
    assert [e["meta"]["payload"] for e in entries] == [p.decode() for p in payloads]
    e = entries[0]
    assert e["msg"] == "publish_to" and e["level"] == "debug" and "time" in e
    assert e["meta"]["trace_tag"] == "PUBLISH" and e["meta"]["clientid"] == "json-client"
    assert e["meta"]["topic"] == "/x/y/z"


def test_long_payloads_are_truncated(broker):
    create(broker, name="trunc", type="clientid", clientid="trunc-client")
    c = broker.mqtt("trunc-client")
    c.publish("trunc/t", b"x" * 1024, qos=1)
    c.publish("trunc/t", b"y" * 1025, qos=1)
    c.disconnect()
    wait_until(lambda: "DISCONNECT" in whole_log(broker, "trunc"))
    text = whole_log(broker, "trunc")
    assert "Payload=" + "x" * 1024 + ")" in text
    assert "Payload=" + "y" * 100 + "... The 925 bytes of this log are truncated)" in text


def test_a_trace_starts_and_ends_on_time_and_stops_on_request(broker):
    now = int(time.time())
    create(broker, name="soon", type="clientid", clientid="soon-client", start_at=now + 2,
           end_at=now + 4)
    assert broker.get("/trace")[0]["status"] == "waiting"
    assert broker.broker.tracer is None
    wait_until(lambda: broker.get("/trace")[0]["status"] == "running", timeout=10)
    wait_until(lambda: broker.broker.tracer is not None)
    wait_until(lambda: broker.get("/trace")[0]["status"] == "stopped", timeout=10)
    wait_until(lambda: broker.broker.tracer is None)

    create(broker, name="stopme", type="clientid", clientid="stop-client")
    broker.ok("PUT", "/trace/stopme/stop")
    c = broker.mqtt("stop-client")
    c.disconnect()
    assert broker.get("/trace/stopme/log")["items"] == ""


def test_nothing_is_hooked_while_nothing_is_traced(broker):
    b = broker.broker
    points = ("client.connect", "session.subscribed", "session.unsubscribed",
              "client.disconnected", "message.publish", "client.check_authz_complete")
    before = {p: len(b.hooks._points.get(p, ())) for p in points}
    assert b.tracer is None
    create(broker, name="hooked", type="clientid", clientid="someone")
    assert b.tracer is not None
    assert all(len(b.hooks._points.get(p, ())) == before[p] + 1 for p in points)
    c = broker.mqtt("someone")
    ch = broker.call(lambda: b.channels["someone"])
    assert type(ch.reader).__name__ == "_TracedReader"
    broker.ok("DELETE", "/trace/hooked", 204)
    assert b.tracer is None
    assert {p: len(b.hooks._points.get(p, ())) for p in points} == before
    assert type(ch.reader).__name__ != "_TracedReader"  # the connection is unwrapped
    c.publish("t", b"still works", qos=1)


def test_rule_trace(broker):
    broker.ok("POST", "/rules", 201, json={
        "id": "traced_rule", "sql": 'SELECT payload.x as x FROM "rt/#" WHERE payload.x > 1',
        "actions": [{"function": "console"}]})
    try:
        create(broker, name="rule1", type="ruleid", ruleid="traced_rule")
        c = broker.mqtt("rule-client")
        c.publish("rt/1", b'{"x": 5}', qos=1)
        c.publish("rt/1", b'{"x": 0}', qos=1)
        wait_until(lambda: "SQL_yielded_no_result" in whole_log(broker, "rule1"))
        text = whole_log(broker, "rule1")
        assert "[RULE_SQL_EXEC] rule-client@ msg: rule_activated" in text
        assert "msg: SQL_yielded_result" in text and "result: [x: 5]" in text
        assert "[ACTION] rule-client@ msg: call_action_function, action_info: " \
               "[function: console]" in text
        assert "rule_id: traced_rule" in text
        assert "mqtt_packet" not in text
    finally:
        broker.ok("DELETE", "/rules/traced_rule", 204)


def test_traces_survive_a_restart(make_broker):
    node = make_broker()
    create(node, name="durable", type="clientid", clientid="durable-client")
    node.restart()
    [t] = node.get("/trace")
    assert t["name"] == "durable" and t["status"] == "running"
    c = node.mqtt("durable-client")
    c.disconnect()
    wait_until(lambda: "CONNECT" in whole_log(node, "durable"))


def test_connected_clients_are_traced_from_when_the_trace_starts(broker):
    c = broker.mqtt("early-client")
    create(broker, name="late", type="clientid", clientid="early-client")
    c.publish("early/t", b"after-start", qos=1)
    c.disconnect()
    wait_until(lambda: "DISCONNECT" in whole_log(broker, "late"))
    text = whole_log(broker, "late")
    assert "Topic=early/t, PacketId=1, Payload=after-start" in text
    assert "PUBACK(Q0, R0, D0, PacketId=1, ReasonCode=16)" in text  # (no subscribers)
    assert "packet: CONNECT(" not in text  # (it came before the trace)


def test_websocket_clients_are_traced_as_ws_mqtt(broker):
    from support.mqttclient import MqttClient
    port = broker.listener_port("ws:default")
    if port is None:
        pytest.skip("no WebSocket listener in this broker")
    create(broker, name="ws1", type="clientid", clientid="ws-traced")
    c = MqttClient(broker.host, port, "ws-traced", transport="websockets")
    try:
        c.connect()
        c.publish("ws/t", b"over-ws", qos=1)
        c.disconnect()
    finally:
        c.close()
    wait_until(lambda: "DISCONNECT" in whole_log(broker, "ws1"))
    text = whole_log(broker, "ws1")
    assert "[WS-MQTT] ws-traced@" in text and "Payload=over-ws" in text
    assert "CONNACK(Q0, R0, D0, AckFlags=0, ReasonCode=0)" in text


def test_client_trace_shows_authorization_decisions(make_broker):
    node = make_broker()
    rules = '{allow, all, publish, ["ok/#"]}.\n{deny, all}.\n'
    r = node.api.post("/authorization/sources", json={"type": "file", "rules": rules})
    assert r.status_code == 204, r.text
    node.api.put("/authorization/settings", json={"no_match": "allow", "deny_action": "ignore",
                                                  "cache": {"enable": False}})
    create(node, name="authz1", type="clientid", clientid="authz-client")
    c = node.mqtt("authz-client")
    c.publish("ok/1", b"a", qos=1)
    c.publish("no/1", b"b", qos=1)
    c.disconnect()
    wait_until(lambda: "DISCONNECT" in whole_log(node, "authz1"))
    text = whole_log(node, "authz1")
    assert "[AUTHZ] authz-client@127.0.0.1:" in text
    assert "msg: authorization_matched_allow, action: PUBLISH, authorize_type: file, " \
           "topic: ok/1" in text
    assert "msg: authorization_matched_deny, action: PUBLISH, authorize_type: file, " \
           "topic: no/1" in text
    assert "PUBACK(Q0, R0, D0, PacketId=2, ReasonCode=135)" in text  # (not authorized)


def test_rule_trace_on_deliveries_runs_the_rule_in_full(broker):
    broker.ok("POST", "/rules", 201, json={
        "id": "delivered_rule", "actions": [{"function": "console"}],
        "sql": 'SELECT clientid, topic FROM "$events/message_delivered" WHERE topic = \'dl/yes\''})
    try:
        create(broker, name="rule2", type="ruleid", ruleid="delivered_rule")
        sub = broker.mqtt("dl-sub")
        sub.subscribe("dl/#", qos=0)
        pub = broker.mqtt("dl-pub")
        pub.publish("dl/no", b"1", qos=0)
        pub.publish("dl/yes", b"2", qos=0)
        sub.get_many(2)
        wait_until(lambda: "SQL_yielded_result" in whole_log(broker, "rule2"))
        text = whole_log(broker, "rule2")
        assert text.count("msg: rule_activated") == 2
        assert "msg: SQL_yielded_no_result" in text
        assert "result: [clientid: dl-sub, topic: dl/yes]" in text
        m = broker.get("/rules/delivered_rule/metrics")["metrics"]
        assert (m["matched"], m["passed"], m["failed.no_result"]) == (2, 1, 1)
    finally:
        broker.ok("DELETE", "/rules/delivered_rule", 204)
