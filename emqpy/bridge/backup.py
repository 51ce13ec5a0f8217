"""Data integration in a data backup: the ``connectors``, ``actions`` and ``sources`` roots.
Importing merges as EMQX does: each entry of the backup replaces the one of its type and name
or is created (connectors first: actions and sources need them); the others stay."""
from __future__ import annotations

from emqpy.bridge.errors import Invalid, NotFound

ROOTS = ("connectors", "actions", "sources")


def export_config(broker) -> dict:
    return {root: broker.config.dump(root, hidden=True) for root in ROOTS}


async def restore_config(broker, roots: dict) -> dict:
    svc, errors = broker.bridges, {}
    for root in ROOTS:
        entries = roots.get(root)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            errors[root] = "an object of types is expected"
            continue
        kind = svc.kinds[root]
        for etype, named in entries.items():
            if not isinstance(named, dict):
                errors[f"{root}.{etype}"] = "an object of names is expected"
                continue
            for name, body in named.items():
                try:
                    try:
                        kind.get(etype, name)
                    except NotFound:
                        await kind.create(etype, name, body)
                    else:
                        await kind.update(etype, name, body)
                except (Invalid, ValueError, LookupError) as e:
                    errors[f"{root}.{etype}.{name}"] = str(e)
    return errors
