"""Persistent sessions across a clean restart of a node on the same data dir: what is kept,
what is not, the journal's generations and a torn tail."""
from __future__ import annotations

from emqpy.durable import records
from support.mqttclient import props, sub_opts, uid
from support.rawmqtt import DISCONNECT, SESSION_EXPIRY, SUBACK, subscribe_packet
from support.waiting import wait_until


def _journals(node) -> list:
    return [p.name for _gen, p in records.generations(node.data_dir / "sessions")]


def _resume(node, cid, expiry=300):
    return node.mqtt(cid, clean=False, properties=props("CONNECT", SessionExpiryInterval=expiry))


def test_sessions_and_queues_come_back_after_a_clean_restart(make_broker):
    node = make_broker()
    cid = node.offline_session("r", "rs/#")
    pub = node.mqtt()
    for i in range(50):
        pub.publish(f"rs/{i}", b"%d" % i, qos=1)
    before = _journals(node)
    node.restart()
    after = _journals(node)
    assert len(before) == len(after) == 1 and before != after  # a new generation, one file
    info = node.get(f"/clients/{cid}")
    assert info["connected"] is False and info["mqueue_len"] == 50
    assert info["subscriptions_cnt"] == 1
    sub = _resume(node, cid)
    assert sub.session_present
    assert [m.payload for m in sub.get_many(50)] == [b"%d" % i for i in range(50)]


def test_clean_start_and_expiry_zero_end_the_kept_session(make_broker):
    node = make_broker()
    a = node.offline_session("a", "ce/a")
    b = node.offline_session("b", "ce/b")
    node.mqtt(a, clean=True).close()  # clean start 1: the session is discarded
    c = _resume(node, b)
    c.disconnect(properties=props("DISCONNECT", SessionExpiryInterval=0))  # ends at disconnect
    wait_until(lambda: node.client().get(f"/api/v5/clients/{b}", auth=("admin", "public"))
               .status_code == 404)
    node.restart()
    for cid in (a, b):
        assert node.client().get(f"/api/v5/clients/{cid}",
                                 auth=("admin", "public")).status_code == 404
        assert _resume(node, cid).session_present is False


def test_unsubscribe_is_kept(make_broker):
    node = make_broker()
    cid = uid("u")
    c = _resume(node, cid)
    c.subscribe("un/1", qos=1)
    c.subscribe("un/2", qos=2)
    c.unsubscribe("un/1")
    c.disconnect()
    node.restart()
    subs = node.get(f"/clients/{cid}/subscriptions")
    assert [(s["topic"], s["qos"]) for s in subs] == [("un/2", 2)]


def test_a_torn_tail_is_cut_off(make_broker):
    node = make_broker()
    cid = node.offline_session("t", "torn/#")
    node.mqtt().publish("torn/x", b"kept", qos=1)
    node.stop()
    (journal,) = [p for _g, p in records.generations(node.data_dir / "sessions")]
    with open(journal, "ab") as f:  # half a record: a crash in the middle of a write
        f.write(records.encode([("x", cid)])[:-3])
    node.start()
    sub = _resume(node, cid)
    assert sub.session_present
    assert sub.get().payload == b"kept"


def test_a_new_generation_starts_past_the_size_limit(make_broker):
    node = make_broker()
    cid = node.offline_session("g", "gen/#")
    journal = node.broker.durable
    node.call(setattr, journal, "min_compact_bytes", 4096)
    node.call(setattr, journal, "compact_bytes", 4096)
    first = journal.gen
    pubs = [node.mqtt() for _ in range(3)]
    sent = []
    for i in range(600):  # three publishers, none waiting: commits overlap
        sent.append(pubs[i % 3].publish(f"gen/{i % 3}", b"%04d" % i + b"." * 100, qos=1,
                                        wait=False))
    for info in sent:
        info.wait_for_publish(10)
        assert info.is_published()
    assert journal.gen > first + 1
    assert len(_journals(node)) == 1
    node.restart()
    sub = _resume(node, cid)
    got = [m.payload[:4] for m in sub.get_many(600)]
    assert sorted(got) == [b"%04d" % i for i in range(600)]
    for k in range(3):  # in order per publisher
        mine = [p for p in got if int(p) % 3 == k]
        assert mine == sorted(mine)


def test_subscription_options_and_shared_groups_come_back(make_broker):
    node = make_broker()
    cid = uid("o")
    c = _resume(node, cid)
    c.subscribe("opt/id", qos=1, properties=props("SUBSCRIBE", SubscriptionIdentifier=7))
    c.subscribe("opt/rap", options=sub_opts(qos=1, rap=True))
    c.subscribe("opt/nl", options=sub_opts(qos=1, no_local=True))
    c.subscribe("$share/g/opt/shared", qos=2)
    c.disconnect()
    node.restart()
    subs = {s["topic"]: s for s in node.get(f"/clients/{cid}/subscriptions")}
    assert set(subs) == {"opt/id", "opt/rap", "opt/nl", "$share/g/opt/shared"}
    assert (subs["opt/rap"]["rap"], subs["opt/nl"]["nl"], subs["$share/g/opt/shared"]["qos"]) \
        == (1, 1, 2)
    c = _resume(node, cid)
    assert c.session_present
    pub = node.mqtt()
    pub.publish("opt/id", b"a", qos=1)
    pub.publish("opt/rap", b"b", qos=1, retain=True)
    pub.publish("opt/shared", b"c", qos=2)
    got = {m.topic: m for m in c.get_many(3)}
    assert got["opt/id"].properties.SubscriptionIdentifier == [7]
    assert got["opt/rap"].retain  # retain as published
    assert got["opt/shared"].payload == b"c" and got["opt/shared"].qos == 2
    c.publish("opt/nl", b"mine", qos=1)  # no local: not back to its sender
    c.expect_none()


def test_output_held_for_the_journal_goes_out_before_a_close(make_broker):
    """A SUBSCRIBE of a kept session and a malformed packet in one segment: the SUBACK waits
    for the journal, the protocol error closes the connection in the same iteration; the
    SUBACK and the DISCONNECT still arrive, in that order, before the close."""
    node = make_broker()
    c = node.raw()
    assert c.connect(uid("h"), clean=False, properties={SESSION_EXPIRY: 300}).rc == 0
    c.send(subscribe_packet(1, [("held/t", 1)]) + bytes([0x36, 0x00]))  # QoS 3: malformed
    got = c.expect_close()
    assert [p.type for p in got] == [SUBACK, DISCONNECT]
    assert got[0].rcs == [1] and got[1].rc == 0x81


def test_a_session_that_cannot_be_read_back_is_skipped(make_broker):
    node = make_broker()
    cid = node.offline_session("ok", "skip/#")
    node.stop()
    (journal,) = [p for _g, p in records.generations(node.data_dir / "sessions")]
    with open(journal, "ab") as f:  # intact records, but not a session state emqpy wrote
        f.write(records.encode([("s", "bad-state", (1, 2, 3))]))
    node.start()
    assert node.client().get("/api/v5/clients/bad-state",
                             auth=("admin", "public")).status_code == 404
    assert _resume(node, cid).session_present
