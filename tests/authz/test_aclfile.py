"""The acl.conf parser and matcher, on every rule form (no broker needed for these)."""
from types import SimpleNamespace

import pytest

from emqpy.authz.aclfile import AclSyntaxError, compile_rules
from emqpy.authz.match import first_match, topic_match

ACL = r"""
%% comments and blank lines are fine

{allow, {username, {re, "^dashboard$"}}, subscribe, ["$SYS/#"]}.
{allow, {ipaddr, "10.0.0.0/8"}, all, ["$SYS/#", "#"]}.
{allow, {ipaddrs, ["192.168.1.1", "172.16.0.0/12"]}, publish, ["lan/#"]}.
{deny, {user, "mallory"}, all, ["#"]}.
{allow, {clientid, "sensor-1"}, publish, ["sensors/${clientid}/data"]}.
{allow, {client, {re, "^cam-"}}, {publish, [{qos, [0, 1]}, {retain, false}]}, ["video/+"]}.
{allow, {'and', [{user, "ops"}, {ipaddr, "127.0.0.1"}]}, subscribe, [{eq, "ops/#"}]}.
{allow, {'or', [{user, "a"}, {user, "b"}]}, pubsub, ["ab/${username}"]}.
{allow, all, {subscribe, [{qos, 0}]}, ["qos0/#"]}.
{deny, all, subscribe, ["$SYS/#", {eq, "#"}]}.
{allow, all, all, "public/#"}.
{deny, all}.
"""


def client(clientid="c", username=None, peerhost="127.0.0.1"):
    return SimpleNamespace(clientid=clientid, username=username, peerhost=peerhost)


@pytest.fixture(scope="module")
def rules():
    return compile_rules(ACL)


def check(rules, ch, action, topic, qos=0, retain=False):
    return first_match(rules, ch, action, topic, qos, retain)


def test_each_rule_form(rules):
    dash = client(username="dashboard", peerhost="1.2.3.4")
    assert check(rules, dash, "subscribe", "$SYS/brokers") == "allow"
    assert check(rules, dash, "publish", "$SYS/brokers") == "deny"
    assert check(rules, client(peerhost="10.1.2.3"), "publish", "any/thing") == "allow"
    assert check(rules, client(peerhost="::ffff:10.1.2.3"), "subscribe", "$SYS/x") == "allow"
    assert check(rules, client(peerhost="172.20.0.1"), "publish", "lan/x") == "allow"
    assert check(rules, client(peerhost="192.168.1.1"), "publish", "lan/x") == "allow"
    assert check(rules, client(peerhost="192.168.1.2"), "publish", "lan/x") == "deny"
    assert check(rules, client(username="mallory"), "subscribe", "public/x") == "deny"
    s1 = client("sensor-1")
    assert check(rules, s1, "publish", "sensors/sensor-1/data") == "allow"
    assert check(rules, client("sensor-2"), "publish", "sensors/sensor-1/data") == "deny"
    cam = client("cam-7")
    assert check(rules, cam, "publish", "video/a", qos=1) == "allow"
    assert check(rules, cam, "publish", "video/a", qos=2) == "deny"
    assert check(rules, cam, "publish", "video/a", qos=0, retain=True) == "deny"
    ops = client(username="ops")
    assert check(rules, ops, "subscribe", "ops/#") == "allow"
    assert check(rules, ops, "subscribe", "ops/x") == "deny"  # eq: only the literal filter
    assert check(rules, client(username="ops", peerhost="1.1.1.1"), "subscribe", "ops/#") \
        == "deny"
    assert check(rules, client(username="b"), "publish", "ab/b") == "allow"
    assert check(rules, client(username="b"), "subscribe", "ab/b") == "allow"
    assert check(rules, client(username="b"), "subscribe", "ab/a") == "deny"
    assert check(rules, client(), "subscribe", "qos0/x", qos=0) == "allow"
    assert check(rules, client(), "subscribe", "qos0/x", qos=1) == "deny"
    assert check(rules, client(), "subscribe", "#") == "deny"
    assert check(rules, client(), "subscribe", "public/#") == "allow"
    assert check(rules, client(), "publish", "elsewhere") == "deny"


def test_topic_match():
    assert topic_match("a/b", "a/+") and topic_match("a/b/c", "a/#") and topic_match("a", "a/#")
    assert not topic_match("a/b/c", "a/+") and not topic_match("b", "a/#")
    assert topic_match("a/+", "a/+") and topic_match("a/#", "#")
    assert not topic_match("$SYS/x", "#") and not topic_match("$SYS/x", "+/x")
    assert topic_match("$SYS/x", "$SYS/#")


@pytest.mark.parametrize("bad", [
    "{allow, all, publish, [\"t\"]}",            # no final dot
    "{maybe, all}.",                             # bad permission
    "{allow, {user, alice}, publish, [\"t\"]}.",  # atom where a string is needed
    "{allow, all, dance, [\"t\"]}.",
    "{allow, {ipaddr, \"not-an-ip\"}, all, [\"t\"]}.",
    "{allow, all, publish, [\"t\"] .",
    "{allow, all, {publish, [{qos, 3}]}, [\"t\"]}.",
    "{allow, all, publish, [{eq}]}.",
    "{allow, all, publish}.",
    "{allow, all, publish, [\"t\"]}. $",
])
def test_syntax_errors(bad):
    with pytest.raises((AclSyntaxError, ValueError)):
        compile_rules(bad)
