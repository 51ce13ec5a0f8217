"""Pydantic models for EMQX's `authentication` list (one model per mechanism/backend)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from emqpy.authn import hashing
from emqpy.config import parse_duration

_HTTP_POST_HEADERS = {"accept": "application/json", "cache-control": "no-cache",
                      "connection": "keep-alive", "content-type": "application/json",
                      "keep-alive": "timeout=30, max=1000"}


def _duration(v: Any) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{int(v)}ms"  # HOCON numbers are milliseconds
    parse_duration(v)  # raises ValueError with a clear message
    return v


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    enable: bool = True


class BuiltinCfg(_Base):
    mechanism: Literal["password_based"]
    backend: Literal["built_in_database"]
    user_id_type: Literal["clientid", "username"] = "username"
    password_hash_algorithm: dict = {"name": "sha256", "salt_position": "prefix"}
    bootstrap_file: str | None = None
    bootstrap_type: Literal["hash", "plain"] = "plain"

    @field_validator("password_hash_algorithm")
    @classmethod
    def _alg(cls, v):
        return hashing.validate_algorithm(v)


class HttpCfg(_Base):
    mechanism: Literal["password_based"]
    backend: Literal["http"]
    method: Literal["post", "get"] = "post"
    url: str
    headers: dict[str, str] | None = None
    body: dict = {}
    request_timeout: str = "5s"
    connect_timeout: str = "15s"
    pool_size: int = Field(8, ge=1)
    enable_pipelining: int = Field(100, ge=1)
    ssl: dict = {"enable": False}
    max_retries: int | None = None
    retry_interval: str | None = None
    request: dict | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str):
        if not v.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return v

    @field_validator("request_timeout", "connect_timeout", mode="before")
    @classmethod
    def _dur(cls, v):
        return _duration(v)

    def model_post_init(self, _ctx) -> None:
        if self.headers is None:
            h = dict(_HTTP_POST_HEADERS)
            if self.method == "get":
                h.pop("content-type")
            self.headers = h


class JwtCfg(_Base):
    mechanism: Literal["jwt"]
    use_jwks: bool = False
    algorithm: Literal["hmac-based", "public-key"] | None = None
    secret: str | None = None
    secret_base64_encoded: bool = False
    public_key: str | None = None
    endpoint: str | None = None
    headers: dict[str, str] = {"Accept": "application/json"}
    refresh_interval: int = Field(300, ge=1)
    pool_size: int = Field(8, ge=1)
    ssl: dict = {"enable": False}
    acl_claim_name: str = "acl"
    verify_claims: dict[str, str] = {}
    disconnect_after_expire: bool = True
    from_: Literal["password", "username"] = Field("password", alias="from")

    def model_post_init(self, _ctx) -> None:
        if self.use_jwks:
            if not self.endpoint:
                raise ValueError("endpoint is required when use_jwks is true")
        elif self.algorithm == "hmac-based":
            if not self.secret:
                raise ValueError("secret is required for algorithm hmac-based")
        elif self.algorithm == "public-key":
            if not self.public_key:
                raise ValueError("public_key is required for algorithm public-key")
        else:
            raise ValueError("algorithm must be hmac-based or public-key (or use_jwks true)")


class ScramCfg(_Base):
    mechanism: Literal["scram"]
    backend: Literal["built_in_database"]
    algorithm: Literal["sha256", "sha512"] = "sha256"
    iteration_count: int = Field(4096, ge=0)


class _DbBase(_Base):
    mechanism: Literal["password_based"]
    password_hash_algorithm: dict = {"name": "sha256", "salt_position": "prefix"}
    server: str
    pool_size: int = Field(8, ge=1)
    username: str | None = None
    password: str | None = None
    ssl: dict = {"enable": False}
    auto_reconnect: bool | None = None

    @field_validator("password_hash_algorithm")
    @classmethod
    def _alg(cls, v):
        return hashing.validate_algorithm(v)

    @field_validator("server")
    @classmethod
    def _server(cls, v: str):
        host, _, port = v.rpartition(":")
        if host and not port.isdigit():
            raise ValueError("server: expected host or host:port")
        return v


class RedisCfg(_DbBase):
    backend: Literal["redis"]
    redis_type: Literal["single"] = "single"
    cmd: str
    database: int = Field(0, ge=0)

    @field_validator("cmd")
    @classmethod
    def _cmd(cls, v):
        from emqpy.authn.db import parse_redis_cmd
        parse_redis_cmd(v)
        return v


class PostgresCfg(_DbBase):
    backend: Literal["postgresql"]
    database: str
    username: str
    query: str
    disable_prepared_statements: bool = False


MODELS = {("password_based", "built_in_database"): BuiltinCfg,
          ("password_based", "http"): HttpCfg,
          ("password_based", "redis"): RedisCfg,
          ("password_based", "postgresql"): PostgresCfg,
          ("scram", "built_in_database"): ScramCfg,
          ("jwt", None): JwtCfg}


class ConfigInvalid(ValueError):
    pass


def validate(cfg: Any) -> dict:
    """A user's authenticator object -> normalised dict; ConfigInvalid says what is wrong."""
    if not isinstance(cfg, dict):
        raise ConfigInvalid("an authenticator must be a JSON object")
    key = (cfg.get("mechanism"), cfg.get("backend") if cfg.get("mechanism") != "jwt" else None)
    model = MODELS.get(key)
    if model is None:
        raise ConfigInvalid(f"unsupported authenticator mechanism={key[0]!r} backend={key[1]!r}")
    try:
        m = model.model_validate(cfg)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()))
            msg = err.get("msg", "invalid").removeprefix("Value error, ")
            msgs.append(f"{loc}: {msg}" if loc else msg)
        raise ConfigInvalid("; ".join(msgs)) from None
    out = m.model_dump(by_alias=True, exclude_none=True)
    return out
