"""Rule matching shared by the file and built-in database sources."""
from __future__ import annotations

from emqpy.connectors.placeholders import render
from emqpy.mqtt.topic import matches


def topic_match(name: str, flt: str) -> bool:
    """EMQX's emqx_topic:match: `name` (possibly itself a filter) against filter `flt`."""
    return matches(flt, name)


class TopicSpec:
    __slots__ = ("filter", "eq", "templated")

    def __init__(self, flt: str, eq: bool = False):
        self.filter, self.eq = flt, eq
        self.templated = "${" in flt

    def matches(self, ch, topic: str) -> bool:
        flt = self.filter
        if self.templated:
            flt = render(flt, {"clientid": ch.clientid or "", "username": ch.username or ""})
        return topic == flt if self.eq else matches(flt, topic)


class Rule:
    __slots__ = ("permission", "who", "action", "qos", "retain", "topics")

    def __init__(self, permission, who, action, qos, retain, topics):
        self.permission, self.who, self.action = permission, who, action
        self.qos, self.retain, self.topics = qos, retain, topics

    def match(self, ch, action: str, topic: str, qos: int, retain: bool) -> str | None:
        if self.action != "all" and self.action != action:
            return None
        if self.qos is not None and qos not in self.qos:
            return None
        if self.retain != "all" and action == "publish" and bool(retain) != self.retain:
            return None
        if not self.who(ch):
            return None
        if self.topics is not None and not any(t.matches(ch, topic) for t in self.topics):
            return None
        return self.permission


def first_match(rules, ch, action, topic, qos, retain) -> str | None:
    for r in rules:
        res = r.match(ch, action, topic, qos, retain)
        if res is not None:
            return res
    return None


_ACL_ACTIONS = {"pub": "publish", "publish": "publish", "sub": "subscribe",
                "subscribe": "subscribe", "all": "all"}


def compile_client_acl(acl) -> list[Rule]:
    """EMQX's JWT `acl` claim: a list of {permission, action, topic, qos?, retain?} rules, or
    the older {"pub": [...], "sub": [...], "all": [...]} map of allowed topics."""
    items = []
    if isinstance(acl, dict):
        for action, topics in acl.items():
            for t in topics if isinstance(topics, list) else [topics]:
                items.append({"permission": "allow", "action": action, "topic": t})
    elif isinstance(acl, list):
        items = [a for a in acl if isinstance(a, dict)]
    rules = []
    for it in items:
        action = _ACL_ACTIONS.get(str(it.get("action", "all")).lower())
        perm = it.get("permission", "allow")
        topic = it.get("topic")
        if action is None or perm not in ("allow", "deny") or not isinstance(topic, str):
            continue  # a rule we cannot read grants nothing
        qos = it.get("qos")
        qos = {qos} if isinstance(qos, int) else set(qos) if isinstance(qos, list) else None
        retain = it.get("retain", "all")
        if retain not in (True, False):
            retain = "all"
        spec = TopicSpec(topic[3:], eq=True) if topic.startswith("eq ") else TopicSpec(topic)
        rules.append(Rule(perm, lambda ch: True, action, qos, retain, [spec]))
    return rules
