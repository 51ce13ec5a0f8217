"""Every hook point of docs/hooks.md runs, with its documented arguments, for a real client.

Callbacks are registered on the running broker (in its loop, through BrokerThread.call) and
removed after each test; they run in the broker's thread, so tests poll what they recorded.
"""
from __future__ import annotations

import socket

import pytest

from emqpy.broker.hooks import Hooks
from emqpy.mqtt import reason_codes as rc
from support.mqttclient import client, uid
from support.waiting import wait_until

pytestmark = pytest.mark.emqpy_only


@pytest.fixture
def hook(broker):
    """hook(point) records each call's arguments in the list it returns; hook(point, fn)
    registers `fn` itself. Everything registered is removed after the test."""
    added = []

    def register(point, fn=None, priority=0):
        calls = []
        if fn is None:
            def fn(*args):
                calls.append(args)
        broker.call(broker.broker.hooks.add, point, fn, priority)
        added.append((point, fn))
        return calls

    yield register
    for point, fn in added:
        broker.call(broker.broker.hooks.remove, point, fn)


# -- client.* ----------------------------------------------------------------------------------

def test_client_connect_sees_the_connect_packet_before_anything_is_decided(broker, hook):
    calls = hook("client.connect")
    c = client(broker, username="u1")
    c.disconnect()
    ch, pkt = wait_until(lambda: [a for a in calls if a[1].clientid == c.client_id])[0]
    assert pkt.username == "u1" and pkt.proto_ver == 4
    assert ch.connect_pkt is pkt


def test_client_connack_sees_success_and_refusal_codes(broker, hook):
    calls = hook("client.connack")
    c = client(broker, v5=True)
    c.disconnect()
    ch, code, props = wait_until(lambda: [a for a in calls if a[0].clientid == c.client_id])[0]
    assert code == 0 and props["receive_maximum"] > 0
    # an MQTT 5 CONNECT asking for an authentication method nobody offers: refused 0x8C
    props_block = b"\x15\x00\x01X"  # authentication method "X"
    body = (b"\x00\x04MQTT\x05\x02\x00\x3c" + bytes([len(props_block)]) + props_block
            + b"\x00\x03bam")
    with socket.create_connection(("127.0.0.1", broker.port), 5) as s:
        s.sendall(bytes([0x10, len(body)]) + body)
        assert s.recv(16)[:4] == b"\x20\x03\x00\x8c"
    assert wait_until(lambda: [a for a in calls if a[1] == rc.BAD_AUTHENTICATION_METHOD])[0][2] \
        is None


def test_client_connected_and_disconnected(broker, hook):
    connected = hook("client.connected")
    disconnected = hook("client.disconnected")
    c = client(broker)
    assert wait_until(lambda: [a for a in connected if a[0].clientid == c.client_id])
    c.disconnect()
    (ch, reason), = wait_until(lambda: [a for a in disconnected if a[0].clientid == c.client_id])
    assert reason == "normal"


def test_client_authenticate_decides_the_connection(broker, hook):
    calls = []

    def authenticate(ch, pkt):
        calls.append((ch, pkt))
        return rc.BAD_USERNAME_OR_PASSWORD if pkt.username == "mallory" else None

    # above the authn feature's chain (priority 0), which answers for every client
    hook("client.authenticate", authenticate, priority=10)
    bad = client(broker, username="mallory")
    good = client(broker, username="alice")
    assert bad.connack_rc != 0 and good.connack_rc == 0
    bad.disconnect()
    good.disconnect()
    assert {pkt.username for _, pkt in calls} >= {"mallory", "alice"}


def test_client_authorize_may_overturn_the_answer(broker, hook):
    calls = []

    def authorize(allowed, ch, action, topic):
        calls.append((allowed, ch.clientid, action, topic))
        return allowed and topic != "forbidden/x" and not (
            action == "publish" and topic.startswith("blocked/"))

    hook("client.authorize", authorize)
    c = client(broker, v5=True)
    assert c.subscribe("forbidden/x", 1) == [rc.NOT_AUTHORIZED]
    assert c.subscribe("ok/#", 1) == [1]
    other = client(broker)
    assert other.subscribe("blocked/#", 0) == [0]
    c.publish("blocked/1", b"no", 0)
    c.publish("ok/1", b"yes", 1)
    assert c.get().payload == b"yes"
    other.expect_none(0.5)
    c.disconnect()
    other.disconnect()
    assert (True, c.client_id, "subscribe", "forbidden/x") in calls
    assert (True, c.client_id, "publish", "blocked/1") in calls


# -- session.* ---------------------------------------------------------------------------------

def test_session_created(broker, hook):
    calls = hook("session.created")
    c = client(broker)
    c.disconnect()
    assert wait_until(lambda: [a for a in calls if a[0].clientid == c.client_id])


def test_session_subscribed_and_unsubscribed(broker, hook):
    subscribed = hook("session.subscribed")
    unsubscribed = hook("session.unsubscribed")
    c = client(broker)
    c.subscribe("$share/g/hooks/+", 1)
    c.unsubscribe("$share/g/hooks/+")
    c.disconnect()
    (sess, sub), = wait_until(lambda: [a for a in subscribed if a[0].clientid == c.client_id])
    assert (sub.topic_filter, sub.group, sub.real_filter, sub.qos) == \
        ("$share/g/hooks/+", "g", "hooks/+", 1)
    assert wait_until(lambda: [a for a in unsubscribed if a[0].clientid == c.client_id]) == \
        [(sess, "$share/g/hooks/+")]


def test_session_resumed(broker, hook):
    calls = hook("session.resumed")
    cid = uid("resume")
    client(broker, cid, clean=False).disconnect()
    c = client(broker, cid, clean=False)
    c.disconnect()
    assert wait_until(lambda: [a for a in calls if a[0].clientid == cid])


def test_session_discarded_instead_of_terminated(broker, hook):
    discarded = hook("session.discarded")
    terminated = hook("session.terminated")
    cid = uid("discard")
    client(broker, cid, clean=False).disconnect()
    old = wait_until(lambda: broker.broker.sessions.get(cid))
    c = client(broker, cid, clean=True)
    assert wait_until(lambda: discarded) == [(old,)]
    assert not [a for a in terminated if a[0] is old]
    c.disconnect()


def test_session_takenover(broker, hook):
    calls = hook("session.takenover")
    resumed = hook("session.resumed")
    cid = uid("takeover")
    first = client(broker, cid, clean=False)
    first.c.loop_stop()  # (paho would reconnect and take the session back)
    second = client(broker, cid, clean=False)
    sess = broker.broker.sessions[cid]
    assert wait_until(lambda: calls) == [(sess,)]
    assert wait_until(lambda: [a for a in resumed if a[0] is sess])
    second.disconnect()


def test_session_terminated(broker, hook):
    calls = hook("session.terminated")
    c = client(broker)
    c.disconnect()
    (sess, reason), = wait_until(lambda: [a for a in calls if a[0].clientid == c.client_id])
    assert reason == "terminated"


# -- message.* ---------------------------------------------------------------------------------

def test_message_publish_may_change_or_stop_a_message(broker, hook):
    def rewrite(msg):
        if msg.topic.startswith("drop/"):
            return None
        if msg.topic.startswith("loud/"):
            msg = msg.copy()
            msg.payload = msg.payload.upper()
        return msg

    hook("message.publish", rewrite)
    c = client(broker)
    c.subscribe("#", 0)
    c.publish("drop/1", b"gone", 0)
    c.publish("loud/1", b"hello", 0)
    m = c.get()
    assert (m.topic, m.payload) == ("loud/1", b"HELLO")  # drop/1 never arrived
    c.disconnect()


@pytest.mark.parametrize("qos", [0, 1])
def test_message_delivered_may_change_what_one_client_gets(broker, hook, qos):
    calls = []
    a, b = client(broker), client(broker)

    def delivered(msg, ch):
        calls.append((msg.topic, ch.clientid))
        if ch.clientid != b.client_id:
            return msg
        msg = msg.copy()
        msg.payload = b"for b"
        return msg

    hook("message.delivered", delivered)
    topic = uid("deliv")
    a.subscribe(topic, qos)
    b.subscribe(topic, qos)
    a.publish(topic, b"original", qos)
    assert a.get().payload == b"original"
    assert b.get().payload == b"for b"
    assert {(topic, a.client_id), (topic, b.client_id)} <= set(calls)
    a.disconnect()
    b.disconnect()


@pytest.mark.parametrize("qos", [1, 2])
def test_message_acked(broker, hook, qos):
    calls = hook("message.acked")
    c = client(broker)
    topic = uid("acked")
    c.subscribe(topic, qos)
    c.publish(topic, b"ack me", qos)
    assert c.get().payload == b"ack me"
    (msg, ch), = wait_until(lambda: [a for a in calls if a[0].topic == topic])
    assert ch.clientid == c.client_id and msg.payload == b"ack me" and msg.qos == qos
    c.disconnect()


def test_message_dropped_without_subscribers(broker, hook):
    calls = hook("message.dropped")
    c = client(broker)
    topic = uid("nobody")
    c.publish(topic, b"lost", 1)
    c.disconnect()
    (msg, reason), = wait_until(lambda: [a for a in calls if a[0].topic == topic])
    assert reason == "no_subscribers" and msg.payload == b"lost"


def test_a_bound_method_is_removed_by_an_equal_one():
    class Feature:
        def on_publish(self, msg):
            return msg

    f, hooks = Feature(), Hooks()
    hooks.add("message.publish", f.on_publish)
    hooks.remove("message.publish", f.on_publish)  # a new bound-method object, equal
    assert "message.publish" not in hooks._points


def test_the_publish_path_flags_follow_registration(broker):
    """The PUBLISH path reads derived flags, not the hook table: registering client.authorize
    or message.delivered must switch them, removing the callback switch them back. (The
    inlined QoS 0 fan-out stays on with message.delivered: it calls the callback itself.)"""
    b = broker.broker
    before = (b.authorize, b.qos0_inline, b.delivered_hook)
    assert b.qos0_inline and b.delivered_hook is None

    def allow(allowed, *args):
        return allowed

    def same(msg, ch):
        return msg

    broker.call(b.hooks.add, "client.authorize", allow)
    broker.call(b.hooks.add, "message.delivered", same)
    assert b.authorize == b._authorize_with_hooks and b.delivered_hook is same
    broker.call(b.hooks.remove, "client.authorize", allow)
    broker.call(b.hooks.remove, "message.delivered", same)
    assert (b.authorize, b.qos0_inline, b.delivered_hook) == before
