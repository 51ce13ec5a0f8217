"""GET /subscriptions (every filter), GET /topics and /topics/{topic}, against the subscriptions
real MQTT clients made."""
from __future__ import annotations

from support.mqttclient import sub_opts, uid
from support.waiting import wait_until


def _subs(env, **params):
    r = env.ok("GET", "/subscriptions", params=params)
    return {(s["clientid"], s["topic"], s["qos"]) for s in r["data"]}, r["meta"]


def test_subscriptions_filters(env):
    a, b = env.mqtt(uid("a")), env.mqtt(uid("b"))
    a.subscribe("s/+/temp", 1)
    a.subscribe("$share/g1/s/1/temp", 2)
    b.subscribe("s/1/temp", 0)
    b.subscribe("other/#", options=sub_opts(qos=1, no_local=True, rap=True, rh=2))
    A, B = a.client_id, b.client_id
    every = {(A, "s/+/temp", 1), (A, "$share/g1/s/1/temp", 2), (B, "s/1/temp", 0),
             (B, "other/#", 1)}
    got, meta = _subs(env)
    assert got == every and meta["count"] == 4 and meta["hasnext"] is False
    r = env.ok("GET", "/subscriptions", params={"clientid": B, "topic": "other/#"})
    assert r["data"] == [{"clientid": B, "topic": "other/#", "qos": 1, "nl": 1, "rap": 1,
                          "rh": 2, "node": env.broker.node_name, "durable": False}]

    assert _subs(env, clientid=A)[0] == {x for x in every if x[0] == A}
    assert _subs(env, clientid="nobody")[0] == set()
    assert _subs(env, qos=0)[0] == {(B, "s/1/temp", 0)}
    # as EMQX: a plain topic selects plain subscriptions; a group is asked for explicitly
    assert _subs(env, topic="s/1/temp")[0] == {(B, "s/1/temp", 0)}
    assert _subs(env, topic="s/1/temp", share_group="g1")[0] == {(A, "$share/g1/s/1/temp", 2)}
    assert _subs(env, topic="s/1/temp", share_group="g2")[0] == set()
    assert _subs(env, topic="$share/g1/s/1/temp")[0] == {(A, "$share/g1/s/1/temp", 2)}
    assert _subs(env, topic="s/1/temp", clientid=A)[0] == set()
    assert _subs(env, topic="s/+/temp", clientid=A)[0] == {(A, "s/+/temp", 1)}
    assert _subs(env, share_group="g1")[0] == {(A, "$share/g1/s/1/temp", 2)}
    # match_topic is a filter over the subscriptions' topics (EMQX's emqx_topic:match)
    got, meta = _subs(env, match_topic="s/#")
    assert got == {(A, "s/+/temp", 1), (A, "$share/g1/s/1/temp", 2), (B, "s/1/temp", 0)}
    assert "count" not in meta  # fuzzy filter, as EMQX
    assert _subs(env, match_topic="s/1/temp")[0] == {(A, "$share/g1/s/1/temp", 2),
                                                     (B, "s/1/temp", 0)}
    assert _subs(env, match_topic="s/+/temp", clientid=A)[0] == {
        (A, "s/+/temp", 1), (A, "$share/g1/s/1/temp", 2)}
    assert _subs(env, match_topic="+/#", qos=1)[0] == {(A, "s/+/temp", 1), (B, "other/#", 1)}
    assert _subs(env, match_topic="s/2/temp", clientid=B)[0] == set()
    assert _subs(env, durable="true")[0] == set()
    assert _subs(env, durable="false")[0] == every
    assert _subs(env, node=env.broker.node_name, qos=1)[0] == {(A, "s/+/temp", 1),
                                                              (B, "other/#", 1)}
    for bad in ({"qos": 3}, {"node": "nope@host"}, {"match_topic": "a/#/b"},
                {"match_topic": "$share/g/a"},
                {"topic": "a/#/b"}, {"limit": 0}):
        r = env.api.get("/subscriptions", params=bad)
        assert r.status_code == 400, (bad, r.text)

    # paging follows session order, then subscription order
    r1 = env.ok("GET", "/subscriptions", params={"limit": 3})
    r2 = env.ok("GET", "/subscriptions", params={"limit": 3, "page": 2})
    assert r1["meta"]["hasnext"] is True and r2["meta"]["hasnext"] is False
    assert [s["topic"] for s in r1["data"] + r2["data"]] == [
        "s/+/temp", "$share/g1/s/1/temp", "s/1/temp", "other/#"]

    a.unsubscribe("s/+/temp")
    assert _subs(env, clientid=A)[0] == {(A, "$share/g1/s/1/temp", 2)}


def test_topics(env):
    a, b = env.mqtt(uid("a")), env.mqtt(uid("b"))
    a.subscribe("t/1", 1)
    b.subscribe("t/1", 0)
    b.subscribe("t/#", 0)
    b.subscribe("$share/grp/t/1", 0)
    node = env.broker.node_name
    r = env.ok("GET", "/topics")
    assert sorted(x["topic"] for x in r["data"]) == ["$share/grp/t/1", "t/#", "t/1"]
    assert all(x["node"] == node for x in r["data"])
    assert r["meta"]["count"] == 3 and r["meta"]["hasnext"] is False
    # the topic filter selects the plain route, or with $share/<g>/ that group's route
    r = env.ok("GET", "/topics", params={"topic": "t/1"})
    assert r["data"] == [{"topic": "t/1", "node": node}] and r["meta"]["count"] == 1
    r = env.ok("GET", "/topics", params={"topic": "$share/grp/t/1"})
    assert r["data"] == [{"topic": "$share/grp/t/1", "node": node}]
    assert env.ok("GET", "/topics", params={"topic": "nothing"})["data"] == []
    assert env.api.get("/topics", params={"topic": "a/#/b"}).status_code == 400
    r = env.ok("GET", "/topics", params={"limit": 2})
    assert len(r["data"]) == 2 and r["meta"]["hasnext"] is True
    r2 = env.ok("GET", "/topics", params={"limit": 2, "page": 2})
    assert {x["topic"] for x in r["data"] + r2["data"]} == {"$share/grp/t/1", "t/#", "t/1"}
    assert env.ok("GET", "/topics", params={"node": "x@y"})["data"] == []
    assert len(env.ok("GET", "/topics", params={"node": node})["data"]) == 3

    assert env.ok("GET", "/topics/t%2F%23") == [{"topic": "t/#", "node": node}]
    assert sorted(x["topic"] for x in env.ok("GET", "/topics/t%2F1")) == [
        "$share/grp/t/1", "t/1"]
    r = env.api.get("/topics/nope%2Fnope")
    assert r.status_code == 404 and r.json()["code"] == "TOPIC_NOT_FOUND"

    b.unsubscribe("t/#")
    b.unsubscribe("$share/grp/t/1")
    a.disconnect()
    b.disconnect()  # the broker handles the DISCONNECTs on its own schedule: poll
    wait_until(lambda: env.ok("GET", "/topics")["data"] == [], what="routes removed")
    assert env.api.get("/topics/t%2F1").status_code == 404
