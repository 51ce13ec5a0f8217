"""`password_based:redis` and `password_based:postgresql`: look the user up with EMQX's
`cmd` / `query` templates, then check the password like the built-in database does.

Both connect lazily (a dead server never delays broker start) and answer "ignore" when the
server is unreachable, recording the error for the status endpoint.
"""
from __future__ import annotations

import abc
import asyncio
import logging

from emqpy.authn import hashing
from emqpy.authn.core import Authenticator, credentials
from emqpy.connectors import OP_TIMEOUT
from emqpy.connectors.placeholders import client_vars, render
from emqpy.connectors.postgresql import PgPool, pg_query
from emqpy.connectors.redis import RedisConnector
from emqpy.mqtt import reason_codes as rc

log = logging.getLogger("emqpy.authn")


def truthy(v) -> bool:
    if isinstance(v, (bytes, bytearray)):
        v = v.decode("utf-8", "replace")
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1")
    return bool(v)


def _text(v):
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "replace")
    return v


class _PasswordDB(Authenticator):
    needs_resource = True
    conn = None  # the subclass's connector (emqpy.connectors)

    def __init__(self, broker, cfg):
        super().__init__(broker, cfg)
        self.alg = cfg["password_hash_algorithm"]

    def check(self, ch, pkt):
        username, password = credentials(pkt)
        return self._run(client_vars(ch, password or ""), password)

    async def _run(self, variables, password):
        try:
            row = await asyncio.wait_for(self.lookup(variables), OP_TIMEOUT)
        except Exception as e:  # refused, timeout, auth error, bad query: ignore, show in status
            self.last_error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            log.warning("authn %s: lookup failed: %s", self.id, self.last_error)
            return None
        self.last_error = None
        if not row:
            return None
        ph = _text(row.get("password_hash", row.get("password")))
        if ph is None:
            return None
        if password is None:
            return rc.BAD_USERNAME_OR_PASSWORD
        salt = _text(row.get("salt")) or ""
        args = (self.alg, password, salt, str(ph))
        ok = await asyncio.to_thread(hashing.check_password, *args) if hashing.is_slow(
            self.alg) else hashing.check_password(*args)
        if not ok:
            return rc.BAD_USERNAME_OR_PASSWORD
        return {"is_superuser": truthy(row.get("is_superuser", False))}

    @abc.abstractmethod
    async def lookup(self, variables) -> dict | None:
        """The user's row (password_hash, salt, is_superuser) from the backend, or None."""

    async def health(self) -> bool:
        try:
            return await self.conn.ping()
        except Exception as e:
            self.last_error = f"{type(e).__name__}: {e}"
            return False

    async def close(self) -> None:
        await self.conn.close()


class RedisAuthn(_PasswordDB):
    def __init__(self, broker, cfg):
        super().__init__(broker, cfg)
        self.cmd, self.key, self.fields = parse_redis_cmd(cfg["cmd"])
        self.conn = RedisConnector(cfg)

    async def lookup(self, variables):
        key = render(self.key, variables)
        fields = [render(f, variables) for f in self.fields]
        if self.cmd == "HGET":
            v = await self.conn.client().hget(key, fields[0])
            values = [v]
        else:
            values = await self.conn.client().hmget(key, fields)
        if all(v is None for v in values):
            return None
        return {f: v for f, v in zip(fields, values) if v is not None}



def parse_redis_cmd(cmd: str) -> tuple[str, str, list[str]]:
    """EMQX accepts `HGET key field` and `HMGET key field...` with password_hash or password."""
    parts = cmd.split()
    if len(parts) < 3 or parts[0].upper() not in ("HGET", "HMGET"):
        raise ValueError("cmd: only 'HGET key field' or 'HMGET key field ...' are supported")
    op = parts[0].upper()
    if op == "HGET" and len(parts) != 3:
        raise ValueError("cmd: HGET takes one key and one field")
    fields = parts[2:]
    if "password_hash" not in fields and "password" not in fields:
        raise ValueError("cmd: the fields must include password_hash or password")
    return op, parts[1], fields


class PostgresAuthn(_PasswordDB):
    def __init__(self, broker, cfg):
        super().__init__(broker, cfg)
        self.sql, self.params = pg_query(cfg["query"])
        self.conn = PgPool(cfg)

    async def lookup(self, variables):
        pool = await self.conn.get()
        row = await pool.fetchrow(self.sql, *[variables.get(n, "") for n in self.params])
        return dict(row) if row is not None else None
