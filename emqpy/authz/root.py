"""The `authorization` config root through `PUT /configs` (EMQX's emqx_conf_cli load with its
authz rules): the authz feature stays the owner of its settings and sources, kept in the store.

* `merge` (the default): the settings given are deep-merged onto the running ones; each source
  given is deep-merged onto the one of its type, or added at the end; the others stay (EMQX's
  emqx_authz merge_sources).
* `replace`: the settings given (EMQX's defaults for the rest) and exactly the sources given
  (none when `sources` is left out); a source left out is removed as
  `DELETE /authorization/sources/{type}` removes it.

Everything is checked before anything changes; a source whose config is unchanged keeps running
untouched, a changed one is rebuilt and keeps its metrics.
"""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from emqpy.authz import DEFAULT_SETTINGS, Invalid, SourceMetrics, build_source, validate_settings
from emqpy.config import ConfigError
from emqpy.config.features import Authorization
from emqpy.config.schema import config_error, deep_merge
from emqpy.config.secrets import unmask

ROOT = "authorization"


def view(broker) -> dict | None:
    """The running settings and sources (secrets are masked by the caller); None when the
    feature does not run."""
    svc = broker.authz
    if svc is None:
        return None
    return dict(svc.settings, sources=[dict(s.cfg) for s in svc.sources])


def plan(broker, value: Any, mode: str = "merge") -> tuple[dict, list]:
    """(settings, source objects not started yet) that `value` makes; ConfigError names the
    bad key. Sources whose config does not change are the running objects."""
    svc = broker.authz
    if svc is None:
        raise ConfigError(ROOT, "authorization is not running")
    if not isinstance(value, dict):
        raise ConfigError(ROOT, "an object is expected")
    sources = value.get("sources", [] if mode == "replace" else None)
    if sources is not None and not isinstance(sources, list):
        raise ConfigError(f"{ROOT}.sources", "a list of sources is expected")
    current = {s.type: s for s in svc.sources}
    given: dict[str, dict] = {}
    for i, raw in enumerate(sources or (), 1):
        t = raw.get("type") if isinstance(raw, dict) else None
        if not isinstance(t, str):
            raise ConfigError(f"{ROOT}.sources.{i}", "a source object with a type is expected")
        if t in given:
            raise ConfigError(f"{ROOT}.sources.{i}", f"source {t} is given twice")
        given[t] = unmask(raw, current[t].cfg) if t in current else raw  # "******" kept
    change = {k: v for k, v in value.items() if k != "sources"}
    base = svc.settings if mode == "merge" else DEFAULT_SETTINGS
    try:
        Authorization.model_validate(deep_merge(base, change))
    except ValidationError as e:
        raise config_error(e, (ROOT,)) from None
    settings = validate_settings(change, base)
    if mode == "merge":
        configs = [deep_merge(s.cfg, given.pop(t)) if t in given else s.cfg
                   for t, s in current.items()] + list(given.values())
    else:
        configs = list(given.values())
    built = []
    for cfg in configs:
        prev = current.get(cfg.get("type"))
        if prev is not None and prev.cfg == cfg:
            built.append(prev)
            continue
        try:
            built.append(build_source(broker, cfg))
        except Invalid as e:
            raise ConfigError(f"{ROOT}.sources.{cfg.get('type')}", str(e)) from None
    return settings, built


async def apply(broker, planned: tuple[dict, list]) -> None:
    """Make the settings and sources of `plan` the running ones and persist them."""
    svc = broker.authz
    settings, sources = planned
    old = list(svc.sources)
    for src in sources:
        if src not in old:
            getattr(src, "commit", lambda: None)()  # (a file source writes its rules)
    svc.settings = settings
    svc.sources[:] = sources
    svc.metrics = {s.type: svc.metrics.get(s.type) or SourceMetrics() for s in sources}
    svc.apply()  # (cleans the cache and hooks the broker as the sources need)
    svc.persist()
    types = {s.type for s in sources}
    for src in old:
        if src in sources:
            continue
        if src.type in types:
            await src.close()  # replaced by a new instance
        else:
            await src.destroy()  # removed
