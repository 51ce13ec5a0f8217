"""Pydantic models for EMQX's `authentication` list (one model per mechanism/backend)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from emqpy.authn import hashing
from emqpy.connectors import validation_text
from emqpy.connectors.http import HttpConnectorCfg
from emqpy.connectors.postgresql import PostgresConnectorCfg
from emqpy.connectors.redis import RedisConnectorCfg


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    enable: bool = True


class _Hashed(_Base):
    """A password_based authenticator that checks stored hashes."""
    mechanism: Literal["password_based"]
    password_hash_algorithm: dict = {"name": "sha256", "salt_position": "prefix"}

    @field_validator("password_hash_algorithm")
    @classmethod
    def _alg(cls, v):
        return hashing.validate_algorithm(v)


class BuiltinCfg(_Hashed):
    backend: Literal["built_in_database"]
    user_id_type: Literal["clientid", "username"] = "username"
    bootstrap_file: str | None = "${EMQX_ETC_DIR}/auth-built-in-db-bootstrap.csv"
    bootstrap_type: Literal["hash", "plain"] = "plain"


class HttpCfg(_Base, HttpConnectorCfg):
    mechanism: Literal["password_based"]
    backend: Literal["http"]


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


class RedisCfg(_Hashed, RedisConnectorCfg):
    backend: Literal["redis"]
    cmd: str

    @field_validator("cmd")
    @classmethod
    def _cmd(cls, v):
        from emqpy.authn.db import parse_redis_cmd
        parse_redis_cmd(v)
        return v


class PostgresCfg(_Hashed, PostgresConnectorCfg):
    backend: Literal["postgresql"]


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
        raise ConfigInvalid(validation_text(e)) from None
    out = m.model_dump(by_alias=True, exclude_none=True)
    # what it is first, as written, before the connector fields the model inherits
    return {**{k: out[k] for k in ("enable", "mechanism", "backend") if k in out}, **out}
