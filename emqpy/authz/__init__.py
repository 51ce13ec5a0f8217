"""Authorization: EMQX's ordered sources, `no_match`, `deny_action` and the per-client cache.

    from emqpy import authz
    authz.setup(broker)            # after broker.store is open (Broker.start)
    await authz.teardown(broker)   # in Broker.stop

Config is EMQX's `authorization` root; REST changes are persisted in the SQLite store (meta key
`authz.config`) and win over the config file at the next start, like EMQX's cluster.hocon.
"""
from __future__ import annotations

from emqpy.feature import BackupConfig, BackupTable, Feature

import copy
import json
import logging
import time
from collections import OrderedDict
from pathlib import Path

from pydantic import ValidationError

from emqpy.broker.deferred import Deferred
from emqpy.authz.match import first_match
from emqpy.config import parse_duration
from emqpy.config.features import Authorization
from emqpy.config.schema import config_error, deep_merge
from emqpy.mqtt.topic import matches
from emqpy.rates import SAMPLING, RateMeter

log = logging.getLogger("emqpy.authz")
META_KEY = "authz.config"
TYPES = ("file", "built_in_database", "http", "redis", "mysql", "postgresql", "mongodb", "ldap")
SUPPORTED = ("file", "built_in_database", "http", "redis", "postgresql")
IO_TYPES = ("http", "redis", "postgresql")
# The settings part of the ``authorization`` root (its sources are kept as objects apart).
DEFAULT_SETTINGS = {k: v for k, v in Authorization().model_dump(mode="json").items()
                    if k != "sources"}


class Invalid(ValueError):
    pass


class NotFound(LookupError):
    pass


def validate_settings(raw: dict, base: dict | None = None) -> dict:
    """``raw`` merged onto ``base`` (default: EMQX's defaults) and checked with the config
    model; Invalid names the bad key."""
    if not isinstance(raw, dict):
        raise Invalid("settings: an object is expected")
    change = {k: v for k, v in raw.items() if k != "sources"}
    try:
        settings = Authorization.model_validate(deep_merge(base or DEFAULT_SETTINGS, change))
    except ValidationError as e:
        raise Invalid(str(config_error(e))) from None
    return {k: v for k, v in settings.model_dump(mode="json").items() if k != "sources"}


class FileSource:
    type = "file"

    def __init__(self, broker, cfg: dict):
        from emqpy.authz.aclfile import compile_rules
        self.broker = broker
        text = cfg.get("rules")
        if text is None:
            path = cfg.get("path")
            if not path:
                raise Invalid("file source: path or rules is required")
            try:
                text = Path(path).read_text()
            except OSError as e:
                raise Invalid(f"file source: cannot read {path}: {e.strerror}") from None
        else:  # rules given inline (REST): kept in data_dir, as EMQX keeps data/authz/acl.conf
            path = Path(broker.data_dir) / "authz" / "acl.conf"
        try:
            self.rules = compile_rules(text)
        except ValueError as e:
            raise Invalid(f"file source: {e}") from None
        self.text = text
        self.cfg = {"type": "file", "enable": cfg.get("enable", True), "path": str(path)}
        self._write = cfg.get("rules") is not None

    def commit(self) -> None:
        """Write inline rules to the file the config points at (after validation passed)."""
        if self._write:
            p = Path(self.cfg["path"])
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_suffix(".tmp")
            tmp.write_text(self.text)
            tmp.replace(p)

    def view(self) -> dict:
        return {**self.cfg, "rules": self.text}

    def authorize(self, ch, action, topic, qos, retain):
        return first_match(self.rules, ch, action, topic, qos, retain)

    async def status(self) -> str:
        return "connected"

    async def close(self) -> None:
        pass

    async def destroy(self) -> None:
        pass


def build_source(broker, cfg):
    if not isinstance(cfg, dict):
        raise Invalid("a source must be an object")
    t = cfg.get("type")
    if t not in TYPES:
        raise Invalid(f"type: unknown source type {t!r}")
    if t not in SUPPORTED:
        raise Invalid(f"type: source {t!r} is not supported by emqpy yet")
    if "enable" in cfg and not isinstance(cfg["enable"], bool):
        raise Invalid("enable: a boolean is expected")
    if t in IO_TYPES:
        from emqpy.authz import io_sources
        from emqpy.authz.config import validate_io
        try:
            norm = validate_io(cfg)
        except ValueError as e:
            raise Invalid(str(e)) from None
        cls = {"http": io_sources.HttpSource, "redis": io_sources.RedisSource,
               "postgresql": io_sources.PostgresSource}[t]
        return cls(broker, norm)
    if t == "file":
        extra = set(cfg) - {"type", "enable", "path", "rules"}
        if extra:
            raise Invalid(f"unknown fields {sorted(extra)}")
        return FileSource(broker, cfg)
    from emqpy.authz.builtin import BuiltinSource
    extra = set(cfg) - {"type", "enable", "max_rules"}
    if extra:
        raise Invalid(f"unknown fields {sorted(extra)}")
    mr = cfg.get("max_rules", 100)
    if not isinstance(mr, int) or isinstance(mr, bool) or mr < 1:
        raise Invalid("max_rules: a positive integer is expected")
    return BuiltinSource(broker, {"type": t, "enable": cfg.get("enable", True),
                                  "max_rules": mr})


class SourceMetrics:
    """A source's counters and the rate of `total` (sampled every `rates.SAMPLING` s)."""

    def __init__(self):
        self.total = self.allow = self.deny = self.nomatch = 0
        self.meter = RateMeter()

    def as_dict(self):
        return {"total": self.total, "allow": self.allow, "deny": self.deny,
                "nomatch": self.nomatch, "ignore": 0, **self.meter.view()}


def _answer(src, *request) -> str | None:
    """A source's answer; a failing source is logged and answers None (no match)."""
    try:
        return src.authorize(*request)
    except Exception:
        log.exception("authorization source %s failed", src.type)
        return None


async def _answer_async(src, *request) -> str | None:
    if not hasattr(src, "authorize_async"):
        return _answer(src, *request)
    try:
        return await src.authorize_async(*request)
    except Exception:
        log.exception("authorization source %s failed", src.type)
        return None


def _tally(sm: SourceMetrics, res: str | None) -> str | None:
    """Count a source's answer ("allow", "deny" or None for no match) and return it."""
    if res is None:
        sm.nomatch += 1
    elif res == "allow":
        sm.allow += 1
    else:
        sm.deny += 1
    return res


class AuthzService:
    def __init__(self, broker):
        self.broker = broker
        self.settings = copy.deepcopy(DEFAULT_SETTINGS)
        self.sources: list = []
        self.metrics: dict[str, SourceMetrics] = {}
        self.cache: dict[str, OrderedDict] = {}  # clientid -> key -> (allowed, expire, topic)
        # answers fetched for a packet that will replay: key -> (allowed, the source that said)
        self._fresh: dict[tuple, tuple[bool, str]] = {}
        self._source = "default"  # who decided the latest check (client.check_authz_complete)
        self.client_acl: dict[str, tuple] = {}  # clientid -> (rules, expire_at, owner channel id)
        self.io_active = False
        self._sampler = None  # the timer of the rate samples

    def _sample(self) -> None:
        for m in self.metrics.values():
            m.meter.sample(m.total)
        self._sampler = self.broker.loop.call_later(SAMPLING, self._sample)

    # -- config -------------------------------------------------------------------------

    def load(self) -> None:
        from emqpy.authz import builtin
        self.broker.store.migrate(builtin.COMPONENT)
        saved = self.broker.store.get_meta(META_KEY)
        raw = json.loads(saved) if saved is not None else \
            self.broker.config.dump("authorization", hidden=True)
        try:
            self.settings = validate_settings(raw)
        except Invalid as e:
            log.error("authorization: invalid settings, using defaults: %s", e)
        for s in raw.get("sources") or []:
            try:
                src = build_source(self.broker, s)
            except Invalid as e:
                log.error("authorization: ignoring source: %s", e)
                continue
            if self.find(src.type) is None:
                self.sources.append(src)
                self.metrics[src.type] = SourceMetrics()
        self.apply()

    def apply(self) -> None:
        c = self.settings["cache"]
        self.cache_enabled = c["enable"]
        self.cache_max = c["max_size"]
        self.cache_ttl = parse_duration(c["ttl"])
        self.cache_excludes = list(c.get("excludes") or [])
        self.no_match_allow = self.settings["no_match"] == "allow"
        self.broker.deny_action_disconnect = self.settings["deny_action"] == "disconnect"
        self.clean_cache()

    def clean_cache(self, clientid: str | None = None) -> None:
        if clientid is None:
            self.cache.clear()
            self._install()
        else:
            self.cache.pop(clientid, None)

    def _install(self) -> None:
        """Hook the broker only when a check can say no: allow-all keeps the hot path bare."""
        active = any(s.cfg.get("enable", True) for s in self.sources) or bool(self.client_acl)
        self.io_active = any(s.cfg.get("enable", True) and hasattr(s, "authorize_async")
                             for s in self.sources)
        if self.broker.authz is self:
            self.broker.set_authorizer(self.authorize if active or not self.no_match_allow
                                       else None)
            self.broker.authorize_prefetch = self.prefetch if self.io_active else None

    def persist(self) -> None:
        data = dict(self.settings, sources=[s.cfg for s in self.sources])
        self.broker.store.set_meta(META_KEY, json.dumps(data))

    def find(self, t: str):
        for s in self.sources:
            if s.type == t:
                return s
        return None

    def get(self, t: str):
        s = self.find(t)
        if s is None:
            raise NotFound(t)
        return s

    # -- the hot path --------------------------------------------------------------------

    def authorize(self, ch, action: str, topic: str, qos: int, retain: bool) -> bool:
        """The broker's hook. Raises Deferred when an I/O source must be asked first. The
        decision goes to `client.check_authz_complete` callbacks, when there are any."""
        allowed = self._authorize(ch, action, topic, qos, retain)
        hooks = self.broker.hooks
        if "client.check_authz_complete" in hooks._points:
            hooks.run("client.check_authz_complete", ch, action, topic,
                      "allow" if allowed else "deny", self._source)
        return allowed

    def _authorize(self, ch, action: str, topic: str, qos: int, retain: bool) -> bool:
        m = self.broker.metrics.c
        if self.cache_enabled and not any(matches(f, topic) for f in self.cache_excludes):
            cache = self.cache.get(ch.clientid)
            key = (action, topic, qos, bool(retain))
            now = time.monotonic()
            if cache is not None:
                hit = cache.get(key)
                if hit is not None and hit[1] > now:
                    m["client.authorize"] += 1
                    m["authorization.cache_hit"] += 1
                    self._source = "cache"
                    return self._count(hit[0])
            allowed = self._fresh_or_check(ch, action, topic, qos, retain)
            m["client.authorize"] += 1
            m["authorization.cache_miss"] += 1
            cache = self.cache.get(ch.clientid)
            if cache is None:
                cache = self.cache[ch.clientid] = OrderedDict()
            cache[key] = (allowed, now + self.cache_ttl, topic, time.time())
            cache.move_to_end(key)
            while len(cache) > self.cache_max:
                cache.popitem(last=False)
            return self._count(allowed)
        allowed = self._fresh_or_check(ch, action, topic, qos, retain)
        m["client.authorize"] += 1
        return self._count(allowed)

    def _fresh_or_check(self, ch, action, topic, qos, retain) -> bool:
        if ch.is_superuser:  # allowed before any source is asked, as EMQX's emqx_authz does
            self.broker.metrics.c["authorization.superuser"] += 1
            self._source = "superuser"
            return True
        fresh = self._fresh.pop((ch.clientid, action, topic, qos, bool(retain)), None)
        if fresh is not None:  # fetched by the deferred check this packet waited for
            allowed, self._source = fresh
            return allowed
        if self.io_active:
            raise Deferred(self._check_async(ch, [(action, topic, qos, retain)]))
        return self._check(ch, action, topic, qos, retain)

    def prefetch(self, ch, topics) -> None:
        """Before a SUBSCRIBE changes anything: if any filter needs an I/O answer, fetch all of
        them first (raises Deferred), so the packet is replayed whole, never half-applied."""
        if not self.io_active or ch.is_superuser:
            return
        from emqpy.mqtt.topic import parse_share
        need = []
        for flt, opts in topics:
            try:
                real = parse_share(flt)[1]
            except Exception:
                continue  # broker.subscribe reports the bad filter
            if ch.mountpoint:
                real = ch.mountpoint + real
            key = ("subscribe", real, opts.qos, False)
            hit = (self.cache.get(ch.clientid) or {}).get(key) if self.cache_enabled else None
            if (hit is None or hit[1] <= time.monotonic()) and \
                    (ch.clientid, *key) not in self._fresh:
                need.append(("subscribe", real, opts.qos, False))
        if need:
            raise Deferred(self._check_async(ch, need))

    async def _check_async(self, ch, items) -> None:
        for action, topic, qos, retain in items:
            res = self._from_client_acl(ch, action, topic, qos, retain)
            source = "client_info"
            if res is None:
                for src, sm in self._enabled_sources():
                    source = src.type
                    res = _tally(sm, await _answer_async(src, ch, action, topic, qos, retain))
                    if res is not None:
                        break
            allowed = self._decide(res)
            self._fresh[(ch.clientid, action, topic, qos, bool(retain))] = (
                allowed, source if res is not None else "default")

    def _decide(self, res: str | None) -> bool:
        """What the first matching rule said ("allow", "deny", None for no match) -> allowed,
        counted as EMQX's emqx_authz counts it (authorization.matched.allow/deny, nomatch)."""
        c = self.broker.metrics.c
        if res is None:
            c["authorization.nomatch"] += 1
            return self.no_match_allow
        allowed = res == "allow"
        c["authorization.matched.allow" if allowed else "authorization.matched.deny"] += 1
        return allowed

    def _count(self, allowed: bool) -> bool:
        self.broker.metrics.c["authorization.allow" if allowed else "authorization.deny"] += 1
        return allowed

    def set_client_acl(self, ch, acl, expire_at: float | None) -> None:
        """Rules an authenticator (JWT `acl` claim) grants one connection; checked first."""
        from emqpy.authz.match import compile_client_acl
        self.client_acl[ch.clientid] = (compile_client_acl(acl), expire_at, id(ch))
        self.cache.pop(ch.clientid, None)
        self._install()

    def _from_client_acl(self, ch, action, topic, qos, retain):
        entry = self.client_acl.get(ch.clientid) if self.client_acl else None
        if entry is None or (entry[1] is not None and entry[1] <= time.time()):
            return None
        return first_match(entry[0], ch, action, topic, qos, retain)

    def _check(self, ch, action, topic, qos, retain) -> bool:
        res = self._from_client_acl(ch, action, topic, qos, retain)
        source = "client_info"  # (an authenticator's per-client rules, e.g. a JWT acl claim)
        if res is None:
            for src, sm in self._enabled_sources():
                source = src.type
                res = _tally(sm, _answer(src, ch, action, topic, qos, retain))
                if res is not None:
                    break
        self._source = source if res is not None else "default"
        return self._decide(res)

    def _enabled_sources(self):
        """(source, its metrics) of the enabled sources in order, each counted as asked.
        The metrics are taken now: a source deleted while it is asked counts on its own."""
        for src in self.sources:
            if src.cfg.get("enable", True):
                sm = self.metrics[src.type]
                sm.total += 1
                yield src, sm

    # -- cache ----------------------------------------------------------------------------

    def client_cache(self, clientid: str) -> list[dict]:
        now = time.monotonic()
        out = []
        for (action, topic, _q, _r), (allowed, exp, _t, updated) in \
                (self.cache.get(clientid) or {}).items():
            if exp > now:
                out.append({"access": action, "topic": topic,
                            "result": "allow" if allowed else "deny",
                            "updated_time": int(updated * 1000)})
        return out

    def _on_disconnected(self, ch, reason) -> None:
        self.cache.pop(ch.clientid, None)
        entry = self.client_acl.get(ch.clientid)
        if entry is not None and entry[2] == id(ch):  # not a newer connection's (takeover)
            del self.client_acl[ch.clientid]
        if self._fresh:
            self._fresh = {k: v for k, v in self._fresh.items() if k[0] != ch.clientid}

    # -- management -------------------------------------------------------------------------

    def update_settings(self, raw: dict) -> dict:
        self.settings = validate_settings(raw, self.settings)
        self.apply()
        self.persist()
        return self.settings

    async def add_source(self, cfg) -> None:
        src = build_source(self.broker, cfg)
        if self.find(src.type) is not None:
            raise Invalid(f"source {src.type} already exists")
        getattr(src, "commit", lambda: None)()
        self.sources.append(src)
        self.metrics[src.type] = SourceMetrics()
        self.persist()
        self.clean_cache()

    async def update_source(self, t: str, cfg) -> None:
        old = self.get(t)
        if isinstance(cfg, dict):
            from emqpy.config.secrets import unmask
            cfg = unmask(cfg, old.cfg)  # "******" sent back keeps the stored secret
        if isinstance(cfg, dict) and cfg.get("type", t) != t:
            raise Invalid("type cannot be changed")
        src = build_source(self.broker, {**cfg, "type": t} if isinstance(cfg, dict) else cfg)
        getattr(src, "commit", lambda: None)()
        self.sources[self.sources.index(old)] = src
        self.persist()
        self.clean_cache()
        if old is not src and hasattr(old, "close"):
            await old.close()

    async def delete_source(self, t: str) -> None:
        src = self.get(t)
        self.sources.remove(src)
        self.metrics.pop(t, None)
        self.persist()
        self.clean_cache()
        await src.destroy()

    def move(self, t: str, position: str) -> None:
        from emqpy.authn.core import moved
        rest = moved(self.sources, self.get(t), position, self.find, NotFound)
        if rest is None:
            raise Invalid(f"invalid position {position!r}")
        self.sources[:] = rest
        self.persist()
        self.clean_cache()

    def reorder(self, types: list[str]) -> None:
        cur = {s.type: s for s in self.sources}
        if len(types) != len(set(types)) or set(types) != set(cur):
            raise Invalid("the new order must list every source exactly once")
        self.sources[:] = [cur[t] for t in types]
        self.persist()
        self.clean_cache()


# Counters authorization adds to the broker's (EMQX's emqx_authz ensures the same ones).
METRICS = ("authorization.superuser", "authorization.matched.allow",
           "authorization.matched.deny", "authorization.nomatch")


async def source_stats(broker) -> list[dict]:
    """Each source, in order: ``type``, ``enable``, ``status`` (as
    /authorization/sources/{type}/status answers it), its counters, and ``rules_count`` for
    the built-in database (its clients, users and "all" entries, as EMQX counts its table) and
    the file (for /prometheus/auth)."""
    svc = broker.authz
    out = []
    for src in (svc.sources if svc is not None else ()):
        enable = bool(src.cfg.get("enable", True))
        m = svc.metrics[src.type].as_dict()
        entry = {"type": src.type, "enable": enable,
                 "status": await src.status() if enable else "disconnected",
                 "total": m["total"], "allow": m["allow"], "deny": m["deny"],
                 "nomatch": m["nomatch"]}
        if src.type == "built_in_database":
            entry["rules_count"] = broker.store.query_one(
                "SELECT count(*) AS n FROM authz_rules")["n"]
        elif src.type == "file":
            entry["rules_count"] = len(src.rules)
        out.append(entry)
    return out


def setup(broker) -> AuthzService:
    for name in METRICS:
        broker.metrics.c.setdefault(name, 0)
    svc = AuthzService(broker)
    broker.authz = svc
    svc.load()
    svc._hook = svc._on_disconnected  # one object, so that hooks.remove finds it
    broker.hooks.add("client.disconnected", svc._hook)
    svc._sampler = broker.loop.call_later(SAMPLING, svc._sample)
    return svc


async def teardown(broker) -> None:
    svc = broker.authz
    if svc is None:
        return
    if svc._sampler is not None:
        svc._sampler.cancel()
        svc._sampler = None
    if broker.authorizer == svc.authorize:
        broker.set_authorizer(None)
    broker.authorize_prefetch = None
    broker.hooks.remove("client.disconnected", svc._hook)
    for s in svc.sources:
        await s.close()
    broker.authz = None


from emqpy.authz import backup  # noqa: E402  (needs the names above)

FEATURE = Feature("authz", setup=setup, teardown=teardown, routers=("emqpy.authz.api",),
                  backup_tables=(BackupTable(
                      "authz_rules", "builtin_authz", backup.export_rules,
                      backup.restore_rules, emqx_tables={"emqx_acl": backup.rules_from_emqx},
                      threaded=True, after_restore=backup.reload_rules),),
                  backup_config=BackupConfig(("authorization",), backup.export_config,
                                             backup.restore_config))
