"""Connections to external services that authentication and authorization share, as EMQX's
connectors are shared: each module holds the config fields both sides accept (a pydantic base
model each side extends with its own fields and defaults) and the one client/pool factory
both use. This module has what every connector needs.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from emqpy.config import parse_duration

OP_TIMEOUT = 5.0  # seconds for one database operation (connect, query, ping, close)


def duration(v: Any) -> Any:
    """A pydantic `before` check of a duration field: HOCON numbers are milliseconds."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{int(v)}ms"
    parse_duration(v)  # raises ValueError with a clear message
    return v


def validation_text(e: ValidationError) -> str:
    """One line naming every invalid field, without pydantic's "Value error, " noise."""
    msgs = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        msgs.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(msgs)


def split_server(server: str, default_port: int) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    if not host:
        return server, default_port
    return host.strip("[]"), int(port)


class DbConnectorCfg(BaseModel):
    """Fields of every database connector (EMQX's redis/postgresql `server`, pool, login)."""
    model_config = ConfigDict(extra="forbid")
    server: str
    pool_size: int = Field(8, ge=1)
    username: str | None = None
    password: str | None = None
    ssl: dict = {"enable": False}
    auto_reconnect: bool | None = None

    @field_validator("ssl")
    @classmethod
    def _no_tls(cls, v: dict):
        # Refused rather than ignored: a user asking for TLS must not get plain TCP silently.
        if v.get("enable") in (True, "true"):
            raise ValueError("ssl: TLS connections to this database are not supported by emqpy "
                             "yet; use a TLS-terminating proxy on localhost")
        return v

    @field_validator("server")
    @classmethod
    def _server(cls, v: str):
        host, _, port = v.rpartition(":")
        if host and not port.isdigit():
            raise ValueError("server: expected host or host:port")
        return v
