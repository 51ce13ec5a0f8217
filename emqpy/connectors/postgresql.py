"""The PostgreSQL connector: EMQX's config, `${var}` templates turned into query parameters,
and a lazily created asyncpg pool (a dead server never delays broker start)."""
from __future__ import annotations

import asyncio

from emqpy.connectors import OP_TIMEOUT, DbConnectorCfg, split_server
from emqpy.connectors.placeholders import VAR


class PostgresConnectorCfg(DbConnectorCfg):
    database: str
    username: str
    query: str
    disable_prepared_statements: bool = False


def pg_query(template: str) -> tuple[str, list[str]]:
    """`${var}` placeholders become $1, $2... parameters (never string-spliced into SQL)."""
    names: list[str] = []

    def sub(m):
        names.append(m.group(1))
        return f"${len(names)}"
    return VAR.sub(sub, template), names


class PgPool:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self._pool = None
        self._lock = asyncio.Lock()

    async def get(self):
        async with self._lock:
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

    async def ping(self) -> bool:
        pool = await asyncio.wait_for(self.get(), OP_TIMEOUT)
        return await pool.fetchval("SELECT 1") == 1

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), OP_TIMEOUT)
            except Exception:
                pool.terminate()
