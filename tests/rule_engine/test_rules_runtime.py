"""Rules at work, end to end: real MQTT clients publish, rules run (messages and events), their
republished messages reach subscribers (EMQX's emqx_rule_engine_SUITE, as far as emqpy's
events and actions go)."""
from __future__ import annotations

import json

import pytest

from support.mqttclient import props, sub_opts, uid
from support.waiting import wait_until

pytest.importorskip("emqpy.rule_engine.sql")


@pytest.fixture
def node(make_broker):
    return make_broker({"sys_topics": {"sys_msg_interval": "disabled",
                                       "sys_heartbeat_interval": "disabled"}})


def rule(node, sql, *actions, rule_id=None, **kw):
    body = {"sql": sql, "actions": list(actions), **kw}
    if rule_id:
        body["id"] = rule_id
    return node.ok("POST", "/rules", 201, json=body)["id"]


def republish(topic, payload="${.}", **args):
    return {"function": "republish", "args": {"topic": topic, "payload": payload, **args}}


def metrics(node, rule_id):
    return node.get(f"/rules/{rule_id}/metrics")["metrics"]


def test_select_where_republish(node):
    rid = rule(node, 'SELECT payload.temp as t, clientid FROM "sensor/#" WHERE payload.temp > 30',
               republish("alert/${clientid}", "${t}", qos=1))
    sub = node.mqtt()
    sub.subscribe("alert/#", 1)
    pub = node.mqtt("sensor-7")
    pub.publish("sensor/1", json.dumps({"temp": 35}), qos=1)
    pub.publish("sensor/1", json.dumps({"temp": 20}), qos=1)
    pub.publish("other/1", json.dumps({"temp": 99}), qos=1)
    m = sub.get()
    assert (m.topic, m.payload, m.qos) == ("alert/sensor-7", b"35", 1)
    sub.expect_none()
    wait_until(lambda: metrics(node, rid)["matched"] == 2)
    m = metrics(node, rid)
    assert (m["passed"], m["failed.no_result"], m["actions.total"], m["actions.success"]) == \
        (1, 1, 1, 1)


def test_republished_message_carries_the_rule_and_properties(node):
    rule(node, 'SELECT * FROM "in/#"', republish(
        "out/1", "${payload}", qos=1, retain=True,
        user_properties="${pub_props.'User-Property'}",
        mqtt_properties={"Content-Type": "text/${clientid}", "Message-Expiry-Interval": "60"}),
        rule_id="props")
    sub = node.mqtt()
    sub.subscribe("out/1", 1)
    pub = node.mqtt("p1")
    pub.publish("in/a", b"hello", qos=1, properties=props(UserProperty=[("k", "v")]))
    m = sub.get()
    assert m.payload == b"hello" and m.qos == 1
    assert m.properties.ContentType == "text/p1"
    assert ("k", "v") in m.properties.UserProperty
    assert 0 < m.properties.MessageExpiryInterval <= 60
    # retained as asked: a new subscriber gets it
    late = node.mqtt()
    late.subscribe("out/1", 1)
    assert late.get().retain
    node.api.delete("/mqtt/retainer/message/out%2F1")


def test_a_failing_rule_affects_neither_the_publisher_nor_other_rules(node):
    bad = rule(node, 'SELECT payload.x as x FROM "f/#"', republish("never/1"))
    good = rule(node, 'SELECT clientid FROM "f/#"', republish("good/${clientid}", "ok"))
    bad_action = rule(node, 'SELECT clientid FROM "f/#"', republish("bad/${clientid}/#"))
    sub = node.mqtt()
    sub.subscribe("good/#", 1)
    sub.subscribe("never/#", 1)
    pub = node.mqtt("fp")
    # PUBACK as usual (0x10: no subscriber to f/1 itself)
    assert pub.publish("f/1", b"not json", qos=1) == 0x10
    assert sub.get().topic == "good/fp"
    sub.expect_none()
    assert metrics(node, bad)["failed.exception"] == 1
    assert metrics(node, good)["actions.success"] == 1
    m = metrics(node, bad_action)  # a wildcard topic cannot be published to
    assert (m["actions.failed"], m["actions.failed.unknown"]) == (1, 1)


def test_events_reach_rules(node):
    ev = ("client_connected", "client_connack", "session_subscribed", "session_unsubscribed",
          "message_delivered", "message_acked", "message_dropped", "client_disconnected")
    for name in ev:
        rule(node, f'SELECT * FROM "$events/{name}"', republish(f"ev/{name}"), rule_id=name)
    watcher = node.mqtt("watcher")
    watcher.subscribe("ev/#", 0)
    watcher.drain()  # its own connection and subscription events, delivered as they happen
    cid = uid("evc")
    c = node.mqtt(cid)
    c.subscribe("data/1", 1)
    c.publish("data/1", b"payload-1", qos=1)
    c.get()
    c.unsubscribe("data/1")
    c.publish("nobody/listens", b"x", qos=0)
    c.disconnect()
    seen: dict = {}

    def collect():
        for m in watcher.drain():
            cols = json.loads(m.payload)
            if cols.get("clientid") == cid or cols.get("from_clientid") == cid:
                seen.setdefault(m.topic[3:], cols)
        return set(ev) <= set(seen)
    wait_until(collect)
    connected = seen["client_connected"]
    assert connected["event"] == "client.connected" and connected["proto_ver"] == 5
    assert connected["peername"].startswith("127.0.0.1:") and connected["clean_start"] is True
    assert connected["node"] == node.name and isinstance(connected["timestamp"], int)
    assert connected["conn_props"]["User-Property"] == {}
    assert seen["client_connack"]["reason_code"] == "success"
    assert seen["session_subscribed"]["topic"] == "data/1"
    assert seen["session_subscribed"]["qos"] == 1
    assert seen["session_unsubscribed"]["topic"] == "data/1"
    delivered = seen["message_delivered"]
    assert (delivered["topic"], delivered["payload"], delivered["from_clientid"],
            delivered["clientid"], delivered["qos"]) == ("data/1", "payload-1", cid, cid, 1)
    assert seen["message_acked"]["topic"] == "data/1"
    dropped = seen["message_dropped"]
    assert (dropped["topic"], dropped["reason"]) == ("nobody/listens", "no_subscribers")
    assert seen["client_disconnected"]["reason"] == "normal"
    assert isinstance(seen["client_disconnected"]["disconnected_at"], int)


def test_delivery_dropped(node):
    rule(node, 'SELECT * FROM "$events/delivery_dropped"', republish("dd/out"))
    watcher = node.mqtt()
    watcher.subscribe("dd/out", 0)
    away = node.offline_session("dd", "dd/in")  # QoS 1 subscription, client gone
    pub = node.mqtt()
    node.call(node.broker.sessions[away].__setattr__, "max_mqueue_len", 1)
    pub.publish("dd/in", b"first", qos=1)
    pub.publish("dd/in", b"second", qos=1)  # the queue is full: the oldest is dropped
    cols = json.loads(watcher.get().payload)
    assert (cols["event"], cols["reason"], cols["clientid"], cols["payload"]) == \
        ("delivery.dropped", "queue_full", away, "first")


def test_sys_messages_are_ignored_unless_configured(node):
    rid = rule(node, 'SELECT * FROM "$SYS/#"', republish("sys/copy"))
    sub = node.mqtt()
    sub.subscribe("sys/copy", 0)
    node.call(node.broker.publish_from_system, "$SYS/brokers/x", b"1")
    sub.expect_none()
    assert metrics(node, rid)["matched"] == 0
    node.ok("PUT", "/rule_engine", json={"ignore_sys_message": False})
    node.call(node.broker.publish_from_system, "$SYS/brokers/x", b"1")
    assert sub.get().payload  # (the republish of a system message is one too)
    assert metrics(node, rid)["matched"] == 1


def test_a_rule_republishing_into_its_own_from_stops(node):
    rid = rule(node, 'SELECT * FROM "loop/#"', republish("loop/again", "${payload}"))
    sub = node.mqtt()
    sub.subscribe("loop/#", 0)
    node.mqtt().publish("loop/start", b"x", qos=1)
    got = sorted(m.topic for m in [sub.get(), sub.get()])
    assert got == ["loop/again", "loop/start"]
    sub.expect_none()
    wait_until(lambda: metrics(node, rid)["matched"] == 2)


def test_rules_republishing_into_each_other_are_stopped(node):
    a = rule(node, 'SELECT * FROM "ping/#"', republish("pong/1", "${payload}"))
    rule(node, 'SELECT * FROM "pong/#"', republish("ping/1", "${payload}"))
    node.mqtt().publish("ping/0", b"x", qos=1)
    wait_until(lambda: metrics(node, a)["actions.failed.unknown"] >= 1)
    node.mqtt().publish("ok/after", b"still alive", qos=1)  # the broker is fine


def test_direct_dispatch_skips_other_rules(node):
    rule(node, 'SELECT * FROM "dd1/#"', republish("dd2/x", "${payload}", direct_dispatch=True))
    second = rule(node, 'SELECT * FROM "dd2/#"', republish("dd3/x"))
    sub = node.mqtt()
    sub.subscribe("dd2/#", 0)
    node.mqtt().publish("dd1/a", b"x", qos=1)
    assert sub.get().topic == "dd2/x"
    assert metrics(node, second)["matched"] == 0


def test_hooks_are_registered_only_while_rules_need_them(node):
    points = node.broker.hooks._points
    assert "message.publish" not in points and "message.delivered" not in points
    rid = rule(node, 'SELECT * FROM "$events/message_delivered"', {"function": "console"})
    assert "message.delivered" in points and node.broker.delivered_hooked
    node.ok("PUT", f"/rules/{rid}", json={"sql": 'SELECT * FROM "$events/message_delivered"',
                                         "enable": False})
    assert "message.delivered" not in points and not node.broker.delivered_hooked
    rule(node, 'SELECT * FROM "a/#"', rule_id="pubrule")
    assert "message.publish" in points
    node.ok("DELETE", "/rules/pubrule", 204)
    assert "message.publish" not in points


def test_authn_and_authz_events(node):
    rule(node, 'SELECT * FROM "$events/client_check_authn_complete"', republish("auth/n"))
    rule(node, 'SELECT * FROM "$events/client_check_authz_complete"', republish("auth/z"))
    watcher = node.mqtt("auth-watcher")
    watcher.subscribe("auth/#", 0)
    watcher.drain()
    cid = uid("az")
    c = node.mqtt(cid)
    c.subscribe("az/1", 0)
    c.publish("az/1", b"x", qos=1)
    got: dict = {}

    def collect():
        for m in watcher.drain():
            cols = json.loads(m.payload)
            if cols["clientid"] == cid:
                got.setdefault((m.topic, cols.get("action")), cols)
        return len(got) >= 3
    wait_until(collect)
    authn = got[("auth/n", None)]
    assert (authn["event"], authn["reason_code"], authn["is_anonymous"],
            authn["is_superuser"]) == ("client.check_authn_complete", "success", True, False)
    sub = got[("auth/z", "subscribe")]
    assert (sub["topic"], sub["result"], sub["authz_source"]) == ("az/1", "allow", "default")
    assert got[("auth/z", "publish")]["result"] == "allow"


def test_authz_events_name_the_deciding_source(make_broker, tmp_path):
    acl = tmp_path / "acl.conf"
    acl.write_text('{deny, all, publish, ["denied/#"]}.\n{allow, all}.\n')
    node = make_broker({"authorization": {"sources": [{"type": "file", "path": str(acl)}]}})
    rule(node, 'SELECT * FROM "$events/client_check_authz_complete"', republish("authz/out"))
    watcher = node.mqtt()
    watcher.subscribe("authz/out", 0)
    cid = uid("azs")
    c = node.mqtt(cid)
    c.publish("denied/1", b"x", qos=1)

    def denied():
        return [cols for cols in (json.loads(m.payload) for m in watcher.drain())
                if cols["clientid"] == cid and cols["topic"] == "denied/1"]
    found = wait_until(denied)
    assert (found[0]["result"], found[0]["authz_source"], found[0]["action"]) == \
        ("deny", "file", "publish")


# -- ported from emqx_rule_engine_SUITE ----------------------------------------------------------

@pytest.mark.parametrize("how, reason", [("normal", "normal"), ("kicked", "kicked"),
                                         ("clean_start", "discarded"),
                                         ("resume", "takenover")])
def test_client_disconnected_reasons(node, how, reason):
    rule(node, 'select * from "$events/client_disconnected"', republish("repub/disc", ""))
    watcher = node.mqtt("get_repub_client")
    watcher.subscribe("repub/disc", 0)
    cid = uid("disc")
    first = node.mqtt(cid, clean=how != "resume",
                      properties=props("CONNECT", SessionExpiryInterval=60))
    if how == "normal":
        first.disconnect()
    elif how == "kicked":
        node.ok("DELETE", f"/clients/{cid}", 204)
    else:
        node.mqtt(cid, clean=how == "clean_start",
                  properties=props("CONNECT", SessionExpiryInterval=60))
    cols = json.loads(watcher.get().payload)
    assert (cols["clientid"], cols["reason"]) == (cid, reason)


def test_republish_keeps_the_original_user_properties(node):
    rule(node, 'SELECT clientid FROM "$events/message_dropped"',
         republish("t2", "clientid=${clientid}", user_properties="${pub_props.'User-Property'}"))
    rule(node, "SELECT clientid, pub_props.'User-Property' as user_properties "
               'FROM "$events/message_dropped"', republish("t3", "clientid=${clientid}"))
    sub = node.mqtt("sub-01")
    sub.subscribe("t2", 1)
    sub.subscribe("t3", 1)
    node.mqtt("pub-02").publish("foo/bar/1", b'{"x":1}', qos=1,
                                properties=props(UserProperty=[("mykey", "111111")]))
    got = {m.topic: m for m in (sub.get(), sub.get())}
    for t in ("t2", "t3"):
        assert got[t].payload == b"clientid=pub-02"
        assert got[t].properties.UserProperty == [("mykey", "111111")]


def test_missing_template_vars_render_as_undefined(node):
    rule(node, 'SELECT * FROM "$events/client_connected"',
         republish("t2", "${clientid}:${missing.var}"))
    sub = node.mqtt("sub-01")
    sub.subscribe("t2", 0)
    sub.drain()
    node.mqtt("pub-02")
    assert sub.get().payload == b"pub-02:undefined"


def test_select_metadata_and_json_payload_decoding(node):
    rid = rule(node, 'SELECT payload.a.b as ab, payload, metadata FROM "meta/#"',
               republish("meta-out"))
    sub = node.mqtt()
    sub.subscribe("meta-out", 0)
    node.mqtt().publish("meta/1", b'{"a": {"b": [1, 2]}}', qos=1)
    out = json.loads(sub.get().payload)
    assert out["ab"] == [1, 2] and out["metadata"] == {"rule_id": rid}
    assert out["payload"] == '{"a": {"b": [1, 2]}}'  # selected whole: the text, as in EMQX


def test_a_delivered_rule_reading_the_message_only_runs_per_delivery(node):
    # (evaluated once per message, counted and acted on for each receiver)
    rid = rule(node, "SELECT topic, payload FROM \"$events/message_delivered\" "
                     "WHERE topic =~ 'pm/#'", republish("pm-out/${topic}", "${payload}"))
    assert node.call(lambda: node.broker.rule_engine.get(rid).per_message)
    watcher = node.mqtt()
    watcher.subscribe("pm-out/#", 0)
    subs = [node.mqtt() for _ in range(3)]
    for s in subs:
        s.subscribe("pm/1", 0)
    node.mqtt().publish("pm/1", b"fan", qos=1)
    got = [watcher.get() for _ in range(3)]
    assert {(m.topic, m.payload) for m in got} == {("pm-out/pm/1", b"fan")}
    watcher.expect_none()
    m = metrics(node, rid)
    # 3 deliveries of pm/1 (passed) and 3 of pm-out/pm/1 to the watcher (no result)
    assert (m["matched"], m["passed"], m["failed.no_result"], m["actions.success"]) == \
        (6, 3, 3, 3)


def test_a_delivered_rule_whose_where_reads_the_message_only(node):
    # SELECT * reads every column, its WHERE the message's only: decided once per message
    rid = rule(node, "SELECT * FROM \"$events/message_delivered\" WHERE topic =~ 'wp/#'",
               republish("wp-out/${clientid}", "${payload}"))
    assert node.call(lambda: node.broker.rule_engine.get(rid).where_pre is not None)
    watcher = node.mqtt()
    watcher.subscribe("wp-out/#", 0)
    subs = [node.mqtt(uid("wp")) for _ in range(3)]
    for s in subs:
        s.subscribe("wp/1", 0)
        s.subscribe("other/1", 0)
    pub = node.mqtt()
    pub.publish("other/1", b"no", qos=1)
    pub.publish("wp/1", b"yes", qos=1)
    got = {(m.topic, m.payload) for m in (watcher.get(), watcher.get(), watcher.get())}
    assert got == {(f"wp-out/{s.client_id}", b"yes") for s in subs}
    watcher.expect_none()
    m = metrics(node, rid)
    # 3 deliveries of wp/1 passed; 3 of other/1 and 3 of wp-out/... to the watcher did not
    assert (m["matched"], m["passed"], m["failed.no_result"]) == (9, 3, 6)


def test_no_local_drops_are_delivery_dropped_events(node):
    rule(node, 'SELECT * FROM "$events/delivery_dropped"', republish("nl/out"))
    watcher = node.mqtt()
    watcher.subscribe("nl/out", 0)
    cid = uid("nl")
    c = node.mqtt(cid)
    c.subscribe("nl/in", options=sub_opts(1, no_local=True))
    before = node.broker.metrics.c["delivery.dropped.no_local"]
    c.publish("nl/in", b'{"id": 1, "name": "ha"}', qos=1)
    cols = json.loads(watcher.get().payload)
    assert (cols["reason"], cols["clientid"], cols["from_clientid"], cols["topic"]) == \
        ("no_local", cid, cid, "nl/in")
    assert node.broker.metrics.c["delivery.dropped.no_local"] == before + 1


def test_a_topic_no_rule_selected_is_seen_by_a_later_rule(node):
    rule(node, 'SELECT * FROM "elsewhere/#"')
    pub = node.mqtt()
    pub.publish("late/1", b"x", qos=1)  # remembered as selected by no rule
    assert "late/1" in node.broker.publish_ignored
    rid = rule(node, 'SELECT * FROM "late/#"')
    pub.publish("late/1", b"x", qos=1)
    assert metrics(node, rid)["matched"] == 1
