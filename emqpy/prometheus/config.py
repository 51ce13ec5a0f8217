"""Changing the ``prometheus`` settings through the API (the root's model, with EMQX's
defaults, is ``emqpy.config.features.Prometheus``)."""
from __future__ import annotations

from typing import Any

from emqpy.config import ConfigError, EmqxConfig, replace_root, update_root
from emqpy.config.features import is_legacy


def updated(config: EmqxConfig, body: Any) -> EmqxConfig:
    """The config after a PUT: a recommended-form body is merged onto the running settings
    (as EMQX merges config updates); a legacy-form body replaces them. ConfigError names the
    bad key."""
    if not isinstance(body, dict):
        raise ConfigError("prometheus", "a JSON object is expected")
    if is_legacy(body):
        return replace_root(config, "prometheus", body)
    return update_root(config, "prometheus", body)

