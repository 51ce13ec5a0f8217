"""Topic rewrite: EMQX's rules (emqx_rewrite_SUITE's set) applied to PUBLISH, SUBSCRIBE and
UNSUBSCRIBE from real clients, and GET/PUT /mqtt/topic_rewrite."""
from __future__ import annotations

import pytest

from support.mqttclient import uid
from support.node import assert_error

RULES = [
    {"action": "publish", "source_topic": "x/#", "re": "^x/y/(.+)$", "dest_topic": "z/y/$1"},
    {"action": "publish", "source_topic": "name/#", "re": "^name/(.+)$",
     "dest_topic": "pub/${username}/$1"},
    {"action": "publish", "source_topic": "c/#", "re": "^c/(.+)$",
     "dest_topic": "pub/${clientid}/$1"},
    {"action": "subscribe", "source_topic": "y/+/z/#", "re": "^y/(.+)/z/(.+)$",
     "dest_topic": "y/z/$2"},
    {"action": "subscribe", "source_topic": "name/#", "re": "^name/(.+)$",
     "dest_topic": "sub/${username}/$1"},
    {"action": "subscribe", "source_topic": "c/#", "re": "^c/(.+)$",
     "dest_topic": "sub/${clientid}/$1"},
    {"action": "all", "source_topic": "all/+/x/#", "re": "^all/(.+)/x/(.+)$",
     "dest_topic": "all/x/$2"},
]


@pytest.fixture
def node(make_broker):
    return make_broker({"rewrite": RULES, "sys_topics": {"sys_msg_interval": "disabled"}})


def _subscriptions(node, clientid):
    return [s["topic"] for s in node.get(f"/clients/{clientid}/subscriptions")]


def test_subscribe_and_unsubscribe_are_rewritten(node):
    cid = uid("c")
    c = node.mqtt(cid, username="u1")
    orig = ["y/a/z/b", "y/def", "name/1", "c/1", "$share/g/c/2", "all/a/x/b"]
    dest = ["y/z/b", "y/def", "sub/u1/1", f"sub/{cid}/1", f"$share/g/sub/{cid}/2", "all/x/b"]
    assert c.subscribe(None, many=[(t, 1) for t in orig]) == [1] * len(orig)
    assert sorted(_subscriptions(node, cid)) == sorted(dest)
    pub = node.mqtt()
    for t in ["y/z/b", "y/def", "sub/u1/1", f"sub/{cid}/1", f"sub/{cid}/2"]:
        pub.publish(t, b"p", qos=1)
        assert c.get().topic == t
    # UNSUBSCRIBE of the filters as the client wrote them removes the rewritten ones
    assert c.unsubscribe(orig) == [0] * len(orig)
    assert _subscriptions(node, cid) == []


def test_publish_is_rewritten(node):
    cid = uid("c")
    c = node.mqtt(cid, username="u1")
    orig = ["x/y/2", "x/1/2", "name/1", "c/1", "all/q/x/r"]
    dest = ["z/y/2", "x/1/2", "pub/u1/1", f"pub/{cid}/1", "all/x/r"]
    for t in dest:
        c.subscribe(t, 1)
    for o, d in zip(orig, dest):
        c.publish(o, b"payload", qos=1)
        assert c.get().topic == d


def test_placeholders_without_username_stay_as_written(node):
    c = node.mqtt(uid("anon"))
    c.subscribe("pub/${username}/1", 0)
    c.publish("name/1", b"x", qos=1)
    assert c.get().topic == "pub/${username}/1"


def test_last_matching_rule_wins_and_no_rules_no_hooks(make_broker):
    rules = [{"action": "all", "source_topic": "a/#", "re": "^a/(.+)$", "dest_topic": "first/$1"},
             {"action": "all", "source_topic": "a/#", "re": "^a/(.+)$", "dest_topic": "last/$1"},
             # its filter matches first, its expression does not: the topic stays
             {"action": "publish", "source_topic": "b/#", "re": "^nomatch$", "dest_topic": "q"}]
    n = make_broker({"rewrite": rules})
    c = n.mqtt()
    c.subscribe("last/#", 0)
    c.subscribe("b/#", 0)
    c.publish("a/1", b"", qos=1)
    assert c.get().topic == "last/1"
    c.publish("b/1", b"", qos=1)
    assert c.get().topic == "b/1"
    assert n.ok("PUT", "/mqtt/topic_rewrite", json=[]) == []
    points = n.broker.hooks._points
    assert not {"client.subscribe", "client.unsubscribe"} & set(points)
    assert "message.publish" not in points  # (delayed publish is a broker slot, not a callback)
    c.publish("a/2", b"", qos=1)
    c.subscribe("a/#", 0)
    c.publish("a/3", b"", qos=1)
    assert c.get().topic == "a/3"


def test_api(node):
    assert node.get("/mqtt/topic_rewrite") == RULES
    new = [{"action": "publish", "source_topic": "test/#", "re": "test/*",
            "dest_topic": "test1/$2"}]
    assert node.ok("PUT", "/mqtt/topic_rewrite", json=new) == new
    assert node.get("/mqtt/topic_rewrite") == new
    c = node.mqtt()
    c.subscribe("test1/#", 0)
    c.publish("test/a", b"", qos=1)
    assert c.get().topic == "test1/$2"  # no second group: left as written, as EMQX
    api = node.api
    bad = [{**new[0], "dest_topic": "x/#"}]
    assert_error(api.put("/mqtt/topic_rewrite", json=bad), 400, "BAD_REQUEST", "wildcard")
    assert_error(api.put("/mqtt/topic_rewrite", json=[{**new[0], "re": "(unclosed"}]), 400,
                 "BAD_REQUEST")
    assert_error(api.put("/mqtt/topic_rewrite", json=[{**new[0], "action": "x"}]), 400,
                 "BAD_REQUEST")
    assert_error(api.put("/mqtt/topic_rewrite", json=new * 20), 413, "EXCEED_LIMIT")
    assert node.ok("PUT", "/mqtt/topic_rewrite", json=new * 19) == new * 19
    # subscribe rules may write wildcards in their destination
    sub_rule = [{"action": "subscribe", "source_topic": "s/#", "re": "^s/(.+)$",
                 "dest_topic": "t/+/$1"}]
    assert node.ok("PUT", "/mqtt/topic_rewrite", json=sub_rule) == sub_rule


def test_rules_are_kept_across_restart(make_broker):
    node = make_broker()
    assert node.get("/mqtt/topic_rewrite") == []
    node.ok("PUT", "/mqtt/topic_rewrite", json=RULES[:1])
    node.restart()
    assert node.get("/mqtt/topic_rewrite") == RULES[:1]
    c = node.mqtt()
    c.subscribe("z/y/#", 0)
    c.publish("x/y/1", b"", qos=1)
    assert c.get().topic == "z/y/1"
