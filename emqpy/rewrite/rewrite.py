"""Topic rewrite (EMQX's emqx_rewrite): rules of the config root `rewrite` change the topic of
PUBLISHes (`message.publish`) and the filters of SUBSCRIBE and UNSUBSCRIBE
(`client.subscribe`, `client.unsubscribe`).

As EMQX: the rules are tried last first; the first whose `source_topic` filter matches the
topic decides (when its regular expression then does not match, the topic stays as it is);
`dest_topic` gets `${clientid}`/`${username}` (when the client has one) and `$1`, `$2`, ... (the
expression's groups). A shared subscription keeps its group and has its filter rewritten.
"""
from __future__ import annotations

import re

from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import matches, parse_share

PRIORITY = 980  # EMQX's HP_REWRITE: before every other message.publish callback


class Rule:
    __slots__ = ("source", "regex", "dest")

    def __init__(self, source: str, regex: str, dest: str):
        self.source = source
        self.regex = re.compile(regex)
        self.dest = dest


def compile_rules(config_rules) -> tuple[list[Rule], list[Rule]]:
    """(publish rules, subscribe rules), each in the order they are tried (last rule first)."""
    pub, sub = [], []
    for r in reversed(config_rules):
        rule = Rule(r.source_topic, r.re, r.dest_topic)
        if r.action in ("publish", "all"):
            pub.append(rule)
        if r.action in ("subscribe", "all"):
            sub.append(rule)
    return pub, sub


def rewrite(topic: str, rules: list[Rule], clientid: str | None, username: str | None) -> str:
    for rule in rules:
        if matches(rule.source, topic):
            m = rule.regex.search(topic)
            if m is None:
                return topic
            out = rule.dest
            # (a client without a client id or username leaves its placeholder as written)
            if clientid:
                out = out.replace("${clientid}", clientid)
            if username:
                out = out.replace("${username}", username)
            for i, group in enumerate(m.groups(), 1):
                out = out.replace(f"${i}", group or "")
            return out
    return topic


def rewrite_filter(flt: str, rules: list[Rule], clientid, username) -> str:
    try:
        _group, real, _exclusive = parse_share(flt)
    except MQTTError:
        return flt  # refused by the subscribe itself
    new = rewrite(real, rules, clientid, username)
    return flt if new == real else flt[:len(flt) - len(real)] + new


class Rewriter:
    """The registered callbacks of one set of rules."""

    def __init__(self, broker, config_rules):
        self.broker = broker
        self.pub, self.sub = compile_rules(config_rules)

    def register(self) -> None:
        hooks = self.broker.hooks
        if self.pub:
            hooks.add("message.publish", self.on_publish, PRIORITY)
        if self.sub:
            hooks.add("client.subscribe", self.on_subscribe, PRIORITY)
            hooks.add("client.unsubscribe", self.on_unsubscribe, PRIORITY)

    def unregister(self) -> None:
        hooks = self.broker.hooks
        hooks.remove("message.publish", self.on_publish)
        hooks.remove("client.subscribe", self.on_subscribe)
        hooks.remove("client.unsubscribe", self.on_unsubscribe)

    def on_publish(self, msg):
        topic = rewrite(msg.topic, self.pub, msg.sender, msg.username)
        if topic == msg.topic:
            return msg
        msg = msg.copy()
        msg.topic = topic
        msg._topic_b = None
        return msg

    def on_subscribe(self, flt: str, ch, opts) -> str:
        return rewrite_filter(flt, self.sub, ch.clientid, ch.username)

    def on_unsubscribe(self, flt: str, ch) -> str:
        return rewrite_filter(flt, self.sub, ch.clientid, ch.username)
