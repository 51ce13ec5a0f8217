"""The `authentication` config root through `PUT /configs` (EMQX's emqx_conf_cli load with its
authn rules): the authn feature stays the owner of the chain, which it keeps in the store.

* `merge` (the default): each authenticator given is deep-merged onto the one with its id,
  or added at the end of the chain; the others stay (EMQX's merge_authenticators).
* `replace`: the chain becomes the list given; an authenticator left out is removed as
  `DELETE /authentication/{id}` removes it (a built-in database loses its users, as in EMQX).

Everything is checked before anything changes; an authenticator whose config is unchanged keeps
running untouched, a changed one is rebuilt and keeps its metrics.
"""
from __future__ import annotations

from typing import Any

from emqpy.authn import build
from emqpy.authn.config import ConfigInvalid, validate
from emqpy.authn.core import authenticator_id
from emqpy.config import ConfigError
from emqpy.config.schema import deep_merge
from emqpy.config.secrets import unmask

ROOT = "authentication"


def view(broker) -> list[dict] | None:
    """The running chain's configs (secrets are masked by the caller); None when the feature
    does not run."""
    svc = broker.authn
    return None if svc is None else [dict(a.cfg) for a in svc.chain.authenticators]


def _entry_id(raw: Any, i: int) -> str:
    if not isinstance(raw, dict) or not raw.get("mechanism"):
        raise ConfigError(f"{ROOT}.{i}", "an authenticator object with a mechanism is expected")
    return authenticator_id(raw)


def plan(broker, value: Any, mode: str = "merge") -> list[dict]:
    """The validated chain `value` makes (ConfigError naming the entry if it is bad)."""
    if broker.authn is None:
        raise ConfigError(ROOT, "authentication is not running")
    if isinstance(value, dict):  # EMQX takes a single authenticator for the list
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(ROOT, "a list of authenticators is expected")
    current = {a.id: a.cfg for a in broker.authn.chain.authenticators}
    given: dict[str, dict] = {}
    for i, raw in enumerate(value, 1):
        aid = _entry_id(raw, i)
        if aid in given:
            raise ConfigError(f"{ROOT}.{i}", f"authenticator {aid} is given twice")
        given[aid] = unmask(raw, current[aid]) if aid in current else raw  # "******" kept
    if mode == "merge":
        chain = [deep_merge(cfg, given.pop(aid)) if aid in given else cfg
                 for aid, cfg in current.items()] + list(given.values())
    else:
        chain = list(given.values())
    out = []
    for raw in chain:
        try:
            out.append(validate(raw))
        except ConfigInvalid as e:
            raise ConfigError(f"{ROOT}.{authenticator_id(raw)}", str(e)) from None
    return out


async def apply(broker, chain: list[dict]) -> None:
    """Make `chain` (from `plan`) the running one and persist it."""
    svc = broker.authn
    old = {a.id: a for a in svc.chain.authenticators}
    new, started = [], []
    for cfg in chain:
        aid = authenticator_id(cfg)
        prev = old.get(aid)
        if prev is not None and prev.cfg == cfg:
            new.append(prev)
            continue
        try:
            a = build(broker, cfg)
            await a.start()
        except Exception as e:  # a key that does not load, a backend refused...
            for s in started:
                await s.close()
            raise ConfigError(f"{ROOT}.{aid}", str(e)) from None
        started.append(a)
        if prev is not None:
            a.metrics = prev.metrics
        new.append(a)
    svc.chain.authenticators[:] = new
    svc._persist()
    kept = {a.id for a in new}
    for aid, a in old.items():
        if a in new:
            continue
        if aid in kept:
            await a.close()  # replaced by a new instance: its data stays
        else:
            await a.destroy()  # removed from the chain
