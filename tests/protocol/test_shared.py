"""Shared subscriptions: $share/<group>/<filter>, $queue/<filter>, strategies, redispatch."""
from collections import Counter

import pytest

from support import rawmqtt as R
from support.mqttclient import sub_opts, uid

N = 12


def _members(mqtt, b, flt, n=2, qos=1, **kw):
    ms = [mqtt(b, **kw) for _ in range(n)]
    for m in ms:
        assert m.subscribe(flt, qos) == [qos]
    return ms


def _collect(members, total):
    """Gather `total` messages from the group; returns {member index: [payloads]}."""
    got: dict[int, list[bytes]] = {i: [] for i in range(len(members))}
    for _ in range(total):
        for _attempt in range(200):
            for i, m in enumerate(members):
                msgs = m.drain()
                got[i] += [x.payload for x in msgs]
            if sum(map(len, got.values())) >= total:
                return got
            # block briefly on one member so this loop never spins
            try:
                got[0].append(members[0].messages.get(timeout=0.025).payload)
            except Exception:
                pass
    raise AssertionError(f"group received {sum(map(len, got.values()))} of {total}: {got}")


def _publish(pub, t, n=N, qos=1):
    for i in range(n):
        pub.publish(t, str(i).encode(), qos=qos)


def _exactly_once(got, n=N):
    allp = [p for ps in got.values() for p in ps]
    assert Counter(allp) == Counter(str(i).encode() for i in range(n)), got


def test_each_message_to_one_member(broker, mqtt):
    t = uid("sh")
    ms = _members(mqtt, broker, f"$share/g/{t}")
    _publish(mqtt(broker), t)
    got = _collect(ms, N)
    _exactly_once(got)
    for m in ms:
        m.expect_none(0.2)


def test_groups_are_independent_and_plain_subscribers_get_all(broker, mqtt):
    t = uid("sh")
    g1 = _members(mqtt, broker, f"$share/g1/{t}")
    g2 = _members(mqtt, broker, f"$share/g2/{t}")
    plain = mqtt(broker)
    plain.subscribe(t, 1)
    _publish(mqtt(broker), t)
    _exactly_once(_collect(g1, N))
    _exactly_once(_collect(g2, N))
    assert [m.payload for m in plain.get_many(N)] == [str(i).encode() for i in range(N)]


def test_shared_wildcard_filter(broker, mqtt):
    t = uid("sh")
    ms = _members(mqtt, broker, f"$share/g/{t}/+")
    pub = mqtt(broker)
    for i in range(N):
        pub.publish(f"{t}/{i % 3}", str(i).encode(), qos=1)
    _exactly_once(_collect(ms, N))


def test_unsubscribe_shared(broker, mqtt):
    t = uid("sh")
    a, b = _members(mqtt, broker, f"$share/g/{t}")
    assert a.unsubscribe(f"$share/g/{t}") == [0]
    _publish(mqtt(broker), t, 4)
    assert [m.payload for m in b.get_many(4)] == [b"0", b"1", b"2", b"3"]
    a.expect_none(0.2)


@pytest.mark.emqpy_only
def test_shared_no_local_is_protocol_error(broker, raw):
    # MQTT 5 3.8.3.1: No Local on a shared subscription is a Protocol Error (Mosquitto 2.0
    # accepts it).
    r = raw(broker)
    r.connect(uid())
    r.send(R.subscribe_packet(1, [(f"$share/g/{uid()}", 0x04)]))
    got = r.expect_close()
    # EMQX emqx_packet:validate_topic_filters -> RC_PROTOCOL_ERROR
    assert [(p.type, p.rc) for p in got] == [(R.DISCONNECT, 0x82)]


@pytest.mark.emqpy_only  # EMQX emqx_topic:parse/validate_share; Mosquitto accepts some
@pytest.mark.parametrize("flt", ["$share/g", "$share//t", "$share/g+/t", "$share/g#/t"])
def test_invalid_share_filters_not_granted(broker, raw, flt):
    r = raw(broker)
    r.connect(uid())
    r.send(R.subscribe_packet(1, [(flt, 1)]))
    try:
        p = r.recv()
    except R.Closed:
        return
    assert p.type == R.DISCONNECT or (p.type == R.SUBACK and p.rcs[0] >= 0x80), p


@pytest.mark.emqpy_only
def test_queue_prefix(broker, mqtt):
    # EMQX: $queue/<filter> is the shared group "$queue".
    t = uid("q")
    ms = _members(mqtt, broker, f"$queue/{t}")
    plain = mqtt(broker)
    plain.subscribe(t, 1)
    _publish(mqtt(broker), t)
    _exactly_once(_collect(ms, N))
    assert len(plain.get_many(N)) == N


@pytest.mark.emqpy_only
@pytest.mark.parametrize("strategy", ["random", "round_robin", "round_robin_per_group",
                                      "sticky", "local", "hash_topic", "hash_clientid"])
def test_strategy(make_broker, mqtt, strategy):
    b = make_broker({"mqtt": {"shared_subscription_strategy": strategy}})
    t = uid("st")
    ms = _members(mqtt, b, f"$share/g/{t}", n=3)
    pub = mqtt(b)
    _publish(pub, t)
    got = _collect(ms, N)
    _exactly_once(got)
    counts = sorted(len(v) for v in got.values())
    if strategy in ("round_robin", "round_robin_per_group"):
        assert counts == [N // 3] * 3
    elif strategy in ("sticky", "hash_topic", "hash_clientid"):
        # one topic, one publisher, nobody leaves: a single member gets everything
        assert counts == [0, 0, N]
    if strategy == "hash_topic":
        # different topics may go to different members, but each topic sticks to one
        pub2 = mqtt(b)
        for m in ms:
            m.subscribe(f"$share/g/{t}/+", 1)
        for i in range(N):
            pub2.publish(f"{t}/{i % 2}", str(i).encode(), qos=1)
        got2 = _collect(ms, N)
        for sub_topic in (0, 1):
            owners = {i for i, ps in got2.items() for p in ps if int(p) % 2 == sub_topic}
            assert len(owners) == 1


@pytest.mark.emqpy_only
def test_sticky_moves_when_member_leaves(make_broker, mqtt):
    b = make_broker({"mqtt": {"shared_subscription_strategy": "sticky"}})
    t = uid("st")
    ms = _members(mqtt, b, f"$share/g/{t}", n=2)
    pub = mqtt(b)
    pub.publish(t, b"first", qos=1)
    got = _collect(ms, 1)
    owner = next(i for i, ps in got.items() if ps)
    ms[owner].disconnect()
    other = ms[1 - owner]
    _publish(pub, t, 3)
    assert [m.payload for m in other.get_many(3)] == [b"0", b"1", b"2"]


@pytest.mark.emqpy_only
def test_redispatch_unacked_when_member_session_ends(broker, mqtt):
    # EMQX emqx_session_mem:terminate -> emqx_shared_sub:redispatch for inflight/queued
    # QoS 1/2 messages of a shared subscription when the session ends (not on takeover).
    t = uid("rd")
    a = mqtt(broker, manual_ack=True)
    a.subscribe(f"$share/g/{t}", 1)
    pub = mqtt(broker)
    pub.publish(t, b"m1", qos=1)
    assert a.get().payload == b"m1"  # held, never acked
    b = mqtt(broker)
    b.subscribe(f"$share/g/{t}", 1)
    a.drop()  # session expiry 0: the session ends with m1 unacked
    m = b.get()
    assert m.payload == b"m1" and m.qos == 1


@pytest.mark.emqpy_only
def test_shared_subscription_disabled(make_broker, mqtt):
    b = make_broker({"mqtt": {"shared_subscription": False}})
    c = mqtt(b)
    assert c.subscribe(f"$share/g/{uid()}", 1) == [0x9E]
    assert c.subscribe(f"$queue/{uid()}", 1) == [0x9E]
    assert c.subscribe(uid(), 1) == [1]


def test_shared_subscription_qos0_member(broker, mqtt):
    t = uid("sh")
    ms = _members(mqtt, broker, f"$share/g/{t}", qos=0)
    _publish(mqtt(broker), t, qos=1)
    got = _collect(ms, N)
    _exactly_once(got)


def test_shared_member_with_rh_options(broker, mqtt):
    # Subscription options other than No Local are allowed on shared subscriptions.
    t = uid("sh")
    c = mqtt(broker)
    assert c.subscribe(f"$share/g/{t}", options=sub_opts(1, rap=True, rh=2)) == [1]
    mqtt(broker).publish(t, b"x", qos=1)
    assert c.get().payload == b"x"
