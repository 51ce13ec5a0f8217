"""Secrets in config as the API shows them: masked as EMQX masks them ("******"), and a mask
sent back in an update keeps the stored value. One masker for every API that shows config
(configs, listeners, authentication, authorization)."""
from __future__ import annotations

from typing import Any

MASK = "******"
# Keys whose string values are secrets, wherever they appear (EMQX's sensitive keys; the typed
# config models mark theirs with `sensitive_fields`, all of which are here too).
SECRET_KEYS = frozenset({
    "password", "secret", "secret_key", "private_key", "token", "passcode", "security_token",
    "sasl_password", "aws_secret_access_key", "api_secret", "default_password", "cookie"})
# Inside a `headers` object, the values of these headers (any case) are secrets too.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})


def mask_secrets(value: Any) -> Any:
    """`value` (JSON-shaped) with the string value of every secret key replaced by MASK."""
    if isinstance(value, dict):
        return {k: MASK if k in SECRET_KEYS and isinstance(v, str) else
                _mask_headers(v) if k == "headers" and isinstance(v, dict) else mask_secrets(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


def _mask_headers(headers: dict) -> dict:
    return {k: MASK if isinstance(v, str) and str(k).strip().lower() in SECRET_HEADERS else v
            for k, v in mask_secrets(headers).items()}


def unmask(new: Any, current: Any) -> Any:
    """`new` (an update) with each MASK that stands where `current` has a value replaced by
    that value: what GET showed masked and the client sent back unchanged."""
    if isinstance(new, dict) and isinstance(current, dict):
        return {k: current[k] if v == MASK and k in current else unmask(v, current.get(k))
                for k, v in new.items()}
    if isinstance(new, list) and isinstance(current, list):  # e.g. authenticators, by position
        return [unmask(v, current[i] if i < len(current) else None) for i, v in enumerate(new)]
    return new
