"""Authorization in a data backup: the built-in database's rules (EMQX's table set
``builtin_authz``) and the ``authorization`` config root (kept in the store rather than in
cluster.hocon). A file source travels with its rules inline, as EMQX exports it, and is
written to the importing node's data dir."""
from __future__ import annotations

_COLUMNS = ("kind", "who", "rules", "created_at")


def export_rules(broker) -> list[dict]:
    return broker.store.dump_rows("authz_rules", _COLUMNS, order="created_at, kind, who")


def restore_rules(broker, rows: list) -> int:
    n = broker.store.replace_rows("authz_rules", _COLUMNS, rows,
                                  required=("kind", "who", "rules"))
    src = broker.authz.find("built_in_database")
    if src is not None:
        src.load()  # recompile from the table
        broker.authz.clean_cache()
    return n


def _exported(src) -> dict:
    if src.type == "file":
        return {"type": "file", "enable": src.cfg.get("enable", True), "rules": src.text}
    return dict(src.cfg)


def export_config(broker) -> dict:
    svc = broker.authz
    return {"authorization": dict(svc.settings, sources=[_exported(s) for s in svc.sources])}


async def restore_config(broker, roots: dict) -> dict:
    """EMQX's merge: the backup's settings replace these, each of its sources replaces the
    one of its type or is added at the end; the others stay."""
    from emqpy.authz import Invalid
    raw = roots.get("authorization")
    if not isinstance(raw, dict):
        return {"authorization": "an object is expected"}
    svc, errors = broker.authz, {}
    settings = {k: v for k, v in raw.items() if k != "sources"}
    if settings:
        try:
            svc.update_settings(settings)
        except (Invalid, ValueError) as e:
            errors["authorization"] = str(e)
    for cfg in raw.get("sources") or []:
        t = cfg.get("type") if isinstance(cfg, dict) else None
        try:
            if t is not None and svc.find(t) is not None:
                await svc.update_source(t, cfg)
            else:
                await svc.add_source(cfg)
        except (Invalid, ValueError) as e:
            errors[f"authorization.sources.{t}"] = str(e)
    return errors
