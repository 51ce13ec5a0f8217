"""The Redis connector: EMQX's single-node Redis config and a lazily created client (a dead
server never delays broker start; the first command connects)."""
from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import Field

from emqpy.connectors import OP_TIMEOUT, DbConnectorCfg, split_server


class RedisConnectorCfg(DbConnectorCfg):
    redis_type: Literal["single"] = "single"
    database: int = Field(0, ge=0)


class RedisConnector:
    def __init__(self, cfg: dict):
        self.cfg = cfg
        self._client = None

    def client(self):
        if self._client is None:
            import redis.asyncio as aioredis
            host, port = split_server(self.cfg["server"], 6379)
            self._client = aioredis.Redis(
                host=host, port=port, db=self.cfg.get("database", 0),
                username=self.cfg.get("username") or None,
                password=self.cfg.get("password") or None,
                max_connections=self.cfg.get("pool_size", 8),
                socket_connect_timeout=OP_TIMEOUT, socket_timeout=OP_TIMEOUT)
        return self._client

    async def ping(self) -> bool:
        return bool(await asyncio.wait_for(self.client().ping(), OP_TIMEOUT))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
