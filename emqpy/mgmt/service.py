"""Operations on the running broker shared by the REST API, `emqpy ctl` and embedding programs
(EMQX's emqx_mgmt plays this role): each is done here once, and the callers only parse their
input and format the answer.

    kick_client(broker, "c1")                    # disconnect and end the session
    subscribe(broker, sess, [("t/#", SubOpts(1))])  # on behalf of a client
    unsubscribe(broker, sess, ["t/#"])
    last_channel(broker, sess)                   # live connection, else the last one

Listener start/stop/restart are `emqpy.listeners`' own functions. Invalid input raises
InvalidRequest with a message naming what is wrong.
"""
from __future__ import annotations

import weakref
from typing import Any

from emqpy.mqtt.packets import SubOpts
from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import parse_share, validate_topic_filter


class InvalidRequest(ValueError):
    pass


# -- clients ----------------------------------------------------------------------------------

def kick_client(broker, clientid: str) -> bool:
    """Disconnect the client and end its session, as EMQX's kick does (a kicked persistent
    session does not stay behind offline). False if there is no such client."""
    if not broker.kick(clientid):
        return False
    sess = broker.sessions.get(clientid)
    if sess is not None and sess.channel is None:
        broker.discard_session(sess, "kicked")
    broker.flush()
    return True


class ClientTracker:
    """clientid -> the Channel that last served a session which is now offline (EMQX lists an
    offline session with the facts of its last connection)."""

    def __init__(self, broker):
        # weak: the registry's values must not keep their broker keys alive
        self._broker = weakref.ref(broker)
        self.last: dict[str, Any] = {}
        # A session that resumes is served again (a new session cannot be in `last`: its
        # predecessor's end ran session.terminated), so that is when to forget.
        broker.hooks.add("session.resumed", self._resumed)
        broker.hooks.add("client.disconnected", self._disconnected)
        broker.hooks.add("session.terminated", self._terminated)
        broker.hooks.add("session.discarded", self._terminated)

    def _resumed(self, sess) -> None:
        self.last.pop(sess.clientid, None)

    def _disconnected(self, ch, reason) -> None:
        broker = self._broker()
        sess = broker.sessions.get(ch.clientid) if broker is not None else None
        if sess is not None and sess is ch.session and sess.channel is None:
            self.last[ch.clientid] = ch

    def _terminated(self, sess, reason=None) -> None:
        ch = self.last.get(sess.clientid)
        if ch is not None and ch.session is sess:
            del self.last[sess.clientid]

    def channel(self, sess):
        """The live channel of `sess`, else its last one (None if not known)."""
        ch = sess.channel
        if ch is not None:
            return ch
        ch = self.last.get(sess.clientid)
        return ch if ch is not None and ch.session is sess else None


_trackers: "weakref.WeakKeyDictionary[Any, ClientTracker]" = weakref.WeakKeyDictionary()


def track_clients(broker) -> ClientTracker:
    """Start remembering last connections (the mgmt feature's setup, at broker start)."""
    tracker = _trackers.get(broker)
    if tracker is None:
        tracker = _trackers[broker] = ClientTracker(broker)
    return tracker


def last_channel(broker, sess):
    """The live channel of `sess`, else the one that last served it (None if not known)."""
    tracker = _trackers.get(broker)
    return sess.channel if tracker is None else tracker.channel(sess)


# -- subscriptions ----------------------------------------------------------------------------

def subscribe(broker, sess, topics: list[tuple[str, SubOpts]]) -> list[int]:
    """Subscribe `sess` to `topics` on its client's behalf, all or nothing: every filter is
    checked first (InvalidRequest naming the bad one). Retained messages are delivered.
    Returns the reason codes (>= 0x80: refused, e.g. by authorization)."""
    for topic, opts in topics:
        try:
            group, real, _exclusive = parse_share(topic)
            validate_topic_filter(real, broker.max_topic_levels)
        except MQTTError as e:
            raise InvalidRequest(f"bad topic filter {topic!r}: {e}") from None
        if group is not None and opts.no_local:
            raise InvalidRequest(f"no local is not allowed on a shared subscription: {topic!r}")
    try:
        codes, retained = broker.subscribe(sess, topics, None, sess.channel)
    except MQTTError as e:
        raise InvalidRequest(f"subscribe refused: {e}") from None
    for deliver in retained:
        deliver()
    broker.flush()
    return codes


def unsubscribe(broker, sess, filters: list[str]) -> list[int]:
    return broker.unsubscribe(sess, filters, sess.channel)


def subscription_topic(sub) -> str:
    """The subscription as EMQX shows it: ``$share/<group>/<filter>`` for shared ones."""
    if sub.group is not None:
        if sub.group == "$queue" and sub.topic_filter.startswith("$queue/"):
            return "$queue/" + sub.real_filter
        return f"$share/{sub.group}/{sub.real_filter}"
    if sub.exclusive:
        return "$exclusive/" + sub.real_filter
    return sub.real_filter
