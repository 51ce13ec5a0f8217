"""Loading EMQX config the way EMQX 5.8 does.

Layers, lowest first (EMQX 5.8's emqx.conf header: "This config file overrides
data/configs/cluster.hocon, and is merged with environment variables which
start with 'EMQX_' prefix"):

1. built-in defaults (the schema models),
2. ``<data_dir>/configs/cluster.hocon`` (runtime changes saved by the API),
3. ``emqx.conf`` (the ``conf_file`` argument),
4. ``EMQX_*`` environment variables,
5. the ``overrides`` dict (emqpy's embedding API).

``data_dir`` is the argument if given, else ``node.data_dir`` from the
overrides, environment, emqx.conf, else ``"data"``.

Environment variables follow hocon's rules: ``EMQX_`` prefix, ``__`` between
levels, names lowercased (``EMQX_MQTT__MAX_PACKET_SIZE=2MB``).  Values are
parsed as HOCON values (numbers, booleans, ``{...}``, ``[...]``); values that
are not valid HOCON (``a@b``, ``[::]:1883``) are taken as plain strings.
Variables under an unknown root are ignored; under a known root but not a
known key they are logged and dropped (EMQX warns ``unknown_env_vars``).
``${VAR}`` substitutions in files are resolved from the process environment.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import ConfigError, Section
from .schema import ROOTS, EmqxConfig, deep_merge, validate_config

log = logging.getLogger("emqpy.config")

ENV_PREFIX = "EMQX_"
CLUSTER_HOCON = ("configs", "cluster.hocon")

_parse_lock = threading.Lock()


# ---------------------------------------------------------------- HOCON


def _pyhocon_parse(*, text: str | None = None, path: Path | None = None):
    """Parse with pyhocon, with its duration-literal feature switched off:
    pyhocon turns ``15s`` into a timedelta (and ``100ns`` into zero), while
    EMQX reads it as the string "15s" for the schema to interpret."""
    import pyhocon.config_parser as cp  # imported lazily: start-up cost only when a file is read
    from pyparsing import NoMatch
    from pyhocon import ConfigFactory

    with _parse_lock:
        saved = cp.get_period_expr
        cp.get_period_expr = NoMatch
        try:
            if path is not None:
                return ConfigFactory.parse_file(str(path), required=True)
            return ConfigFactory.parse_string(text)
        finally:
            cp.get_period_expr = saved


def _plain(value: Any) -> Any:
    """pyhocon values -> plain dicts/lists/scalars."""
    from pyhocon import ConfigTree

    if isinstance(value, ConfigTree):
        return {_key(str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if type(value).__name__ == "NoneValue":
        return None
    return value


def _key(k: str) -> str:
    """A key as HOCON means it: pyhocon keeps the quotes of a quoted key ("a.b", "r:1", one
    key, not a path) and its escapes; a key written by ``_hocon_text`` is JSON."""
    if len(k) >= 2 and k[0] == '"' and k[-1] == '"':
        try:
            return json.loads(k)
        except ValueError:
            return k[1:-1]
    return k


def parse_hocon_file(path: str | Path) -> dict[str, Any]:
    """Read a HOCON file (includes resolved relative to it) into a dict."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("", f"config file not found: {p}")
    try:
        tree = _pyhocon_parse(path=p)
    except Exception as exc:  # pyparsing / pyhocon errors have no common base
        raise ConfigError("", f"{p}: cannot parse HOCON: {_one_line(exc)}") from None
    return _plain(tree)


def parse_hocon_string(text: str) -> dict[str, Any]:
    try:
        tree = _pyhocon_parse(text=text)
    except Exception as exc:
        raise ConfigError("", f"cannot parse HOCON: {_one_line(exc)}") from None
    return _plain(tree)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# ---------------------------------------------------------------- env vars


def parse_env_value(value: str) -> Any:
    """An env var value as a HOCON value, or the raw string if it is not one."""
    if value == "":
        return ""
    try:
        tree = _pyhocon_parse(text="fake_key=" + value)
        return _plain(tree["fake_key"])
    except Exception:
        return value


def _is_path(model: type, path: list[str]) -> bool:
    """Does ``path`` name a key (or a key inside a map/object) of ``model``?"""
    if not path:
        return True
    name, rest = path[0], path[1:]
    if issubclass(model, Section) and name in model.ignored_keys:
        return True
    field = model.model_fields.get(name)
    if field is None:
        return model.model_config.get("extra") == "allow"  # a struct keeping other keys as given
    return _is_type_path(field.annotation, rest)


def _is_type_path(ann: Any, rest: list[str]) -> bool:
    if not rest:
        return True
    if isinstance(ann, type) and issubclass(ann, Section):
        return _is_path(ann, rest)
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is dict:
        return _is_type_path(args[1], rest[1:]) if args else True
    if origin is list:
        return rest[0].isdigit() and (not args or _is_type_path(args[0], rest[1:]))
    if args:  # unions: any member that accepts the path
        return any(_is_type_path(a, rest) for a in args)
    return ann is Any


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """The config layer made of ``EMQX_*`` variables in ``env``."""
    out: dict[str, Any] = {}
    unknown = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p for p in name[len(ENV_PREFIX) :].lower().split("__") if p]
        if not path or path[0] not in ROOTS:
            continue  # not config (EMQX_LOG_DIR, EMQX_NODE_NAME, ...) or a root emqpy ignores
        if not _is_path(EmqxConfig, path):
            unknown.append(name)
            continue
        value = parse_env_value(env[name])
        node = out
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        last = path[-1]
        if isinstance(value, dict) and isinstance(node.get(last), dict):
            node[last] = deep_merge(node[last], value)
        else:
            node[last] = value
    if unknown:
        log.warning("unknown_env_vars: %s", ", ".join(unknown))
    return out


# ---------------------------------------------------------------- loading


def _data_dir_from(layer: Mapping[str, Any] | None) -> str | None:
    node = layer.get("node") if isinstance(layer, Mapping) else None
    value = node.get("data_dir") if isinstance(node, Mapping) else None
    return str(value) if value not in (None, "") else None


def cluster_hocon_path(data_dir: str | Path) -> Path:
    return Path(data_dir).joinpath(*CLUSTER_HOCON)


def load_config(
    conf_file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    data_dir: str | None = None,
) -> EmqxConfig:
    """Build the running config from defaults < cluster.hocon < ``conf_file``
    < ``EMQX_*`` vars in ``env`` (default ``os.environ``) < ``overrides``.
    Raises ConfigError (one line, naming the key) on any bad value."""
    if env is None:
        env = os.environ
    if overrides is not None and not isinstance(overrides, dict):
        raise ConfigError("", f"overrides must be a dict, got {type(overrides).__name__}")
    conf = parse_hocon_file(conf_file) if conf_file is not None else {}
    env_layer = env_overrides(env)
    if data_dir is None:
        data_dir = _data_dir_from(overrides) or _data_dir_from(env_layer) or _data_dir_from(conf) or "data"
    data_dir = str(data_dir)
    cluster_file = cluster_hocon_path(data_dir)
    cluster = parse_hocon_file(cluster_file) if cluster_file.is_file() else {}

    merged: dict[str, Any] = {}
    for layer in (cluster, conf, env_layer, overrides or {}):
        merged = deep_merge(merged, layer)
    merged = deep_merge(merged, {"node": {"data_dir": data_dir}})
    return validate_config(merged)


# ---------------------------------------------------------------- saving


def _hocon_text(data: dict[str, Any]) -> str:
    """HOCON for cluster.hocon: each root as ``root { ... }`` in JSON syntax
    (JSON is HOCON; quoted strings are never substituted, so values such as
    "${EMQX_ETC_DIR}/certs/cert.pem" survive as written)."""
    lines = ["# Written by emqpy for runtime config changes (EMQX cluster.hocon).", ""]
    for root, value in data.items():
        lines.append(f"{json.dumps(root)} = {json.dumps(value, indent=2, allow_nan=False)}")
        lines.append("")
    return "\n".join(lines)


def save_cluster_override(data_dir: str | Path, root: str, value: dict[str, Any] | list) -> Path:
    """Store ``value`` as root ``root`` of ``<data_dir>/configs/cluster.hocon``
    (other roots in the file are kept), atomically: temp file, fsync, rename.
    The next ``load_config`` on this data_dir applies it."""
    if not isinstance(value, (dict, list)):  # a list: an array root (authentication)
        raise ConfigError(root, f"expected an object, got {type(value).__name__}")
    path = cluster_hocon_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = parse_hocon_file(path) if path.is_file() else {}
    existing[root] = value
    text = _hocon_text(existing)
    fd, tmp = tempfile.mkstemp(prefix=".cluster.hocon.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path
