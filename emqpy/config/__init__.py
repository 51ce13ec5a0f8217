"""EMQX's configuration for emqpy: schema (EMQX 5.8.1 keys and defaults),
HOCON + environment loading, and runtime updates.

    cfg = load_config("etc/emqx.conf")          # defaults < cluster.hocon < file < EMQX_* env
    cfg.mqtt.max_inflight                       # plain, already-parsed attributes
    cfg.listeners.tcp["default"].bind.port
    cfg.dump("mqtt")                            # EMQX JSON form ("15s", "1MB", "infinity")

Changing the running config: ``config_lock``, ``update_root`` (or ``replace_root``), ``commit``, ``persist``
(see ``runtime``).
"""

from .base import ConfigError
from .loader import load_config, save_cluster_override
from .runtime import commit, config_lock, persist
from .schema import EmqxConfig, replace_root, update_root, validate_config
from .types import Bind
from .units import format_bytesize, format_duration, parse_bind, parse_bytesize, parse_duration, parse_rate

__all__ = [
    "Bind",
    "ConfigError",
    "EmqxConfig",
    "commit",
    "config_lock",
    "format_bytesize",
    "format_duration",
    "load_config",
    "parse_bind",
    "parse_bytesize",
    "parse_duration",
    "parse_rate",
    "persist",
    "replace_root",
    "save_cluster_override",
    "update_root",
    "validate_config",
]
