"""The events rules can select from, as EMQX describes them (GET /rule_events) and the example
columns rule tests start from (emqx_rule_events: event_info, columns_with_exam,
test_columns).
"""
from __future__ import annotations

from emqpy.broker.message import new_message_id
from emqpy.rule_engine.events import EVENT_TOPICS, now_ms


def _props(kind: str) -> dict:
    specific = {
        "pub_props": {"Payload-Format-Indicator": 0, "Message-Expiry-Interval": 30},
        "puback_props": {"Reason-String": "OK"},
        "conn_props": {"Session-Expiry-Interval": 7200, "Receive-Maximum": 32},
        "disconn_props": {"Session-Expiry-Interval": 7200,
                          "Reason-String": "Redirect to another server",
                          "Server Reference": "192.168.22.129"},
        "sub_props": {}, "unsub_props": {},
    }[kind]
    return {**specific, "User-Property": {"foo": "bar"},
            "User-Property-Pairs": [{"key": "foo"}, {"value": "bar"}]}


_ATTRS = {"test": "example"}


def columns_with_examples(event: str, node: str) -> list[tuple[str, object]]:
    """(column, example value) of an event (EMQX's hook point name), in EMQX's order."""
    ts = now_ms()
    msg_id = new_message_id()
    if event == "message.publish":
        return [("event", "message.publish"), ("id", msg_id), ("clientid", "c_emqx"),
                ("username", "u_emqx"), ("payload", '{"msg": "hello"}'),
                ("peerhost", "192.168.0.10"), ("peername", "192.168.0.10:32781"),
                ("topic", "t/a"), ("qos", 1), ("flags", {}), ("publish_received_at", ts),
                ("pub_props", _props("pub_props")), ("timestamp", ts), ("node", node),
                ("client_attrs", _ATTRS)]
    if event in ("message.delivered", "message.acked"):
        cols = [("event", event), ("id", msg_id), ("from_clientid", "c_emqx_1"),
                ("from_username", "u_emqx_1"), ("clientid", "c_emqx_2"),
                ("username", "u_emqx_2"), ("payload", '{"msg": "hello"}'),
                ("peerhost", "192.168.0.10"), ("peername", "192.168.0.10:32781"),
                ("topic", "t/a"), ("qos", 1), ("flags", {}), ("publish_received_at", ts),
                ("pub_props", _props("pub_props")), ("timestamp", ts), ("node", node)]
        if event == "message.acked":
            cols.insert(0, ("puback_props", _props("puback_props")))
        return cols
    if event == "message.dropped":
        return [("event", event), ("id", msg_id), ("reason", "no_subscribers"),
                ("clientid", "c_emqx"), ("username", "u_emqx"), ("payload", '{"msg": "hello"}'),
                ("peerhost", "192.168.0.10"), ("peername", "192.168.0.10:32781"),
                ("topic", "t/a"), ("qos", 1), ("flags", {}), ("publish_received_at", ts),
                ("pub_props", _props("pub_props")), ("timestamp", ts), ("node", node)]
    if event == "delivery.dropped":
        return [("event", event), ("id", msg_id), ("reason", "queue_full"),
                ("from_clientid", "c_emqx_1"), ("from_username", "u_emqx_1"),
                ("clientid", "c_emqx_2"), ("username", "u_emqx_2"),
                ("payload", '{"msg": "hello"}'), ("peerhost", "192.168.0.10"),
                ("peername", "192.168.0.10:32781"), ("topic", "t/a"), ("qos", 1),
                ("flags", {}), ("pub_props", _props("pub_props")),
                ("publish_received_at", ts), ("timestamp", ts), ("node", node)]
    if event == "client.connected":
        return [("event", event), ("clientid", "c_emqx"), ("username", "u_emqx"),
                ("mountpoint", None), ("peername", "192.168.0.10:56431"),
                ("sockname", "0.0.0.0:1883"), ("proto_name", "MQTT"), ("proto_ver", 5),
                ("keepalive", 60), ("clean_start", True), ("expiry_interval", 3600),
                ("is_bridge", False), ("conn_props", _props("conn_props")),
                ("connected_at", ts), ("timestamp", ts), ("node", node),
                ("client_attrs", _ATTRS)]
    if event == "client.disconnected":
        return [("event", event), ("reason", "normal"), ("clientid", "c_emqx"),
                ("username", "u_emqx"), ("peername", "192.168.0.10:56431"),
                ("sockname", "0.0.0.0:1883"), ("proto_name", "MQTT"), ("proto_ver", 5),
                ("disconn_props", _props("disconn_props")), ("disconnected_at", ts),
                ("timestamp", ts), ("node", node), ("client_attrs", _ATTRS)]
    if event == "client.connack":
        # (EMQX's example says client.connected here too)
        return [("event", "client.connected"), ("reason_code", "success"),
                ("clientid", "c_emqx"), ("username", "u_emqx"),
                ("peername", "192.168.0.10:56431"), ("sockname", "0.0.0.0:1883"),
                ("proto_name", "MQTT"), ("proto_ver", 5), ("keepalive", 60),
                ("clean_start", True), ("expiry_interval", 3600), ("connected_at", ts),
                ("conn_props", _props("conn_props")), ("timestamp", ts), ("node", node)]
    if event == "client.check_authz_complete":
        return [("event", event), ("clientid", "c_emqx"), ("username", "u_emqx"),
                ("peerhost", "192.168.0.10"), ("peername", "192.168.0.10:32781"),
                ("topic", "t/a"), ("action", "publish"), ("authz_source", "cache"),
                ("result", "allow"), ("timestamp", ts), ("node", node),
                ("client_attrs", _ATTRS)]
    if event == "client.check_authn_complete":
        return [("event", "client.check_authz_complete"), ("clientid", "c_emqx"),
                ("username", "u_emqx"), ("peername", "192.168.0.10:56431"),
                ("reason_code", "success"), ("is_superuser", True), ("is_anonymous", False),
                ("timestamp", ts), ("node", node), ("client_attrs", _ATTRS)]
    if event in ("session.subscribed", "session.unsubscribed"):
        props = "sub_props" if event == "session.subscribed" else "unsub_props"
        return [(props, _props(props)), ("client_attrs", _ATTRS), ("event", event),
                ("clientid", "c_emqx"), ("username", "u_emqx"), ("peerhost", "192.168.0.10"),
                ("peername", "192.168.0.10:32781"), ("topic", "t/a"), ("qos", 1),
                ("timestamp", ts), ("node", node)]
    if event.startswith("$bridges/mqtt"):
        return [("event", event), ("id", msg_id), ("payload", '{"msg": "hello"}'),
                ("server", "192.168.0.10:1883"), ("topic", "t/a"), ("qos", 1),
                ("dup", False), ("retain", False), ("pub_props", _props("pub_props")),
                ("message_received_at", ts), ("timestamp", ts), ("node", node)]
    raise KeyError(event)


_PUB_TEST = [("clientid", ["c_emqx", "the clientid of the sender"]),
             ("username", ["u_emqx", "the username of the sender"]),
             ("topic", ["t/a", "the topic of the MQTT message"]),
             ("qos", [1, "the QoS of the MQTT message"]),
             ("payload", ['{"msg": "hello"}', "the payload of the MQTT message"])]
_DELIVERED_TEST = [("from_clientid", ["c_emqx_1", "the clientid of the sender"]),
                   ("from_username", ["u_emqx_1", "the username of the sender"]),
                   ("clientid", ["c_emqx_2", "the clientid of the receiver"]),
                   ("username", ["u_emqx_2", "the username of the receiver"]),
                   ("topic", ["t/a", "the topic of the MQTT message"]),
                   ("qos", [1, "the QoS of the MQTT message"]),
                   ("payload", ['{"msg": "hello"}', "the payload of the MQTT message"])]
_CLIENT = [("clientid", ["c_emqx", "the clientid if the client"]),
           ("username", ["u_emqx", "the username if the client"])]
_SUB_TEST = _CLIENT + [("topic", ["t/a", "the topic of the MQTT message"]),
                       ("qos", [1, "the QoS of the MQTT message"])]
TEST_COLUMNS = {
    "message.publish": _PUB_TEST,
    "message.dropped": [("reason", ["no_subscribers", "the reason of dropping"])] + _PUB_TEST,
    "message.delivered": _DELIVERED_TEST,
    "message.acked": _DELIVERED_TEST,
    "delivery.dropped": [("reason", ["queue_full", "the reason of dropping"])]
    + _DELIVERED_TEST,
    "client.connected": _CLIENT + [("peername", ["127.0.0.1:52918",
                                                 "the IP address and port of the client"])],
    "client.disconnected": _CLIENT + [("reason", ["normal", "the reason for shutdown"])],
    "client.connack": _CLIENT + [("reason_code", ["success", "the reason code"])],
    "client.check_authz_complete": _CLIENT + [
        ("topic", ["t/1", "the topic of the MQTT message"]),
        ("action", ["publish", "the action of publish or subscribe"]),
        ("result", ["allow", "the authz check complete result"])],
    "client.check_authn_complete": _CLIENT + [
        ("reason_code", ["success", "the reason code"]),
        ("is_superuser", [True, "Whether this is a superuser"]),
        ("is_anonymous", [False, "Whether this is a superuser"])],
    "session.subscribed": _SUB_TEST,
    "session.unsubscribed": _SUB_TEST,
    "$bridges/mqtt:*": [("topic", ["t/a", "the topic of the MQTT message"]),
                        ("qos", [1, "the QoS of the MQTT message"]),
                        ("payload", ['{"msg": "hello"}', "the payload of the MQTT message"])],
}

# (event, English title, English description, SQL example), in EMQX's order; the Chinese
# texts EMQX also sends are alongside.
_INFO = [
    ("message.publish", ("message publish", "消息发布"), ("message publish", "消息发布"),
     'SELECT payload.msg as msg FROM "t/#" WHERE msg = \'hello\''),
    ("message.delivered", ("message delivered", "消息已投递"),
     ("message delivered", "消息已投递"),
     'SELECT * FROM "$events/message_delivered" WHERE topic =~ \'t/#\''),
    ("message.acked", ("message acked", "消息应答"), ("message acked", "消息应答"),
     'SELECT * FROM "$events/message_acked" WHERE topic =~ \'t/#\''),
    ("message.dropped", ("message routing-drop", "消息转发丢弃"),
     ("messages are discarded during routing, usually because there are no subscribers",
      "消息在转发的过程中被丢弃，一般是由于没有订阅者"),
     'SELECT * FROM "$events/message_dropped" WHERE topic =~ \'t/#\''),
    ("client.connected", ("client connected", "连接建立"), ("client connected", "连接建立"),
     'SELECT * FROM "$events/client_connected"'),
    ("client.disconnected", ("client disconnected", "连接断开"),
     ("client disconnected", "连接断开"),
     'SELECT * FROM "$events/client_disconnected" WHERE topic =~ \'t/#\''),
    ("client.connack", ("client connack", "连接确认"), ("client connack", "连接确认"),
     'SELECT * FROM "$events/client_connack"'),
    ("client.check_authz_complete", ("client check authz complete", "授权结果"),
     ("client check authz complete", "授权结果"),
     'SELECT * FROM "$events/client_check_authz_complete"'),
    ("client.check_authn_complete", ("client check authn complete", "认证结果"),
     ("client check authn complete", "认证结果"),
     'SELECT * FROM "$events/client_check_authn_complete"'),
    ("session.subscribed", ("session subscribed", "会话订阅完成"),
     ("session subscribed", "会话订阅完成"),
     'SELECT * FROM "$events/session_subscribed" WHERE topic =~ \'t/#\''),
    ("session.unsubscribed", ("session unsubscribed", "会话取消订阅完成"),
     ("session unsubscribed", "会话取消订阅完成"),
     'SELECT * FROM "$events/session_unsubscribed" WHERE topic =~ \'t/#\''),
    ("delivery.dropped", ("message delivery-drop", "消息投递丢弃"),
     ("messages are discarded during delivery, i.e. because the message queue is full",
      "消息在投递的过程中被丢弃，比如由于消息队列已满"),
     'SELECT * FROM "$events/delivery_dropped" WHERE topic =~ \'t/#\''),
    ("$bridges/mqtt:*", ("MQTT bridge message", "MQTT 桥接消息"),
     ("received a message from MQTT bridge", "收到来自 MQTT 桥接的消息"),
     'SELECT * FROM "$bridges/mqtt:my_mqtt_bridge" WHERE topic =~ \'t/#\''),
]


def event_info(node: str) -> list[dict]:
    """GET /rule_events."""
    out = []
    for event, (t_en, t_zh), (d_en, d_zh), sql in _INFO:
        out.append({
            "event": EVENT_TOPICS.get(event, event),
            "title": {"en": t_en, "zh": t_zh},
            "description": {"en": d_en, "zh": d_zh},
            "test_columns": dict(TEST_COLUMNS[event]),
            "columns": [k for k, _ in columns_with_examples(event, node)],
            "sql_example": sql,
        })
    return out
