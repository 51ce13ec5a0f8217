"""The Broker: the message core of a node — sessions, connect/establish/close, publish,
subscribe, hook points and the extension slots features fill.

It opens no store, listener or API itself: `emqpy.node.Node` (the composition root) builds
those around it. A bare `Broker` still runs (`await broker.start()`): channels can be driven
through it without a socket, as tests/broker/test_channel_sans_socket.py does.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import time
from functools import partial
from pathlib import Path

from emqpy import EMQX_VERSION, __version__
from emqpy.broker.deadlines import DeadlineWheel
from emqpy.broker.hooks import Hooks
from emqpy.broker.message import Message
from emqpy.broker.metrics import Metrics
from emqpy.broker.overlap import merged_subscriptions
from emqpy.broker.router import Router, Subscription
from emqpy.broker.session import Session
from emqpy.broker.shared import SharedGroup
from emqpy.broker.sys_topics import SysPublisher
from emqpy.mqtt import reason_codes as rc
from emqpy.mqtt.packets import Connack, fixed_header
from emqpy.mqtt.reason_codes import MQTTError
from emqpy.mqtt.topic import parse_share, validate_topic_filter

log = logging.getLogger("emqpy.broker")

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _assigned_clientid() -> str:
    """16 random base62 characters starting with a letter, the shape EMQX assigns."""
    return secrets.choice(_B62[10:]) + "".join(secrets.choice(_B62) for _ in range(15))


class Broker:
    # `version` is what the wire and the API report: the EMQX release emqpy behaves as, so that
    # tools which check it see a compatible broker; `emqpy_version` is emqpy's own.
    version = EMQX_VERSION
    emqx_version = EMQX_VERSION
    emqpy_version = __version__
    # Whether this node applies the `log` root to the process's logging (emqpy.config.
    # loghandlers): `emqpy start` does; an embedded broker leaves its program's logging alone.
    manage_logging = False

    def __init__(self, config=None, *, data_dir: str | os.PathLike | None = None,
                 conf_file: str | os.PathLike | None = None, env=None):
        from emqpy.config import EmqxConfig, load_config

        if isinstance(config, EmqxConfig):
            self.config = config
        else:
            self.config = load_config(conf_file, env=env if env is not None else {},
                                      overrides=config or None, data_dir=data_dir)
        self.data_dir = Path(data_dir or self.config.node.data_dir)
        self.node_name = self.config.node.name
        self.hooks = Hooks(on_change=self._hooks_changed)
        self.metrics = Metrics()
        self.router = Router()
        self.sessions: dict[str, Session] = {}
        self.channels: dict = {}  # clientid -> connected Channel
        self.sys = SysPublisher(self)
        # -- what the node (emqpy.node.Node) builds around the core; empty in a bare Broker
        self.store = None  # emqpy.store.Store: the node's SQLite database
        self.listeners: dict = {}  # listener id -> running emqpy.listeners Listener
        self.api = None  # emqpy.api.server.ApiServer: the HTTP API and dashboard
        self.loop: asyncio.AbstractEventLoop | None = None
        self.deadlines: DeadlineWheel | None = None  # handshake and keep-alive deadlines
        self.running = False
        self.started_at = 0.0
        self.dirty: list = []  # channels with output waiting for this iteration's flush
        self.flush_scheduled = False
        self.authorizer = None  # the authorization feature's check (see set_authorizer)
        # What channels call before a PUBLISH or SUBSCRIBE is let through, fn(channel, action,
        # topic, qos, retain) -> bool; None when nothing can say no (derived: _hooks_changed).
        self.authorize = None
        self.deny_action_disconnect = False
        # -- extension points: what feature packages (emqpy.features) plug in; None while the
        # feature is not running.
        # emqpy.retainer: the retained messages (retainer.Retainer: on_publish at PUBLISH,
        # match/dispatch after a SUBACK, len)
        self.retainer = None
        self.banned = None  # emqpy.banned: the ban list (banned.Banned), checked at CONNECT
        self.alarms = None  # emqpy.alarm: activate/deactivate (alarm.alarms.Alarms)
        self.authn = None  # emqpy.authn: the authenticator chain's service (AuthnService)
        # emqpy.authn: MQTT 5 AUTH exchanges (authn.scram.EnhancedAuth: start/step)
        self.enhanced_auth = None
        self.authz = None  # emqpy.authz: the sources, settings and cache (AuthzService)
        # emqpy.authz: fn(channel, topics) run before a SUBSCRIBE, raises Deferred for I/O
        self.authorize_prefetch = None
        self.flapping = None  # emqpy.flapping: the disconnect counter (flapping.Flapping)
        self.rule_engine = None  # emqpy.rule_engine: the rules and their runtime (engine.Engine)
        self.monitor = None  # emqpy.monitor: the dashboard's sampler (monitor.sampler.Monitor)
        # emqpy.prometheus: the Pushgateway pusher (prometheus.push.Pusher)
        self.prometheus_pusher = None
        self.bridges = None  # emqpy.bridge: connectors and actions (bridge.service.BridgeService)
        # emqpy.cluster: the link to the other nodes (cluster.link.ClusterLink: forward(msg)
        # after local routing when its `remote` Router (the other nodes' filters) matches,
        # dispatch_groups for shared groups, local_route_changed when a filter gets its first
        # or loses its last subscriber here; sessions.take_before_connack in the CONNECT
        # path: a session on another node); None on a single node
        self.cluster = None
        self.traces = None  # emqpy.trace: the stored traces and their schedule (TraceService)
        # emqpy.trace: the running traces (trace.tracer.Tracer); None while nothing is traced
        self.tracer = None
        # emqpy.durable: persistent sessions kept in the data dir (durable.journal.Journal).
        # While `durable.holding`, output is held back (Output.flush hands it to `hold`) until
        # the session changes it acknowledges are on disk; `commit` after each flush.
        self.durable = None
        self.delayed = None  # emqpy.delayed: the held `$delayed/...` messages (delayed.Delayed)
        # emqpy.delayed, while enabled: hold(msg) for `$delayed/` topics, called by publish
        # after the message.publish callbacks (a slot, not a callback: every other topic pays
        # one character test, and the rule engine's callback stays the only one)
        self.delay_publish = None
        self.rewrite = None  # emqpy.rewrite: the running topic rewrite rules (rewrite.Rewriter)
        # emqpy.auto_subscribe: the configured topics (auto_subscribe.AutoSubscriber)
        self.auto_subscribe = None
        # emqpy.topic_metrics: per-topic counters and rates (topic_metrics.metrics.TopicMetrics)
        self.topic_metrics = None
        self.slow_subs = None  # emqpy.slow_subs: the latency ranking (slow_subs.ranking.SlowSubs)
        # kept as subscriptions come and go: summing over sessions made a subscribe storm
        # quadratic
        self.subscription_total = 0
        self.shared_subscription_total = 0
        self._connect_checks: list = []
        self._stopping = False
        self._peaks: dict[str, int] = {"connections.count": 0, "sessions.count": 0}
        self.apply_config()

    # -- configuration --------------------------------------------------------------------

    def apply_config(self) -> None:
        """Cache the hot-path settings as plain attributes (re-run after a config change)."""
        mq = self.config.mqtt
        self._connack_cache: dict[tuple, bytes] = {}
        self.max_topic_levels = mq.max_topic_levels
        self.max_qos_allowed = mq.max_qos_allowed
        self.retain_available = mq.retain_available
        self.strict_mode = mq.strict_mode
        self.upgrade_qos = mq.upgrade_qos
        mar = mq.max_awaiting_rel
        self.max_awaiting_rel = 1 << 30 if mar in (0, math.inf) else int(mar)
        self.await_rel_timeout = mq.await_rel_timeout
        # read on every CONNECT (config models are slow to read: pydantic's __getattr__ hook)
        self.max_packet_size = mq.max_packet_size
        idle = mq.idle_timeout
        self.idle_timeout = idle if idle and idle != math.inf else 0  # 0: none
        self.keepalive_multiplier = mq.keepalive_multiplier
        self.max_clientid_len = mq.max_clientid_len
        self.use_username_as_clientid = mq.use_username_as_clientid
        mql = mq.max_mqueue_len
        # what each new Session starts with (see Session.__init__)
        self.session_defaults = (mq.max_inflight,
                                 0 if mql is None or mql == math.inf else int(mql),
                                 mq.mqueue_store_qos0, mq.upgrade_qos, mq.ignore_loop_deliver)
        # one copy per client of a message several of its subscriptions match
        self.overlap_single = mq.overlapping_subscriptions == "single"
        # topic -> priority (None: FIFO queues); see broker/mqueue.py
        self.mqueue_priorities = mq.mqueue_priorities or None
        self.mqueue_default_highest = mq.mqueue_default_priority == "highest"
        tcp = self.config.listeners.tcp.get("default")
        opts = tcp.tcp_options if tcp is not None else None
        self.out_high_watermark = (opts.high_watermark if opts is not None else 1 << 20)
        send_timeout = opts.send_timeout if opts is not None else 15.0
        self.send_timeout = send_timeout if (opts is None or opts.send_timeout_close) else 0
        self._hooks_changed()

    def _hooks_changed(self) -> None:
        """Derive the flags the hot path reads from the registered hook points, so that a
        point nobody registered costs the PUBLISH path nothing."""
        points = self.hooks._points
        # what Broker.publish calls: the only message.publish callback itself (one call, no
        # loop: the rule engine's sits here), or the fold over several; None when there is none
        pub = points.get("message.publish")
        # topics the sole callback says it leaves alone (its `ignored_topics` set, which it
        # fills itself): not called for them, which spares the call on every PUBLISH
        self.publish_ignored = None
        if not pub:
            self.publish_hook = None
        elif len(pub) == 1:
            self.publish_hook = pub[0][1]
            self.publish_ignored = getattr(pub[0][1], "ignored_topics", None)
        else:
            self.publish_hook = partial(self.hooks.fold, "message.publish")
        self.delivered_hooked = "message.delivered" in points  # (read once per delivery)
        # what the inlined QoS 0 fan-out calls per subscriber, as publish_hook
        dl = points.get("message.delivered")
        self.delivered_hook = None if not dl else dl[0][1] if len(dl) == 1 else \
            partial(self.hooks.fold, "message.delivered")
        # a sole callback's offer to be told of a whole fan-out at once (see docs/hooks.md)
        self.delivered_skips = getattr(dl[0][1], "skips", None) if dl and len(dl) == 1 \
            else None
        self.acked_hooked = "message.acked" in points  # (read once per acknowledgement)
        self.completed_hooked = "delivery.completed" in points  # (as acked_hooked)
        # QoS 0 fan-out may write subscribers' output inline, bypassing Channel.send_publish
        # (message.delivered runs there too: fanout_qos0)
        self.qos0_inline = not self.upgrade_qos
        if "client.authorize" in points:
            self.authorize = self._authorize_with_hooks
        else:
            self.authorize = self.authorizer

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> "Broker":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self) -> None:
        """Run the core alone (no store, listeners or API: emqpy.node.Node adds those)."""
        self.attach_loop()
        self.open_for_clients()

    async def stop(self) -> None:
        if not self.running:
            return
        self.close_clients()
        self.release_timers()

    # The four steps of start and stop, for the composition root to put its own between.

    def attach_loop(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.deadlines = DeadlineWheel(self.loop)
        self.started_at = time.time()

    def open_for_clients(self) -> None:
        self.running = True
        self.sys.start()

    def close_clients(self) -> None:
        """Refuse new clients and close the connected ones (their output flushed)."""
        self._stopping = True
        self.running = False
        self.sys.stop()
        for ch in list(self.channels.values()):
            ch.close(rc.SERVER_SHUTTING_DOWN, "shutdown")
        self.flush()

    def release_timers(self) -> None:
        for sess in list(self.sessions.values()):
            for h in (sess.expiry_handle, sess.will_handle):
                if h is not None:
                    h.cancel()
        self.deadlines.close()
        self._stopping = False

    # -- output batching --------------------------------------------------------------------

    def schedule_flush(self) -> None:
        self.flush_scheduled = True
        self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write every channel's queued output: one write per connection per loop iteration."""
        self.flush_scheduled = False
        dirty = self.dirty
        self.dirty = []
        for ch in dirty:
            ch.flush()
        durable = self.durable
        if durable is not None and durable.holding:
            durable.commit()  # persist what this iteration changed, then release the output

    # -- connect ----------------------------------------------------------------------------

    def add_connect_check(self, fn) -> None:
        """fn(channel, connect_packet) -> reason code or 0; e.g. banned clients, flapping."""
        self._connect_checks.append(fn)

    def add_authenticator(self, fn, priority: int = 0) -> None:
        """fn(channel, connect) -> None (no opinion), a reason code, a dict, or an awaitable:
        a `client.authenticate` hook."""
        self.hooks.add("client.authenticate", fn, priority)

    def remove_authenticator(self, fn) -> None:
        self.hooks.remove("client.authenticate", fn)

    def check_connect(self, ch, pkt) -> int:
        # The listener's say first: client certificate as username/client id, quick deny. (A
        # plain listener has nothing to add unless a PROXY header carried a certificate.)
        lst = ch.listener
        if lst.tls or ch._peer_cert is not None:
            code = lst.enrich_connect(ch, pkt)
            if code:
                return code
        if self.use_username_as_clientid and pkt.username is not None:
            if not pkt.username:  # as EMQX: an empty username cannot stand for a client id
                return rc.CLIENT_IDENTIFIER_NOT_VALID
            pkt.clientid = pkt.username
        clientid = pkt.clientid
        if not clientid:
            if pkt.clean_start and ch.version != 3:  # MQTT 3.1 requires a client id
                clientid = pkt.clientid = _assigned_clientid()
                ch.connect_pkt.props["_assigned"] = clientid
            else:
                return rc.CLIENT_IDENTIFIER_NOT_VALID
        if len(clientid) > self.max_clientid_len:
            return rc.CLIENT_IDENTIFIER_NOT_VALID
        if self._stopping:
            return rc.SERVER_UNAVAILABLE
        ch.clientid = clientid
        ch.username = pkt.username
        for check in self._connect_checks:
            code = check(ch, pkt)
            if code:
                return code
        return 0

    def authenticate(self, ch, pkt):
        c = self.metrics.c
        c["client.authenticate"] += 1
        if "client.authenticate" not in self.hooks._points:
            c["client.auth.anonymous"] += 1
            c["authentication.success.anonymous"] += 1
            return 0
        res = self.hooks.first("client.authenticate", ch, pkt)
        return 0 if res is None else res

    def set_authorizer(self, fn) -> None:
        """The authorization feature's check, fn(channel, action, topic, qos, retain) -> bool
        (may raise Deferred); None when it cannot say no."""
        self.authorizer = fn
        self._hooks_changed()

    def _authorize_with_hooks(self, ch, action: str, topic: str, qos: int, retain: bool) -> bool:
        """`authorize` while `client.authorize` callbacks are registered: the authorization
        feature's answer (allow when there is none), then the callbacks, each of which may
        overturn it."""
        fn = self.authorizer
        allowed = True if fn is None else fn(ch, action, topic, qos, retain)
        return bool(self.hooks.fold("client.authorize", allowed, ch, action, topic))

    def establish(self, ch, pkt) -> None:
        """Open or resume the session for an authenticated CONNECT and send CONNACK."""
        c = self.metrics.c
        hooks = self.hooks._points
        clientid = pkt.clientid
        v5 = ch.version == 5
        if v5:
            expiry = pkt.props.get("session_expiry_interval", 0)
        else:
            expiry = 0 if pkt.clean_start else self.config.mqtt.session_expiry_interval
        old = self.channels.get(clientid)
        takeover = old is not None and old is not ch
        if takeover:
            c["session.takenover"] += 1
            # (as EMQX names it: a clean start discards the session the old connection had)
            old.close(rc.SESSION_TAKEN_OVER, "discarded" if pkt.clean_start else "takenover")
        sess = self.sessions.get(clientid)
        if sess is not None and pkt.clean_start:
            c["session.discarded"] += 1
            self.discard_session(sess, "discarded")
            sess = None
        present = sess is not None
        if sess is None:
            sess = self.sessions[clientid] = Session(self, clientid, expiry)
            c["session.created"] += 1
            if "session.created" in hooks:
                self.hooks.run("session.created", sess)
        else:
            sess.expiry_interval = expiry
            c["session.resumed"] += 1
            if takeover and "session.takenover" in hooks:
                self.hooks.run("session.takenover", sess)
        ch.expiry_interval = expiry
        sess.attach(ch, pkt.props.get("receive_maximum", 65535) if v5 else 65535)
        ch.will = pkt.will
        self.channels[clientid] = ch
        if present and "session.resumed" in hooks:
            self.hooks.run("session.resumed", sess)
        ka = pkt.keepalive
        props = None
        if v5:
            props = self._connack_props(pkt)
            server_ka = self.config.mqtt.server_keepalive
            if server_ka is not None:
                ka = props["server_keep_alive"] = server_ka
            ch.alias_max = pkt.props.get("topic_alias_maximum", 0)
        if ch.listener.mountpoint:
            ch.mountpoint = self._mountpoint(ch) or None
        ch.accepted(sess, present, props)
        ch.start_keepalive(ka)
        c["client.connected"] += 1
        self._peak("connections.count", len(self.channels))
        self._peak("sessions.count", len(self.sessions))
        if "client.connected" in hooks:
            self.hooks.run("client.connected", ch)
        self.sys.client_connected(ch)  # (returns at once unless a "$..." filter exists)
        if present:
            sess.redeliver()

    def connack_v5(self, present: bool, props: dict) -> bytes:
        """The encoded MQTT 5 CONNACK (success). Most clients get the same properties (they
        follow the config), so the encoded forms are kept, a few at most."""
        key = (present, *props.items())
        wire = self._connack_cache.get(key)
        if wire is None:
            wire = Connack(present, 0, props).encode(5)
            if len(self._connack_cache) < 16 and "assigned_client_identifier" not in props \
                    and "authentication_method" not in props:  # (per client: not kept)
                self._connack_cache[key] = wire
        return wire

    def _connack_props(self, pkt) -> dict:
        mq = self.config.mqtt
        props = {
            "retain_available": int(mq.retain_available),
            "maximum_packet_size": mq.max_packet_size,
            "topic_alias_maximum": mq.max_topic_alias,
            "wildcard_subscription_available": int(mq.wildcard_subscription),
            "subscription_identifier_available": 1,
            "shared_subscription_available": int(mq.shared_subscription),
        }
        # Our Receive Maximum bounds the client's unacknowledged QoS 1/2 PUBLISHes to us (MQTT 5
        # 3.2.2.3.3). QoS 1 is acknowledged at once, so only QoS 2 awaiting PUBREL can be
        # outstanding: announce mqtt.max_awaiting_rel, the limit _on_publish enforces with
        # DISCONNECT 0x93. (EMQX announces min(max_inflight, the client's Receive Maximum),
        # which bounds the other direction, while enforcing max_awaiting_rel.)
        props["receive_maximum"] = min(self.max_awaiting_rel, 65535)
        if mq.max_qos_allowed < 2:
            props["maximum_qos"] = mq.max_qos_allowed
        assigned = pkt.props.pop("_assigned", None)
        if assigned:
            props["assigned_client_identifier"] = assigned
        if pkt.props.get("request_response_information") == 1 and mq.response_information:
            props["response_information"] = mq.response_information
        return props

    def _mountpoint(self, ch) -> str:
        mp = getattr(ch.listener, "mountpoint", "")
        if not mp:
            return ""
        return mp.replace("${clientid}", ch.clientid or "").replace("${username}",
                                                                  ch.username or "")

    def channel_closed(self, ch, reason: str) -> None:
        """A connected client went away: will message, session expiry, events."""
        sess = ch.session
        clientid = ch.clientid
        if self.channels.get(clientid) is ch:
            del self.channels[clientid]
        if sess is not None and sess.channel is ch:
            sess.detach()
            expiry = sess.expiry_interval
            if ch.will is not None:
                self._handle_will(ch, sess, expiry)
            if expiry == 0 or self._stopping and expiry == 0:
                self.discard_session(sess, "terminated")
            elif expiry != math.inf and expiry < 0xFFFFFFFF:
                sess.expiry_handle = self.loop.call_later(expiry, self._expire_session, sess)
        self.metrics.c["client.disconnected"] += 1
        self.hooks.run("client.disconnected", ch, reason)
        self.sys.client_disconnected(ch, reason)

    def _handle_will(self, ch, sess, expiry: float) -> None:
        will = ch.will
        ch.will = None
        msg = Message(will.topic, will.payload, will.qos, will.retain,
                      {k: v for k, v in will.props.items() if k != "will_delay_interval"} or None,
                      ch.clientid, ch.username, ch.peerhost)
        if ch.mountpoint:
            msg.topic = ch.mountpoint + msg.topic
        delay = will.props.get("will_delay_interval", 0) if ch.version == 5 else 0
        if delay and expiry:
            sess.pending_will = msg
            sess.will_handle = self.loop.call_later(min(delay, expiry), self._publish_will, sess)
        else:
            self.publish(msg)

    def _publish_will(self, sess) -> None:
        msg, sess.pending_will, sess.will_handle = sess.pending_will, None, None
        if msg is not None:
            self.publish(msg)

    def _expire_session(self, sess) -> None:
        sess.expiry_handle = None
        if sess.channel is None and self.sessions.get(sess.clientid) is sess:
            if sess.will_handle is not None:  # the session ends before the will delay
                sess.will_handle.cancel()
                self._publish_will(sess)
            self.discard_session(sess, "expired")

    def discard_session(self, sess, reason: str) -> None:
        if self.sessions.get(sess.clientid) is sess:
            del self.sessions[sess.clientid]
        for h in (sess.expiry_handle,):
            if h is not None:
                h.cancel()
        sess.expiry_handle = None
        pending = list(sess.pending_shared())
        for sub in list(sess.subscriptions.values()):
            self._remove_subscription(sess, sub)
            self.subscription_total -= 1
            if sub.group is not None:
                self.shared_subscription_total -= 1
        sess.subscriptions.clear()
        for msg, group in pending:  # unacked shared messages go to another member
            group.dispatch(msg, exclude=sess)
        sess.inflight.clear()
        sess.clear_queue()
        self.metrics.c["session.terminated"] += 1
        # As EMQX: a session ended by a clean-start CONNECT runs session.discarded instead.
        if reason == "discarded":
            self.hooks.run("session.discarded", sess)
        else:
            self.hooks.run("session.terminated", sess, reason)

    def kick(self, clientid: str) -> bool:
        ch = self.channels.get(clientid)
        if ch is not None:
            ch.close(rc.ADMINISTRATIVE_ACTION, "kicked")
            return True
        sess = self.sessions.get(clientid)
        if sess is not None:
            self.discard_session(sess, "kicked")
            return True
        return False

    def expire_awaiting_rel(self, sess) -> None:
        timeout = self.config.mqtt.await_rel_timeout
        deadline = time.monotonic() - timeout
        old = [pid for pid, t in sess.awaiting_rel.items() if t <= deadline]
        for pid in old:
            del sess.awaiting_rel[pid]
        if old:
            sess.count_drop("await_pubrel_timeout", len(old))
            if sess.journal is not None:
                sess.journal.touch(sess)

    # -- publish ------------------------------------------------------------------------------

    def publish(self, msg: Message, publisher=None, bypass_hooks: bool = False) -> int:
        """Route a message to its subscribers; returns the number of deliveries.
        `publisher`: the Channel the message came from (None: the API, `$SYS`, a will...),
        held back while a subscriber it feeds is congested (see broker/output.py).
        `bypass_hooks`: skip `message.publish` (a rule's republish with direct dispatch)."""
        hooks = self.hooks
        hook = self.publish_hook
        if hook is not None and not bypass_hooks and (
                self.publish_ignored is None or msg.topic not in self.publish_ignored):
            try:
                msg = hook(msg)
            except Exception:  # (as Hooks.fold: logged, the message goes on unchanged)
                log.exception("hook message.publish failed")
            if msg is None:
                return 0
        hold = self.delay_publish
        if hold is not None and not bypass_hooks and msg.topic[:1] == "$" \
                and msg.topic.startswith("$delayed/"):
            msg = hold(msg)  # after the message.publish callbacks, as EMQX's HP_DELAY_PUB
            if msg is None:
                return 0
        if msg.retain:
            self.metrics.c["messages.retained"] += 1
            if self.retainer is not None:
                self.retainer.on_publish(msg)
        n = 0
        fast = msg.qos == 0 and msg.expire_at is None and self.qos0_inline
        routes = self.router.cache.get(msg.topic)
        if routes is None:
            routes = self.router.match(msg.topic)
        merged = None
        if self.overlap_single and len(routes) > 1:  # one copy per client (broker/overlap.py)
            merged = merged_subscriptions(routes, msg)
            if fast:
                n += self.fanout_qos0(msg, merged, publisher)
            else:
                for sub in merged.values():
                    n += sub.session.deliver(msg, sub, None, False, publisher)
        for route in routes:
            if merged is None:
                if fast:
                    n += self.fanout_qos0(msg, route.subs, publisher)
                else:
                    for sub in route.subs.values():
                        n += sub.session.deliver(msg, sub, None, False, publisher)
            if route.groups:
                if self.cluster is None:
                    for group in route.groups.values():
                        n += group.dispatch(msg, None, publisher)
                else:  # a group may have members on other nodes too: one of all of them
                    n += self.cluster.dispatch_groups(route, msg, publisher)
        cluster = self.cluster
        if cluster is not None:
            remote = cluster.remote.cache.get(msg.topic)  # (most topics: no call at all)
            if remote is None or remote:
                n += cluster.forward(msg, publisher, remote)
        if not n:
            self.metrics.c["messages.dropped.no_subscribers"] += 1
            if "message.dropped" in hooks._points:
                hooks.run("message.dropped", msg, "no_subscribers")
        return n

    def fanout_qos0(self, msg: Message, subs: dict, publisher) -> int:
        """Session.deliver + Channel.send_publish + Output.write, inlined for the common case
        of a QoS 0 message to connected subscribers: fan-out runs this once per subscriber
        (the output buffer's fields it uses are Output's public interface)."""
        w4 = w5 = None
        sender = msg.sender
        retain = msg.retain
        dirty = self.dirty
        n = 0  # written here
        other = 0  # handed to Session.deliver (which counts its own)
        delivered = self.delivered_hook
        skipping = delivered is not None and self.delivered_skips is not None and \
            self.delivered_skips(msg)
        if skipping:
            delivered = None
        for sub in subs.values():
            sess = sub.session
            ch = sess.channel
            if ch is None or ch.mountpoint or ch.alias_max or (
                    retain and sub.retain_as_published) or (sub.sub_ids and ch.version == 5):
                other += sess.deliver(msg, sub, None, False, publisher)
                continue
            if (sub.no_local or sess.ignore_loop) and sender == sess.clientid:
                if sub.no_local:
                    sess.drop_no_local(msg)
                continue
            v5 = ch.version == 5
            w = w5 if v5 else w4
            if delivered is not None:  # (Channel.send_publish's message.delivered, inlined)
                try:
                    mine = delivered(msg, ch) or msg
                except Exception:
                    log.exception("hook message.delivered failed")
                    mine = msg
                if mine is not msg:  # this client gets a changed copy: its own encoding
                    w = mine.wire(v5, 0, False)
            if w is None:
                raw = msg.raw_body
                if raw is not None and msg.raw_v5 == v5:  # the incoming body, reused
                    size = len(raw)
                    w = (bytes((0x30, size)) if size < 128 else
                         bytes((0x30, size & 0x7F | 0x80, size >> 7)) if size < 16384 else
                         fixed_header(0x30, size)) + raw
                else:
                    w = msg.wire(v5, 0, False)
                if v5:
                    w5 = w
                else:
                    w4 = w
            size = len(w)
            if ch.client_max_packet and size > ch.client_max_packet:
                sess.count_drop("too_large", msg=msg)
                continue
            queued = ch.queued
            if not queued:
                dirty.append(ch)
                if not self.flush_scheduled:
                    self.schedule_flush()
            queued.append(w)
            size += ch.queued_bytes
            ch.queued_bytes = size
            if size > ch.high_watermark or ch.congested:
                ch.throttle(publisher)
            n += 1
        self.metrics.sent_q[0] += n
        if skipping and n:
            self.delivered_hook.skipped(msg, n)
        return n + other

    def fanout_qos0_frames(self, frames, count: int, largest: int, v5: bool, sender: str,
                           subs: dict) -> bool:
        """`count` QoS 0 PUBLISH packets encoded back to back (`frames`, the largest
        `largest` bytes, all of one protocol family and one sender) to `subs` as one chunk
        each: what `fanout_qos0` would write for each message, when every subscriber is one
        it writes to itself (connected, of that family, no mountpoint, no topic alias, no
        subscription identifier, not the sender under no_local, packets under its maximum)
        and no `message.delivered` callback wants each message. False, writing nothing,
        otherwise: the caller then delivers the messages one by one."""
        if not self.qos0_inline or self.delivered_hook is not None:
            return False
        channels = []
        for sub in subs.values():
            sess = sub.session
            ch = sess.channel
            if ch is None or ch.mountpoint or ch.alias_max or (ch.version == 5) != v5 or (
                    sub.sub_ids and v5) or ((sub.no_local or sess.ignore_loop) and
                                            sender == sess.clientid) or (
                    ch.client_max_packet and largest > ch.client_max_packet):
                return False
            channels.append(ch)
        for ch in channels:
            ch.write(frames)
            ch.send_pkt += count - 1  # (Output counts a chunk as one packet)
        self.metrics.sent_q[0] += count * len(channels)
        return True

    def publish_from_system(self, topic: str, payload: bytes, qos: int = 0,
                            retain: bool = False, props: dict | None = None) -> int:
        msg = Message(topic, payload, qos, retain, props, sender="")
        msg.flags = 1
        self.metrics.c["messages.publish"] += 1
        return self.publish(msg)

    # -- subscribe ---------------------------------------------------------------------------

    def subscribe(self, sess, topics, sub_id, ch=None, *, from_packet: bool = False,
                  authorize: bool = True) -> tuple[list[int], list]:
        """Add subscriptions; returns SUBACK reason codes and retained-delivery callbacks.
        `from_packet`: a client's SUBSCRIBE, whose filters `client.subscribe` may rewrite
        (not the API's or an auto subscription's, as in EMQX). `authorize=False`: not checked
        by authorization (auto subscriptions, as EMQX)."""
        mq = self.config.mqtt
        codes = []
        retained = []
        rewrite = from_packet and "client.subscribe" in self.hooks._points
        for flt, opts in topics:
            try:
                code = self._subscribe_one(sess, flt, opts, sub_id, ch if authorize else None,
                                           mq, retained, rewrite, ch)
            except MQTTError as e:
                if e.reason_code == rc.PROTOCOL_ERROR:
                    raise  # the whole connection is at fault, not this filter
                code = e.reason_code
            codes.append(code)
            if code >= 0x80:
                self.metrics.c["packets.subscribe.error"] += 1
        return codes, retained

    def _subscribe_one(self, sess, flt, opts, sub_id, authz_ch, mq, retained, rewrite=False,
                       ch=None) -> int:
        group, real, exclusive = parse_share(flt)
        validate_topic_filter(real, self.max_topic_levels)
        if group is not None:
            if not mq.shared_subscription:
                return rc.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED
            if opts.no_local and ch is not None and ch.version == 5:
                raise MQTTError(rc.PROTOCOL_ERROR, "no local on a shared subscription")
        if exclusive and not mq.exclusive_subscription:
            return rc.TOPIC_FILTER_INVALID
        if ("+" in real or "#" in real) and not mq.wildcard_subscription:
            return rc.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED
        mountpoint = ch.mountpoint if ch is not None else None
        if mountpoint:
            real = mountpoint + real
        existing = sess.subscriptions.get(flt)
        if existing is None and mq.max_subscriptions != math.inf and \
                len(sess.subscriptions) >= mq.max_subscriptions:
            return rc.QUOTA_EXCEEDED
        if self.authorize is not None and authz_ch is not None:
            if not self.authorize(authz_ch, "subscribe", real, opts.qos, False):
                self.metrics.c["packets.subscribe.auth_error"] += 1
                if self.deny_action_disconnect:
                    authz_ch.close(rc.NOT_AUTHORIZED, "not_authorized")
                return rc.NOT_AUTHORIZED
        if rewrite:  # after authorization, as EMQX runs client.subscribe
            new = self.hooks.fold("client.subscribe", flt, ch, opts)
            if new and new != flt:
                flt = new
                group, real, exclusive = parse_share(flt)
                validate_topic_filter(real, self.max_topic_levels)
                if mountpoint:
                    real = mountpoint + real
                existing = sess.subscriptions.get(flt)
        route = self.router.route_for(real)
        if exclusive:
            holder = next(iter(route.subs.values()), None)
            if holder is not None and holder.session is not sess and holder.exclusive:
                return rc.QUOTA_EXCEEDED
            if any(s.session is not sess for s in route.subs.values()):
                return rc.QUOTA_EXCEEDED
        qos = min(opts.qos, mq.max_qos_allowed)
        sub = Subscription(sess, flt, real, group, qos, opts.no_local, opts.retain_as_published,
                           opts.retain_handling, sub_id, exclusive)
        self._add_subscription(sess, sub, route, existing is None)
        self.metrics.c["client.subscribe"] += 1
        self._peak("subscriptions.count", self.subscription_total)
        self.hooks.run("session.subscribed", sess, sub)
        # Retained messages: never for shared subscriptions; rh 1 only for new ones; rh 2 never.
        retainer = self.retainer
        if group is None and retainer is not None and mq.retain_available and (
                opts.retain_handling == 0 or (opts.retain_handling == 1 and existing is None)):
            msgs = retainer.match(real)
            if msgs:
                retained.append(lambda: retainer.dispatch(sess, sub, msgs))
        return qos

    def _add_subscription(self, sess, sub, route, new: bool) -> None:
        if sub.group is None:
            if not route.subs and self.cluster is not None:
                self.cluster.local_route_changed(sub.real_filter, True)
            route.subs[sess.clientid] = sub
        else:
            g = route.groups.get(sub.group)
            if g is None:
                mq = self.config.mqtt
                g = route.groups[sub.group] = SharedGroup(
                    sub.group, sub.real_filter, mq.shared_subscription_strategy,
                    mq.shared_subscription_initial_sticky_pick)
                if self.cluster is not None:
                    self.cluster.local_route_changed(f"$share/{sub.group}/{sub.real_filter}",
                                                     True)
            g.add(sub)
        sess.subscriptions[sub.topic_filter] = sub
        if new:
            self.subscription_total += 1
            if sub.group is not None:
                self.shared_subscription_total += 1

    def restore_subscription(self, sess, sub) -> None:
        """Put back a subscription a feature kept (emqpy.durable, at start): routed as it
        was, without the checks, hooks and retained messages of a SUBSCRIBE."""
        self._add_subscription(sess, sub, self.router.route_for(sub.real_filter),
                               sub.topic_filter not in sess.subscriptions)

    def unsubscribe(self, sess, filters, ch=None, *, from_packet: bool = False) -> list[int]:
        """Remove subscriptions; returns UNSUBACK reason codes. `from_packet`: a client's
        UNSUBSCRIBE, whose filters `client.unsubscribe` may rewrite."""
        codes = []
        rewrite = from_packet and "client.unsubscribe" in self.hooks._points
        for flt in filters:
            if rewrite:
                flt = self.hooks.fold("client.unsubscribe", flt, ch) or flt
            sub = sess.subscriptions.pop(flt, None)
            if sub is None:
                codes.append(rc.NO_SUBSCRIPTION_EXISTED)
                continue
            self._remove_subscription(sess, sub)
            self.subscription_total -= 1
            if sub.group is not None:
                self.shared_subscription_total -= 1
            self.metrics.c["client.unsubscribe"] += 1
            self.hooks.run("session.unsubscribed", sess, flt)
            codes.append(rc.SUCCESS)
        return codes

    def _remove_subscription(self, sess, sub) -> None:
        route = self.router.route_for(sub.real_filter, create=False)
        if route is None:
            return
        if sub.group is None:
            if route.subs.get(sess.clientid) is sub:
                del route.subs[sess.clientid]
                if not route.subs and self.cluster is not None:
                    self.cluster.local_route_changed(route.filter, False)
        else:
            g = route.groups.get(sub.group)
            if g is not None:
                g.remove(sess)
                if not g.members:
                    del route.groups[sub.group]
                    if self.cluster is not None:
                        self.cluster.local_route_changed(f"$share/{sub.group}/{route.filter}",
                                                         False)
        self.router.drop_if_empty(route)

    # -- statistics --------------------------------------------------------------------------

    def _peak(self, name: str, value: int) -> None:
        if value > self._peaks.get(name, 0):
            self._peaks[name] = value

    def stats(self) -> dict[str, int]:
        subs = self.subscription_total
        shared = self.shared_subscription_total
        live = len(self.channels)
        # As EMQX counts them: connections and channels include disconnected persistent
        # sessions; live_connections only the clients connected now.
        sessions = len(self.sessions)
        cur = {
            "connections.count": sessions,
            "live_connections.count": live,
            "sessions.count": sessions,
            "channels.count": sessions,
            "topics.count": len(self.router.routes),
            "subscriptions.count": subs,
            "subscribers.count": subs,
            "suboptions.count": subs,
            "subscriptions.shared.count": shared,
            "retained.count": 0 if self.retainer is None else len(self.retainer),
            "delayed.count": 0 if self.delayed is None else len(self.delayed),
            "durable_subscriptions.count": 0 if self.durable is None else
            self.durable.subscription_count,
        }
        out = {}
        for k, v in cur.items():
            self._peak(k, v)
            out[k] = v
            out[k[:-len(".count")] + ".max"] = self._peaks.get(k, v)
        return out
