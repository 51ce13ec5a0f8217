"""Authorization sources that ask a server: `http`, `redis`, `postgresql` (EMQX's shapes).

Each has `async authorize_async(ch, action, topic, qos, retain)` -> "allow" | "deny" | None;
a failing server answers None ("ignore"), so the next source or `no_match` decides.
"""
from __future__ import annotations

import asyncio
import json
import logging

from emqpy.authn.http import parse_result
from emqpy.authz.match import Rule, TopicSpec
from emqpy.connectors import OP_TIMEOUT
from emqpy.connectors.http import HttpClient
from emqpy.connectors.placeholders import client_vars, render
from emqpy.connectors.postgresql import PgPool, pg_query
from emqpy.connectors.redis import RedisConnector

log = logging.getLogger("emqpy.authz")


def request_vars(ch, action, topic, qos, retain) -> dict:
    return client_vars(ch, topic=topic, action=action, qos=qos,
                       retain=str(bool(retain)).lower(), mountpoint=ch.mountpoint or "")


class _IOSource:
    def __init__(self, broker, cfg):
        self.broker = broker
        self.cfg = cfg
        self.last_error = None

    def authorize(self, ch, action, topic, qos, retain):  # the sync path cannot do I/O
        raise RuntimeError("I/O source used synchronously")

    async def authorize_async(self, ch, action, topic, qos, retain):
        try:
            res = await asyncio.wait_for(self._ask(ch, action, topic, qos, retain),
                                         self.timeout + 1)
            self.last_error = None
            return res
        except Exception as e:  # unreachable, timeout, bad answer: ignore, show in status
            self.last_error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            log.warning("authz %s: %s", self.type, self.last_error)
            return None

    timeout = OP_TIMEOUT

    async def status(self) -> str:
        try:
            return "connected" if await self.health() else "disconnected"
        except Exception as e:
            self.last_error = str(e)
            return "disconnected"

    async def destroy(self) -> None:
        await self.close()

    # redis and postgresql: self.conn is their connector (emqpy.connectors); http overrides
    async def health(self) -> bool:
        return await self.conn.ping()

    async def close(self) -> None:
        await self.conn.close()


class HttpSource(_IOSource):
    type = "http"

    def __init__(self, broker, cfg):
        super().__init__(broker, cfg)
        self.http = HttpClient(cfg)
        self.timeout = self.http.timeout

    async def _ask(self, ch, action, topic, qos, retain):
        parsed = parse_result(await self.http.request(request_vars(ch, action, topic, qos,
                                                                   retain)))
        if parsed is None or parsed[0] == "ignore":
            return None
        return parsed[0]

    async def health(self) -> bool:
        return await self.http.reachable()

    async def close(self) -> None:
        await self.http.close()


def _rule_from_row(row: dict) -> Rule | None:
    perm = str(row.get("permission", "allow")).lower()
    action = str(row.get("action", "all")).lower()
    topic = row.get("topic")
    if perm not in ("allow", "deny") or action not in ("publish", "subscribe", "all") or \
            not isinstance(topic, str):
        return None
    qos = row.get("qos")
    if isinstance(qos, str):
        qos = [int(q) for q in qos.replace(" ", "").split(",") if q.isdigit()]
    elif isinstance(qos, int):
        qos = [qos]
    retain = row.get("retain", "all")
    if isinstance(retain, str) and retain.lower() in ("true", "1", "false", "0"):
        retain = retain.lower() in ("true", "1")
    elif isinstance(retain, int) and not isinstance(retain, bool):
        retain = bool(retain)
    elif retain is None:
        retain = "all"
    spec = TopicSpec(topic[3:], eq=True) if topic.startswith("eq ") else TopicSpec(topic)
    return Rule(perm, lambda ch: True, action, set(qos) if qos else None, retain, [spec])


def _first(rules, ch, action, topic, qos, retain):
    for r in rules:
        if r is not None:
            res = r.match(ch, action, topic, qos, retain)
            if res is not None:
                return res
    return None


class RedisSource(_IOSource):
    """`cmd` is `HGETALL key`: field = topic filter, value = action or a JSON object with
    action/qos/retain. Redis rules can only allow (EMQX's semantics)."""
    type = "redis"

    def __init__(self, broker, cfg):
        super().__init__(broker, cfg)
        parts = cfg["cmd"].split()
        self.key = parts[1]
        self.conn = RedisConnector(cfg)

    async def _ask(self, ch, action, topic, qos, retain):
        key = render(self.key, request_vars(ch, action, topic, qos, retain))
        data = await self.conn.client().hgetall(key)
        rules = []
        for flt, val in data.items():
            flt, val = flt.decode(), val.decode()
            try:
                spec = json.loads(val) if val.startswith("{") else {"action": val}
            except ValueError:
                continue
            rules.append(_rule_from_row({**spec, "topic": flt, "permission": "allow"}))
        return _first(rules, ch, action, topic, qos, retain)


class PostgresSource(_IOSource):
    """`query` returns rows with permission, action, topic (and optionally qos, retain),
    checked in order; the first matching row decides."""
    type = "postgresql"

    def __init__(self, broker, cfg):
        super().__init__(broker, cfg)
        self.sql, self.params = pg_query(cfg["query"])
        self.conn = PgPool(cfg)

    async def _ask(self, ch, action, topic, qos, retain):
        v = request_vars(ch, action, topic, qos, retain)
        pool = await self.conn.get()
        rows = await pool.fetch(self.sql, *[v.get(n, "") for n in self.params])
        return _first([_rule_from_row(dict(r)) for r in rows], ch, action, topic, qos, retain)
