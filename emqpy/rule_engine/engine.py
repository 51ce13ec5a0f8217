"""The rule registry and the runtime (EMQX's emqx_rule_engine + emqx_rule_runtime).

Rules live in the config (`rule_engine.rules.<id>`, emqpy.config.rule_engine), as in EMQX;
`Engine.sync()` makes the running rules follow it: each rule's SQL is compiled once into
Python closures (emqpy.rule_engine.sql), its actions parsed (emqpy.rule_engine.actions).

Messages reach rules through the `message.publish` hook point, events through theirs. Enabled
rules are indexed by their FROM topic filters in a topic trie (the broker's Router, with its
per-topic match cache), so a message costs one cached lookup whatever the number of rules whose
filters do not match it; a hook point is registered only while some enabled rule needs it.

A rule that fails (its SQL raises, an action fails) counts it in its metrics (metrics.py) and
logs at debug level, without a traceback: it never affects the publisher or other rules.
"""
from __future__ import annotations

import logging
import time

from emqpy.broker.router import Router
from emqpy.rule_engine import events as ev
from emqpy.rule_engine.actions import (ActionDiscarded, ActionError, DataIntegrationAction,
                                        OutOfService, parse)
from emqpy.rule_engine.metrics import SAMPLING, RuleMetrics

log = logging.getLogger("emqpy.rule_engine")

_FAILED = object()  # a per-message result: the SQL raised
PRIORITY = -100  # after the other features' message.publish callbacks: rules see what is routed
MAX_NESTING = 16
IGNORED_MAX = 65536  # topics remembered as selected by no rule (as the Router's match cache)  # republishes triggering rules triggering republishes...: a loop, stopped


class RuleError(ValueError):
    """A rule that cannot be installed: `field` (sql, actions) and EMQX-style text."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# The columns of a message event that are the same for every receiver of one message.
_PER_MESSAGE = frozenset({"id", "from_clientid", "from_username", "payload", "topic", "qos",
                          "flags", "pub_props", "publish_received_at", "event", "node"})


def _per_message(statement) -> bool:
    """Whether a statement's result depends on the message only: it reads no receiver column
    (clientid, peername, timestamp, ...), no `*`, and calls no function (some are not pure).
    Its result is then computed once per message for all the receivers of a fan-out."""
    stack = [*statement.fields, *statement.doeach, statement.incase, statement.where]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if node == "*":
            return False
        if not isinstance(node, tuple):
            continue
        if not node:
            continue
        kind = node[0]
        if kind == "call":
            return False
        if kind == "var":
            if node[1] not in _PER_MESSAGE:
                return False
            continue
        if kind == "path":
            segs = node[1]
            if not segs or segs[0][0] != "key" or segs[0][1] not in _PER_MESSAGE:
                return False
            stack.extend(seg[1] for seg in segs[1:] if seg[0] == "index")
            continue
        if kind == "const":
            continue
        if kind == "as":
            stack.append(node[1])  # (the alias is written, not read)
            continue
        # any other expression: its operands (an operator's name is a str, not a node)
        stack.extend(x for x in node[1:] if not isinstance(x, str))
        if not isinstance(kind, str):  # a tuple of nodes (CASE clauses, IN lists, ...)
            stack.append(kind)
    return True


def _names(node, out: set) -> None:
    """The column names an expression reads (first keys of paths)."""
    if isinstance(node, tuple) and node:
        if node[0] == "var":
            out.add(node[1])
            return
        if node[0] == "path":
            if node[1] and node[1][0][0] == "key":
                out.add(node[1][0][1])
            for seg in node[1][1:]:
                _names(seg[1], out)
            return
        for x in node:
            _names(x, out)


def _where_prefilter(compiled):
    """For a SELECT whose WHERE reads message columns only and whose fields cannot fail nor
    change what the WHERE reads (``*``, plain names, constants under a new name): the WHERE
    alone, compiled (its `evaluate` gives None when false), to be decided once per message of
    a fan-out. None otherwise."""
    from emqpy.rule_engine.compiler import compile_statement
    from emqpy.rule_engine.sql import Statement

    stmt = getattr(compiled, "statement", None)
    if stmt is None or stmt.is_foreach or stmt.where is None:
        return None
    if not _per_message(Statement(False, (), (), None, stmt.froms, stmt.where)):
        return None
    read: set = set()
    _names(stmt.where, read)
    for f in stmt.fields:
        if f == "*" or (isinstance(f, tuple) and f[0] == "var"):
            continue  # (selects a column as it is: the WHERE reads the same value)
        if isinstance(f, tuple) and f[0] == "as" and f[1][0] in ("var", "const") and \
                f[2][0] == "var" and (f[2][1] not in read or f[2] == f[1]):
            continue
        return None
    return compile_statement(compiled.sql, Statement(False, ("*",), (), None, stmt.froms,
                                                     stmt.where))


class Rule:
    __slots__ = ("id", "conf", "compiled", "froms", "actions", "created_at", "updated_at",
                 "metrics", "per_message", "where_pre", "_last_msg", "_last_out")

    def __init__(self, rule_id: str, conf, compiled, actions, created_at: int):
        self.id = rule_id
        self.conf = conf  # the config model (emqpy.config.rule_engine.Rule)
        self.compiled = compiled
        self.froms = tuple(compiled.froms)
        self.actions = actions
        self.created_at = created_at
        self.updated_at = ev.now_ms()
        self.metrics = RuleMetrics()
        stmt = getattr(compiled, "statement", None)
        self.per_message = stmt is not None and _per_message(stmt)
        self.where_pre = None if self.per_message else _where_prefilter(compiled)
        # per_message rules: the latest message and its outputs; where_pre: whether the
        # latest message passed the WHERE clause
        self._last_msg = self._last_out = None

    @property
    def enable(self) -> bool:
        return self.conf.enable

    def info(self) -> dict:
        """The rule as the API shows it (EMQX's format_rule_info_resp)."""
        from emqpy.timefmt import rfc3339

        c = self.conf
        return {"id": self.id, "name": c.name, "from": list(self.froms),
                "actions": [a.describe() for a in self.actions], "sql": c.sql,
                "enable": c.enable, "created_at": rfc3339(self.created_at / 1000, ms=True),
                "description": c.description}


def compile_rule(rule_id: str, conf, created_at: int | None = None) -> Rule:
    """Compile a configured rule; RuleError if its SQL or an action is refused."""
    from emqpy.rule_engine.sql import SqlError, compile_sql

    try:
        compiled = compile_sql(conf.sql)
    except SqlError as e:
        raise RuleError("sql", str(e)) from None
    actions = []
    for a in conf.actions:
        try:
            act = parse(a)
        except ActionError as e:
            raise RuleError("actions", str(e)) from None
        if hasattr(act, "ref"):
            log.warning("rule %s: action %s does not exist: its calls will be discarded",
                        rule_id, a)
        actions.append(act)
    if created_at is None:
        meta = conf.metadata or {}
        created_at = meta.get("created_at") if isinstance(meta.get("created_at"), int) \
            else ev.now_ms()
    return Rule(rule_id, conf, compiled, actions, created_at)


def _count_outcome(m, ok: bool) -> None:
    """A deferred action's final outcome, in the rule's action metrics (as EMQX counts a
    data-integration action's reply)."""
    if ok:
        m["actions.success"] += 1
    else:
        m["actions.failed"] += 1
        m["actions.failed.unknown"] += 1


class Engine:
    def __init__(self, broker):
        self.broker = broker
        self.rules: dict[str, Rule] = {}
        self.index = Router()  # FROM topic filter -> its enabled rules (route.subs: id -> Rule)
        self.event_rules: dict[str, list[Rule]] = {}  # hook point -> its enabled rules
        # "type:name" of a data source -> the enabled rules `FROM "$bridges/type:name"` (or
        # "$sources/type:name")
        self.source_rules: dict[str, list[Rule]] = {}
        self.ignore_sys = True
        self._hooked: set[str] = set()
        self._publish_cb = None
        self._base_msg = self._base_cols = None  # (see _base)
        self._timer = None
        self._depth = 0
        self._on_delivered = self._delivered_callback()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.sync()
        self._timer = self.broker.loop.call_later(SAMPLING, self._sample)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.rules = {}
        self._reindex()

    def _sample(self) -> None:
        for rule in self.rules.values():
            rule.metrics.sample()
        self._timer = self.broker.loop.call_later(SAMPLING, self._sample)

    # -- registry -------------------------------------------------------------------------

    def sync(self, built: dict[str, Rule] | None = None) -> None:
        """Make the running rules those of the config. A rule whose config changed is rebuilt
        (its metrics start again from zero, as in EMQX); `built` holds rules already compiled
        from the current config (the API compiles before it commits), which replace the
        running ones even when their config is the same (EMQX resets a rule on any update).
        A rule of the config that does not compile (written by hand in emqx.conf) is logged
        and left out."""
        cfg = self.broker.config.rule_engine
        self.ignore_sys = cfg.ignore_sys_message
        from emqpy.rule_engine.funcs_jq import set_default_timeout
        # (jq's worker is one per process: the latest broker's setting holds for all)
        set_default_timeout(round(cfg.jq_function_default_timeout * 1000))
        new: dict[str, Rule] = {}
        for rule_id, conf in cfg.rules.items():
            old = self.rules.get(rule_id)
            rule = (built or {}).get(rule_id)
            if old is not None and old.conf == conf and rule is None:
                new[rule_id] = old
                continue
            if rule is None or rule.conf != conf:
                try:
                    rule = compile_rule(rule_id, conf,
                                        old.created_at if old is not None else None)
                except RuleError as e:
                    log.error("rule %s not loaded: %s: %s", rule_id, e.field, e.message)
                    continue
            elif old is not None:
                rule.created_at = old.created_at
            new[rule_id] = rule
        self.rules = new
        self._reindex()

    def get(self, rule_id: str) -> Rule | None:
        return self.rules.get(rule_id)

    def ordered(self) -> list[Rule]:
        return sorted(self.rules.values(), key=lambda r: r.created_at)

    def _reindex(self) -> None:
        index = Router()
        events: dict[str, list[Rule]] = {}
        sources: dict[str, list[Rule]] = {}
        for rule in self.ordered():
            if not rule.enable:
                continue
            for flt in rule.froms:
                point = ev.EVENT_POINTS.get(flt)
                if point is not None:
                    lst = events.setdefault(point, [])
                    if rule not in lst:
                        lst.append(rule)
                elif flt.startswith(("$bridges/", "$sources/")):
                    lst = sources.setdefault(flt.split("/", 1)[1], [])
                    if rule not in lst:
                        lst.append(rule)
                elif not flt.startswith("$events/"):
                    index.route_for(flt).subs[rule.id] = rule
        self.index = index
        self.event_rules = events
        self.source_rules = sources
        wanted = set(events)
        if index.routes:
            wanted.add("message.publish")
        if "client.check_authz_complete" in wanted:
            # the authz feature reports its decisions; while it has nothing to decide
            # (no source), the broker's own "allow" is reported from here
            wanted.add("client.authorize")
        hooks = self.broker.hooks
        if "message.publish" in self._hooked:  # (bound to the index it was made for)
            hooks.remove("message.publish", self._publish_cb)
            self._hooked = self._hooked - {"message.publish"}
        for point in self._hooked - wanted:
            hooks.remove(point, self._callbacks[point])
        for point in wanted - self._hooked:
            if point == "message.publish":
                self._publish_cb = self._publish_callback(index)
                hooks.add(point, self._publish_cb, PRIORITY)
            else:
                hooks.add(point, self._callbacks[point], PRIORITY)
        self._hooked = wanted

    # -- running rules --------------------------------------------------------------------

    def apply(self, rule: Rule, columns: dict, envs: dict | None = None,
              collect: list | None = None, own: bool = False) -> None:
        """Run one rule on an event's columns (`own`: made for this call only, may be
        changed). `collect` (rule tests): append the outputs instead of running the
        actions."""
        m = rule.metrics.c
        m["matched"] += 1
        cols = columns if own else dict(columns)
        meta = cols.get("metadata")
        cols["metadata"] = {**meta, "rule_id": rule.id} if isinstance(meta, dict) \
            else {"rule_id": rule.id}
        tracer = self.broker.tracer  # (None unless a log trace runs)
        if tracer is not None and not tracer.rule_wanted(rule.id, cols.get("clientid")):
            tracer = None
        if tracer is not None:
            _trace(tracer, rule, cols, "rule_activated", input=cols, environment=envs or {})
        try:
            outputs = rule.compiled.evaluate(cols)
        except Exception as e:
            m["failed.exception"] += 1
            log.debug("rule %s: SQL failed: %s", rule.id, e)
            if tracer is not None:
                _trace(tracer, rule, cols, "SELECT_clause_exception", "warning", reason=str(e))
            if collect is not None:
                raise
            return
        if not outputs:
            m["failed.no_result"] += 1
            if tracer is not None:
                _trace(tracer, rule, cols, "SQL_yielded_no_result")
            return
        m["passed"] += 1
        if tracer is not None:
            _trace(tracer, rule, cols, "SQL_yielded_result",
                   result=outputs[0] if len(outputs) == 1 else outputs)
        if collect is not None:
            collect.extend(outputs)
            return
        env = {**cols, **envs} if envs else cols
        for out in outputs:
            for action in rule.actions:
                self._run_action(rule, action, out, env)

    def _run_action(self, rule: Rule, action, selected, envs) -> None:
        m = rule.metrics.c
        m["actions.total"] += 1
        if self._depth >= MAX_NESTING:
            m["actions.failed"] += 1
            m["actions.failed.unknown"] += 1
            log.warning("rule %s: actions nested %d deep (republish loop between rules?): "
                        "stopped", rule.id, self._depth)
            return
        self._depth += 1
        tracer = self.broker.tracer  # (None unless a log trace runs)
        if tracer is not None and not tracer.rule_wanted(rule.id, envs.get("clientid")):
            tracer = None
        if tracer is not None:
            _trace_action(tracer, rule, envs, action, "call_action_function")
        try:
            if action.deferred:
                action.run(self.broker, rule.id, selected, envs,
                           lambda ok: _count_outcome(m, ok))
            else:
                action.run(self.broker, rule.id, selected, envs)
                m["actions.success"] += 1
        except ActionDiscarded as e:
            m["actions.discarded"] += 1
            log.debug("rule %s: action discarded: %s", rule.id, e)
            if tracer is not None:
                _trace_action(tracer, rule, envs, action, "discarded", cause=str(e))
        except OutOfService:
            m["actions.failed"] += 1
            m["actions.failed.out_of_service"] += 1
            if tracer is not None:
                _trace_action(tracer, rule, envs, action, "out_of_service", level="warning")
        except Exception as e:
            m["actions.failed"] += 1
            m["actions.failed.unknown"] += 1
            log.debug("rule %s: action failed: %s", rule.id, e)
            if tracer is not None:
                _trace_action(tracer, rule, envs, action, "action_failed", level="error",
                              reason=str(e))
        finally:
            self._depth -= 1

    def apply_source(self, source_id: str, columns: dict) -> int:
        """Run the rules `FROM "$bridges/<source_id>"` on a message a data source received;
        how many there were."""
        rules = self.source_rules.get(source_id)
        if not rules:
            return 0
        for rule in rules:
            self.apply(rule, columns)
        return len(rules)

    def _apply_event(self, point: str, build, *args) -> None:
        rules = self.event_rules.get(point)
        if not rules:
            return
        columns = build(self.broker, *args)
        for rule in rules:
            self.apply(rule, columns)

    # -- hook callbacks -------------------------------------------------------------------

    def _publish_callback(self, index: Router):
        """The `message.publish` callback for `index`: every message passes here, so a message
        no rule selects costs one lookup in the index's per-topic cache, in a closure."""
        ignored: set = set()

        def on_message_publish(msg, cache=index.cache, match=index.match,
                               matched=self._publish_matched, ignored=ignored):
            routes = cache.get(msg.topic)
            if routes is None:
                routes = match(msg.topic)
            if routes:
                matched(msg, routes)
            else:
                if len(ignored) >= IGNORED_MAX:
                    ignored.clear()
                ignored.add(msg.topic)
            return msg
        # topics no rule selects: while this is the only message.publish callback, the broker
        # does not call it for them (Broker.publish_ignored); a new index makes a new set
        on_message_publish.ignored_topics = ignored
        return on_message_publish

    def _publish_matched(self, msg, routes) -> None:
        if msg.flags & 1 and self.ignore_sys:
            return
        columns = ev.message_publish(self.broker, msg)
        envs = ev.message_envs(msg)
        seen = None
        for route in routes:
            for rule in route.subs.values():
                if len(routes) > 1:  # a rule whose filters overlap runs once
                    seen = seen or set()
                    if rule.id in seen:
                        continue
                    seen.add(rule.id)
                self.apply(rule, columns, envs)

    def _message_event(self, point, build, msg, *args) -> None:
        if msg.flags & 1 and self.ignore_sys:
            return
        rules = self.event_rules.get(point)
        if not rules:
            return
        columns = build(self.broker, msg, *args)
        envs = ev.message_envs(msg)
        for rule in rules:
            self.apply(rule, columns, envs)

    def _base(self, msg) -> dict:
        """The message-only columns, kept for the latest message: the deliveries of one
        fan-out come one after the other."""
        if self._base_msg is not msg:
            self._base_cols = ev.message_base(msg)
            self._base_msg = msg
        return self._base_cols

    def _receiver_event(self, point: str, build, msg, ch) -> None:
        """A message event seen by each receiver (delivered, acked): a rule whose result
        depends on the message only is evaluated once per message, and the columns are built
        only when some rule needs them."""
        rules = self.event_rules.get(point)
        if not rules:
            return
        columns = envs = None
        tracer = self.broker.tracer  # (None unless a log trace runs)
        for rule in rules:
            traced = tracer is not None and tracer.rule_wanted(rule.id, ch.clientid)
            if traced:
                pass  # a traced rule runs in full (apply), for its trace lines
            elif rule.where_pre is not None:
                if self._where_decided(rule, point, msg) is False:  # false for every receiver
                    m = rule.metrics.c
                    m["matched"] += 1
                    m["failed.no_result"] += 1
                    continue
            elif rule.per_message:
                if rule._last_msg is not msg:
                    rule._last_msg = msg
                    rule._last_out = self._evaluate(rule, self._base_event(point, msg))
                else:
                    self._count(rule, rule._last_out)
                outputs = rule._last_out
                if not outputs or not rule.actions or outputs is _FAILED:
                    continue
            if columns is None:
                columns = build(self.broker, msg, ch, self._base(msg))
                envs = ev.message_envs(msg)
            if rule.per_message and not traced:
                self._act(rule, outputs, {**columns, "metadata": {"rule_id": rule.id},
                                          **envs})
            else:
                self.apply(rule, columns, envs)

    def _base_event(self, point: str, msg) -> dict:
        cols = self._base(msg).copy()
        cols["event"] = point
        cols["node"] = self.broker.node_name
        return cols

    def _evaluate(self, rule: Rule, cols: dict):
        """apply()'s SQL part for a per-message result: the outputs (counted), or _FAILED."""
        cols["metadata"] = {"rule_id": rule.id}
        try:
            outputs = rule.compiled.evaluate(cols)
        except Exception as e:
            log.debug("rule %s: SQL failed: %s", rule.id, e)
            outputs = _FAILED
        self._count(rule, outputs)
        return outputs

    @staticmethod
    def _count(rule: Rule, outputs) -> None:
        m = rule.metrics.c
        m["matched"] += 1
        if outputs is _FAILED:
            m["failed.exception"] += 1
        elif not outputs:
            m["failed.no_result"] += 1
        else:
            m["passed"] += 1

    def _act(self, rule: Rule, outputs, env: dict) -> None:
        for out in outputs:
            for action in rule.actions:
                self._run_action(rule, action, out, env)

    def _delivered_callback(self):
        """The `message.delivered` callback, with the two attributes the inlined QoS 0 fan-out
        looks for (docs/hooks.md): `skips(msg)`, true when every rule's WHERE refuses the
        message whoever receives it, and `skipped(msg, n)`, which counts the `n` deliveries
        the fan-out then made without calling. A fan-out of a message no rule wants costs one
        call, not one per receiver."""
        engine = self

        def on_message_delivered(msg, ch):
            if msg.flags & 1 and engine.ignore_sys:
                return msg
            rules = engine.event_rules.get("message.delivered")
            if rules is not None and len(rules) == 1:  # (once per delivery of a fan-out:
                rule = rules[0]                        # the common case without a call)
                if rule._last_msg is msg and rule._last_out is False and \
                        rule.where_pre is not None and engine.broker.tracer is None:
                    c = rule.metrics.c
                    c["matched"] += 1
                    c["failed.no_result"] += 1
                    return msg
            engine._receiver_event("message.delivered", ev.message_delivered, msg, ch)
            return msg

        def skips(msg) -> bool:
            if msg.flags & 1 and engine.ignore_sys:
                return True
            if engine.broker.tracer is not None:  # a traced rule sees every delivery
                return False
            for rule in engine.event_rules.get("message.delivered") or ():
                if rule.where_pre is None or \
                        engine._where_decided(rule, "message.delivered", msg) is not False:
                    return False
            return True

        def skipped(msg, n: int) -> None:
            if msg.flags & 1 and engine.ignore_sys:
                return
            for rule in engine.event_rules.get("message.delivered") or ():
                c = rule.metrics.c
                c["matched"] += n
                c["failed.no_result"] += n

        on_message_delivered.skips = skips
        on_message_delivered.skipped = skipped
        return on_message_delivered

    def _where_decided(self, rule: Rule, point: str, msg):
        """What the rule's message-only WHERE says of `msg` (decided once per message):
        True, False, or None when it could not say (each receiver's run will)."""
        if rule._last_msg is not msg:
            rule._last_msg = msg
            try:
                rule._last_out = rule.where_pre.evaluate(
                    self._base_event(point, msg)) is not None
            except Exception:
                rule._last_out = None
        return rule._last_out

    def on_message_acked(self, msg, ch) -> None:
        if not (msg.flags & 1 and self.ignore_sys):
            self._receiver_event("message.acked", ev.message_acked, msg, ch)

    def on_message_dropped(self, msg, reason) -> None:
        self._message_event("message.dropped", ev.message_dropped, msg, reason)

    def on_delivery_dropped(self, session, msg, reason) -> None:
        if msg.flags & 1 and self.ignore_sys:
            return
        self._apply_event("delivery.dropped", ev.delivery_dropped, session, msg, reason)

    def on_client_connected(self, ch) -> None:
        self._apply_event("client.connected", ev.client_connected, ch)

    def on_client_disconnected(self, ch, reason) -> None:
        self._apply_event("client.disconnected", ev.client_disconnected, ch, reason)

    def on_client_connack(self, ch, code, props) -> None:
        self._apply_event("client.connack", ev.client_connack, ch, code, props)

    def on_session_subscribed(self, session, sub) -> None:
        self._apply_event("session.subscribed", ev.session_subscribed, session, sub)

    def on_session_unsubscribed(self, session, topic_filter) -> None:
        self._apply_event("session.unsubscribed", ev.session_unsubscribed, session,
                          topic_filter)

    def on_check_authz_complete(self, ch, action, topic, result, source) -> None:
        self._apply_event("client.check_authz_complete", ev.check_authz_complete, ch, action,
                          topic, result, source)

    def on_authorize(self, allowed, ch, action, topic):
        if self.broker.authorizer is None:
            self.on_check_authz_complete(ch, action, topic, "allow" if allowed else "deny",
                                         "default")
        return allowed

    def on_check_authn_complete(self, ch, reason_code, is_superuser, is_anonymous) -> None:
        self._apply_event("client.check_authn_complete", ev.check_authn_complete, ch,
                          reason_code, is_superuser, is_anonymous)

    @property
    def _callbacks(self) -> dict:
        return {
            "message.delivered": self._on_delivered,
            "message.acked": self.on_message_acked,
            "message.dropped": self.on_message_dropped,
            "delivery.dropped": self.on_delivery_dropped,
            "client.connected": self.on_client_connected,
            "client.disconnected": self.on_client_disconnected,
            "client.connack": self.on_client_connack,
            "session.subscribed": self.on_session_subscribed,
            "session.unsubscribed": self.on_session_unsubscribed,
            "client.check_authz_complete": self.on_check_authz_complete,
            "client.check_authn_complete": self.on_check_authn_complete,
            "client.authorize": self.on_authorize,
        }


# -- log trace (emqpy.trace): EMQX's rule runtime trace events -----------------------------------

def _trace_meta(rule: Rule, cols: dict) -> dict:
    meta = {"rule_id": rule.id,
            "rule_trigger_ts": [cols.get("timestamp") or int(time.time() * 1000)]}
    if cols.get("clientid") is not None:
        meta["clientid"] = cols["clientid"]
    return meta


def _trace(tracer, rule: Rule, cols: dict, msg: str, level: str = "debug", **extra) -> None:
    tracer.log("RULE_SQL_EXEC", msg, {**_trace_meta(rule, cols), **extra}, level)


def _trace_action(tracer, rule: Rule, envs: dict, action, msg: str, level: str = "debug",
                  **extra) -> None:
    bridge = isinstance(action, DataIntegrationAction)
    info = {"type": action.type, "name": action.name} if bridge else action.describe()
    tracer.log("BRIDGE" if bridge and msg == "call_action_function" else "ACTION",
               "bridge_action" if bridge and msg == "call_action_function" else msg,
               {**_trace_meta(rule, envs), "action_info": info, **extra}, level)
