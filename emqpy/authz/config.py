"""Pydantic models for the I/O authorization sources (EMQX's authz.http_*, redis, postgresql)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from emqpy.connectors import validation_text
from emqpy.connectors.http import HttpConnectorCfg
from emqpy.connectors.postgresql import PostgresConnectorCfg
from emqpy.connectors.redis import RedisConnectorCfg


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enable: bool = True


class HttpSourceCfg(_Base, HttpConnectorCfg):
    type: Literal["http"]
    request_timeout: str = "30s"  # EMQX's authz default (authentication's is 5s)


class RedisSourceCfg(_Base, RedisConnectorCfg):
    type: Literal["redis"]
    cmd: str

    @field_validator("cmd")
    @classmethod
    def _cmd(cls, v: str):
        parts = v.split()
        if len(parts) != 2 or parts[0].upper() != "HGETALL":
            raise ValueError("cmd: only 'HGETALL key' is supported")
        return v


class PostgresSourceCfg(_Base, PostgresConnectorCfg):
    type: Literal["postgresql"]


MODELS = {"http": HttpSourceCfg, "redis": RedisSourceCfg, "postgresql": PostgresSourceCfg}


def validate_io(cfg: dict) -> dict:
    try:
        m = MODELS[cfg["type"]].model_validate(cfg)
    except ValidationError as e:
        raise ValueError(validation_text(e)) from None
    out = m.model_dump(exclude_none=True)
    # what it is first, as written, before the connector fields the model inherits
    return {"enable": out.pop("enable"), "type": out.pop("type"), **out}
