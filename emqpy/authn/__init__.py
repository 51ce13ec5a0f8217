"""Authentication: EMQX's ordered chain of authenticators (`authentication` config root).

    from emqpy import authn
    authn.setup(broker)          # after broker.store is open (Broker.start)
    await authn.teardown(broker) # in Broker.stop

The chain's config lives in EMQX's `authentication` root; changes made over REST are persisted
in the SQLite store (meta key `authn.chain`) and win over the config file at the next start,
as EMQX's cluster.hocon does.
"""
from __future__ import annotations

from emqpy.feature import BackupConfig, BackupTable, Feature

import json
import logging

from emqpy.authn.config import ConfigInvalid, validate
from emqpy.authn.core import Chain, authenticator_id, moved
from emqpy.config.secrets import unmask
from emqpy.rates import SAMPLING

log = logging.getLogger("emqpy.authn")
META_KEY = "authn.chain"


class NotFound(LookupError):
    pass


class AlreadyExists(ValueError):
    pass


def build(broker, cfg: dict):
    mech, backend = cfg["mechanism"], cfg.get("backend")
    if mech == "jwt":
        from emqpy.authn.jwt_auth import JwtAuthn
        return JwtAuthn(broker, cfg)
    if mech == "scram":
        from emqpy.authn.scram import ScramDB
        return ScramDB(broker, cfg)
    if backend == "built_in_database":
        from emqpy.authn.builtin import BuiltinDB
        return BuiltinDB(broker, cfg)
    if backend == "http":
        from emqpy.authn.http import HttpAuthn
        return HttpAuthn(broker, cfg)
    if backend == "redis":
        from emqpy.authn.db import RedisAuthn
        return RedisAuthn(broker, cfg)
    if backend == "postgresql":
        from emqpy.authn.db import PostgresAuthn
        return PostgresAuthn(broker, cfg)
    raise ConfigInvalid(f"unsupported authenticator {authenticator_id(cfg)}")


class AuthnService:
    def __init__(self, broker):
        self.broker = broker
        self.chain = Chain(broker)
        self._sampler = None  # the timer of the rate samples

    # -- lifecycle ------------------------------------------------------------------------

    def _initial_config(self) -> list:
        store = self.broker.store
        saved = store.get_meta(META_KEY) if store is not None else None
        if saved is not None:
            return json.loads(saved)
        return self.broker.config.dump("authentication", hidden=True)

    def load(self) -> None:
        from emqpy.authn import builtin  # noqa: F401  (registers the users table)
        self.broker.store.migrate(builtin.COMPONENT)
        seen = set()
        for raw in self._initial_config():
            try:
                cfg = validate(raw)
            except ConfigInvalid as e:  # a bad entry must not keep the broker down
                log.error("authentication: ignoring invalid authenticator: %s", e)
                continue
            aid = authenticator_id(cfg)
            if aid in seen:
                log.error("authentication: duplicate authenticator %s ignored", aid)
                continue
            seen.add(aid)
            self.chain.authenticators.append(build(self.broker, cfg))

    async def start(self) -> None:
        for a in self.chain.authenticators:
            try:
                await a.start()
            except Exception:  # one broken authenticator must not keep the broker down
                log.exception("starting authenticator %s", a.id)
        self._sampler = self.broker.loop.call_later(SAMPLING, self._sample)

    def _sample(self) -> None:
        for a in self.chain.authenticators:
            a.metrics.meter.sample(a.metrics.total)
        self._sampler = self.broker.loop.call_later(SAMPLING, self._sample)

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        for a in self.chain.authenticators:
            try:
                await a.close()
            except Exception:
                log.exception("closing authenticator %s", a.id)

    def _on_disconnected(self, ch, reason) -> None:
        for a in self.chain.authenticators:
            forget = getattr(a, "forget", None)
            if forget is not None:
                forget(ch)

    def _persist(self) -> None:
        self.broker.store.set_meta(META_KEY, json.dumps([a.cfg for a in
                                                         self.chain.authenticators]))

    # -- management (REST) ------------------------------------------------------------------

    def configs(self) -> list[dict]:
        return [a.cfg for a in self.chain.authenticators]

    def get(self, aid: str):
        a = self.chain.get(aid)
        if a is None:
            raise NotFound(aid)
        return a

    async def create(self, raw) -> dict:
        cfg = validate(raw)
        aid = authenticator_id(cfg)
        a = build(self.broker, cfg)  # may still refuse the config (keys, secrets)
        if self.chain.get(aid) is not None:
            await a.close()
            raise AlreadyExists(aid)
        await a.start()
        self.chain.authenticators.append(a)
        self._persist()
        return cfg

    async def update(self, aid: str, raw) -> dict:
        old = self.get(aid)
        if isinstance(raw, dict):
            raw = unmask(raw, old.cfg)
        cfg = validate(raw)
        if authenticator_id(cfg) != aid:
            raise ConfigInvalid("mechanism and backend cannot be changed")
        new = build(self.broker, cfg)
        await new.start()
        new.metrics = old.metrics
        idx = self.chain.authenticators.index(old)
        self.chain.authenticators[idx] = new
        self._persist()
        await old.close()
        return cfg

    async def delete(self, aid: str) -> None:
        a = self.get(aid)
        self.chain.authenticators.remove(a)
        self._persist()
        await a.destroy()

    def move(self, aid: str, position: str) -> None:
        rest = moved(self.chain.authenticators, self.get(aid), position, self.chain.get,
                     NotFound)
        if rest is None:
            raise ConfigInvalid(f"invalid position {position!r}: use front, rear, "
                                "before:{id} or after:{id}")
        self.chain.authenticators[:] = rest
        self._persist()

    def reorder(self, ids: list[str]) -> None:
        current = {a.id: a for a in self.chain.authenticators}
        if len(ids) != len(set(ids)) or set(ids) != set(current):
            raise ConfigInvalid("the new order must list every authenticator exactly once")
        self.chain.authenticators[:] = [current[i] for i in ids]
        self._persist()


async def authenticator_stats(broker) -> list[dict]:
    """Each authenticator of the chain, in order: ``id``, ``enable``, ``status`` (as
    /authentication/{id}/status answers it), its counters, and ``users_count`` for a built-in
    database (for /prometheus/auth)."""
    svc = broker.authn
    out = []
    for a in (svc.chain.authenticators if svc is not None else ()):
        m = a.metrics.as_dict()
        entry = {"id": a.id, "enable": bool(a.cfg.get("enable", True)),
                 "status": await a.status(), "total": m["total"], "success": m["success"],
                 "failed": m["failed"], "nomatch": m["nomatch"]}
        if a.cfg.get("backend") == "built_in_database":
            entry["users_count"] = broker.store.query_one(
                "SELECT count(*) AS n FROM authn_users WHERE grp=?", (a.id,))["n"]
        out.append(entry)
    return out


def setup(broker):
    """Load the chain and hook it in; returns the awaitable the node awaits before clients
    come in: the authenticators' start (a built-in database's bootstrap_file)."""
    svc = AuthnService(broker)
    svc.load()
    broker.authn = svc
    broker.add_authenticator(svc.chain.authenticate)
    from emqpy.authn.scram import EnhancedAuth
    broker.enhanced_auth = EnhancedAuth(svc.chain)  # MQTT 5 AUTH exchanges (SCRAM)
    svc._hook = svc._on_disconnected  # one object, so that hooks.remove finds it
    broker.hooks.add("client.disconnected", svc._hook)
    return svc.start()


async def teardown(broker) -> None:
    svc = broker.authn
    if svc is not None:
        await svc.stop()
        broker.hooks.remove("client.disconnected", svc._hook)
        broker.remove_authenticator(svc.chain.authenticate)
        broker.authn = None
        broker.enhanced_auth = None


from emqpy.authn import backup  # noqa: E402  (needs the names above)

FEATURE = Feature("authn", setup=setup, teardown=teardown, routers=("emqpy.authn.api",),
                  backup_tables=(BackupTable(
                      "authn_users", "builtin_authn", backup.export_users,
                      backup.restore_users,
                      emqx_tables={"emqx_authn_mnesia": backup.users_from_emqx,
                                   "emqx_authn_scram_mnesia": backup.scram_users_from_emqx,
                                   "emqx_enhanced_authn_scram_mnesia":
                                       backup.scram_users_from_emqx},
                      threaded=True),),
                  backup_config=BackupConfig(("authentication",), backup.export_config,
                                             backup.restore_config))
