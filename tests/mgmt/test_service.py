"""emqpy.mgmt.service called as an embedding program calls it (in the broker's loop, no HTTP):
the same functions serve the REST API and `emqpy ctl`."""
from __future__ import annotations

import pytest

from emqpy.mgmt import service
from emqpy.mqtt.packets import SubOpts
from support.mqttclient import props, uid
from support.waiting import wait_until


def test_subscribe_on_behalf_of_a_client(env):
    b = env.broker
    pub = env.mqtt(uid("pub"))
    pub.publish("svc/retained", b"kept", 1, retain=True)
    sub = env.mqtt(uid("sub"))
    sess = b.sessions[sub.client_id]
    codes = env.call(service.subscribe, b, sess, [("svc/#", SubOpts(1))])
    assert codes == [1]
    got = sub.get()  # the retained message, delivered by the subscribe itself
    assert (got.topic, got.payload, got.retain) == ("svc/retained", b"kept", True)
    pub.publish("svc/live", b"now", 1)
    assert sub.get().payload == b"now"
    assert env.call(service.unsubscribe, b, sess, ["svc/#"]) == [0]
    assert "svc/#" not in sess.subscriptions


def test_subscribe_is_all_or_nothing(env):
    b = env.broker
    sess = b.sessions[env.mqtt(uid("sub")).client_id]
    for bad, why in (("a/#/b", "bad topic filter 'a/#/b'"),
                     ("$share/g/x", "no local is not allowed")):
        with pytest.raises(service.InvalidRequest, match=why):
            env.call(service.subscribe, b, sess,
                 [("fine/1", SubOpts(0)), (bad, SubOpts(0, no_local=True))])
    assert sess.subscriptions == {}


def test_kick_ends_the_session_and_last_connection_is_remembered(env):
    b = env.broker
    cid = uid("persist")
    c = env.mqtt(cid, clean=False, username="pat",
                   properties=props("CONNECT", SessionExpiryInterval=300))
    c.disconnect()
    sess = wait_until(lambda: (lambda s: s if s is not None and s.channel is None else None)(
        b.sessions.get(cid)), what="session offline")
    last = service.last_channel(b, sess)  # remembered since broker start, no request needed
    assert last is not None and last.username == "pat"
    assert env.call(service.kick_client, b, cid) is True
    assert cid not in b.sessions
    assert env.call(service.kick_client, b, cid) is False
