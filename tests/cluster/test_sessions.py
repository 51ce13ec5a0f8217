"""A session taken over from another node, as EMQX does it: with clean start 0 the CONNACK says
session present = 1 when the session existed anywhere in the cluster, its subscriptions and
queued messages are in place before delivery goes on (each message once), and a will is
published once across the takeover (MQTT 5 and 3.1.1 clients, paho)."""
from __future__ import annotations

import time

import pytest

from support.mqttclient import MqttClient, client, props, uid
from support.waiting import wait_until

from cluster.conftest import offline_with_three_queued
from cluster.test_routing import _sees_filter


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_queued_messages_move_with_session_present(two, v5):
    a, b = two
    cid = offline_with_three_queued(a, "mv", v5)
    back = client(b, cid, v5=v5, clean=False, expiry=300 if v5 else None)
    assert back.session_present is True
    # in place before the CONNACK: the session and its subscription are on b already
    assert "mv/#" in b.broker.sessions[cid].subscriptions
    assert cid not in a.broker.sessions
    assert sorted(int(m.payload) for m in back.get_many(3)) == [0, 1, 2]
    back.expect_none()  # once each
    wait_until(lambda: _sees_filter(a, b, "mv/#"))
    pub = client(a)
    pub.publish("mv/after", "after", qos=1)
    assert back.get().payload == b"after"
    back.expect_none()
    for c in (back, pub):
        c.close()


def test_live_connection_taken_over_with_session_present(two):
    a, b = two
    cid = uid("live")
    old = client(a, cid, v5=True, clean=False, expiry=300)
    old.subscribe("lv/+", qos=1)
    new = client(b, cid, v5=True, clean=False, expiry=300)
    assert new.session_present is True
    assert old.wait_disconnected() == 0x8E
    assert cid not in a.broker.sessions
    wait_until(lambda: _sees_filter(a, b, "lv/+"))
    pub = client(a)
    pub.publish("lv/1", "x", qos=1)
    assert new.get().payload == b"x"
    # no session anywhere: present = 0; a clean start elsewhere: present = 0
    assert client(b, uid("nobody"), v5=True, clean=False, expiry=300).session_present is False
    assert client(a, cid, v5=True, clean=True).session_present is False
    for c in (old, new, pub):
        c.close()


def _will_client(node, cid, *, delay=None):
    c = MqttClient(node.host, node.port, cid, version=5, clean=False)
    c.will_set(f"will/{cid}", b"gone", qos=1,
               properties=props("WILL", WillDelayInterval=delay) if delay else None)
    return c.connect(properties=props("CONNECT", SessionExpiryInterval=300))


def test_will_published_once_on_takeover(two):
    a, b = two
    cid = uid("willy")
    watchers = [client(n) for n in (a, b)]
    for w in watchers:
        w.subscribe(f"will/{cid}", qos=1)
    wait_until(lambda: _sees_filter(a, b, f"will/{cid}") and _sees_filter(b, a, f"will/{cid}"))
    old = _will_client(a, cid)
    new = client(b, cid, v5=True, clean=False, expiry=300)
    assert new.session_present is True
    # a will without delay: published once by the node that had the connection (as EMQX)
    for w in watchers:
        assert w.get().payload == b"gone"
        w.expect_none(timeout=1.0)
    for c in watchers + [old, new]:
        c.close()


def test_delayed_will_dropped_when_the_client_is_back_elsewhere(two):
    a, b = two
    cid = uid("delay")
    watcher = client(b)
    watcher.subscribe(f"will/{cid}", qos=1)
    wait_until(lambda: _sees_filter(a, b, f"will/{cid}"))
    old = _will_client(a, cid, delay=1)
    old.drop()  # abnormal: the will waits for its delay on a
    wait_until(lambda: a.broker.sessions[cid].will_handle is not None)
    back = client(b, cid, v5=True, clean=False, expiry=300)
    assert back.session_present is True
    time.sleep(1.5)  # past the delay: no will from a (the client came back in time)
    watcher.expect_none(timeout=0.5)
    for c in (watcher, back):
        c.close()


def test_a_restored_session_goes_to_the_node_its_client_reconnected_to(two):
    """b restores its persistent sessions from disk when it restarts; one whose client came
    back on a while b was down is handed over to a, with the messages queued for it, before b
    lets clients in, instead of staying on b as a second copy."""
    a, b = two
    cid = offline_with_three_queued(b, "rb")
    b.stop()
    again = client(a, cid, v5=True, clean=False, expiry=300)  # b cannot hand it over now
    assert again.session_present is False
    b.start()
    assert cid not in b.broker.sessions
    assert sorted(int(m.payload) for m in again.get_many(3)) == [0, 1, 2]
    assert "rb/#" in a.broker.sessions[cid].subscriptions
    again.expect_none()
    again.close()
