"""Actions with a `local_topic` (hidden in EMQX's v2 API, a v1 bridge's `local_topic` or
`egress.local.topic`): every message published in this broker on a matching topic goes to the
action without a rule, with the columns of the rule engine's message.publish event (EMQX's
emqx_bridge on_message_publish). `$SYS` messages are left out, as EMQX leaves them.
"""
from __future__ import annotations

from emqpy.mqtt.topic import matches

# after the other features' message.publish callbacks: what is sent is what is routed
PRIORITY = -90
_SYS_FLAG = 1  # Message.flags bit of a $SYS message


class LocalTopics:
    def __init__(self, svc):
        self.svc = svc
        self.routes: list[tuple[str, str]] = []  # (topic filter, action id)
        self._hooked = False

    def refresh(self) -> None:
        """Follow the running actions (called when one starts or stops): the hook is
        registered only while an action has a local topic."""
        self.routes = [(a.cfg.local_topic, a.id) for a in self.svc.actions.values()
                       if a.cfg.enable and a.cfg.local_topic and a.worker is not None]
        hooks = self.svc.broker.hooks
        if self.routes and not self._hooked:
            hooks.add("message.publish", self._on_publish, PRIORITY)
        elif not self.routes and self._hooked:
            hooks.remove("message.publish", self._on_publish)
        self._hooked = bool(self.routes)

    def close(self) -> None:
        self.routes = []
        if self._hooked:
            self.svc.broker.hooks.remove("message.publish", self._on_publish)
            self._hooked = False

    def _on_publish(self, msg):
        if msg.flags & _SYS_FLAG:
            return msg
        hits = [aid for flt, aid in self.routes if matches(flt, msg.topic)]
        if hits:
            from emqpy.rule_engine.events import message_envs, message_publish
            broker = self.svc.broker
            columns, envs = message_publish(broker, msg), message_envs(msg)
            for aid in hits:
                try:
                    self.svc.send(aid, dict(columns), envs)
                except LookupError:  # removed in between
                    pass
        return msg
