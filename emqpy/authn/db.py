"""`password_based:redis` and `password_based:postgresql`: look the user up with EMQX's
`cmd` / `query` templates, then check the password like the built-in database does.

Both connect lazily (a dead server never delays broker start) and answer "ignore" when the
server is unreachable, recording the error for the status endpoint.
"""
from __future__ import annotations

import asyncio
import logging
import re

from emqpy.authn import hashing
from emqpy.authn.core import Authenticator, credentials
from emqpy.authn.placeholders import client_vars, render
from emqpy.mqtt import reason_codes as rc

log = logging.getLogger("emqpy.authn")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")
OP_TIMEOUT = 5.0


def split_server(server: str, default_port: int) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    if not host:
        return server, default_port
    return host.strip("[]"), int(port)


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

    async def lookup(self, variables) -> dict | None:  # pragma: no cover - abstract
        raise NotImplementedError


class RedisAuthn(_PasswordDB):
    def __init__(self, broker, cfg):
        super().__init__(broker, cfg)
        self.cmd, self.key, self.fields = parse_redis_cmd(cfg["cmd"])
        self._client = None

    def _redis(self):
        if self._client is None:
            import redis.asyncio as aioredis
            host, port = split_server(self.cfg["server"], 6379)
            self._client = aioredis.Redis(
                host=host, port=port, db=self.cfg.get("database", 0),
                username=self.cfg.get("username") or None,
                password=self.cfg.get("password") or None,
                max_connections=self.cfg.get("pool_size", 8), socket_connect_timeout=OP_TIMEOUT,
                socket_timeout=OP_TIMEOUT)
        return self._client

    async def lookup(self, variables):
        key = render(self.key, variables)
        fields = [render(f, variables) for f in self.fields]
        if self.cmd == "HGET":
            v = await self._redis().hget(key, fields[0])
            values = [v]
        else:
            values = await self._redis().hmget(key, fields)
        if all(v is None for v in values):
            return None
        return {f: v for f, v in zip(fields, values) if v is not None}

    async def health(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._redis().ping(), OP_TIMEOUT))
        except Exception as e:
            self.last_error = f"{type(e).__name__}: {e}"
            return False

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


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


def pg_query(template: str) -> tuple[str, list[str]]:
    """`${var}` placeholders become $1, $2... parameters (never string-spliced into SQL)."""
    names: list[str] = []

    def sub(m):
        names.append(m.group(1))
        return f"${len(names)}"
    return _VAR.sub(sub, template), names


class PostgresAuthn(_PasswordDB):
    def __init__(self, broker, cfg):
        super().__init__(broker, cfg)
        self.sql, self.params = pg_query(cfg["query"])
        self._pool = None
        self._pool_lock = asyncio.Lock()

    async def _get_pool(self):
        async with self._pool_lock:
            if self._pool is None:
                import asyncpg
                host, port = split_server(self.cfg["server"], 5432)
                self._pool = await asyncpg.create_pool(
                    host=host, port=port, user=self.cfg["username"],
                    password=self.cfg.get("password") or None, database=self.cfg["database"],
                    min_size=0, max_size=self.cfg.get("pool_size", 8), timeout=OP_TIMEOUT,
                    command_timeout=OP_TIMEOUT,
                    statement_cache_size=0 if self.cfg.get("disable_prepared_statements")
                    else 100)
            return self._pool

    async def lookup(self, variables):
        pool = await self._get_pool()
        row = await pool.fetchrow(self.sql, *[variables.get(n, "") for n in self.params])
        return dict(row) if row is not None else None

    async def health(self) -> bool:
        try:
            pool = await asyncio.wait_for(self._get_pool(), OP_TIMEOUT)
            return await pool.fetchval("SELECT 1") == 1
        except Exception as e:
            self.last_error = f"{type(e).__name__}: {e}"
            return False

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), OP_TIMEOUT)
            except Exception:
                pool.terminate()
