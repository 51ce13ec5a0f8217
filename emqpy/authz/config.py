"""Pydantic models for the I/O authorization sources (EMQX's authz.http_*, redis, postgresql)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from emqpy.authn.config import _duration


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enable: bool = True


class HttpSourceCfg(_Base):
    type: Literal["http"]
    method: Literal["post", "get"] = "post"
    url: str
    headers: dict[str, str] | None = None
    body: dict = {}
    request_timeout: str = "30s"
    connect_timeout: str = "15s"
    pool_size: int = Field(8, ge=1)
    enable_pipelining: int = Field(100, ge=1)
    ssl: dict = {"enable": False}
    max_retries: int | None = None
    retry_interval: str | None = None
    request: dict | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v):
        if not v.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return v

    @field_validator("request_timeout", "connect_timeout", mode="before")
    @classmethod
    def _dur(cls, v):
        return _duration(v)

    def model_post_init(self, _ctx) -> None:
        if self.headers is None:
            self.headers = {"accept": "application/json", "cache-control": "no-cache",
                            "connection": "keep-alive", "keep-alive": "timeout=30, max=1000"}
            if self.method == "post":
                self.headers["content-type"] = "application/json"


class _Db(_Base):
    server: str
    pool_size: int = Field(8, ge=1)
    username: str | None = None
    password: str | None = None
    ssl: dict = {"enable": False}
    auto_reconnect: bool | None = None


class RedisSourceCfg(_Db):
    type: Literal["redis"]
    redis_type: Literal["single"] = "single"
    cmd: str
    database: int = Field(0, ge=0)

    @field_validator("cmd")
    @classmethod
    def _cmd(cls, v: str):
        parts = v.split()
        if len(parts) != 2 or parts[0].upper() != "HGETALL":
            raise ValueError("cmd: only 'HGETALL key' is supported")
        return v


class PostgresSourceCfg(_Db):
    type: Literal["postgresql"]
    database: str
    username: str
    query: str
    disable_prepared_statements: bool = False


MODELS = {"http": HttpSourceCfg, "redis": RedisSourceCfg, "postgresql": PostgresSourceCfg}


def validate_io(cfg: dict) -> dict:
    try:
        m = MODELS[cfg["type"]].model_validate(cfg)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()))
            msg = err.get("msg", "invalid").removeprefix("Value error, ")
            msgs.append(f"{loc}: {msg}" if loc else msg)
        raise ValueError("; ".join(msgs)) from None
    return m.model_dump(exclude_none=True)
