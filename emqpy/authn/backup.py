"""Authentication in a data backup: the built-in database's users (EMQX's table set
``builtin_authn``: password and SCRAM users, as stored hashes) and the ``authentication``
config root (the chain, which emqpy keeps in its store rather than in cluster.hocon)."""
from __future__ import annotations

import time

from emqpy.authn.config import ConfigInvalid
from emqpy.authn.core import authenticator_id

_COLUMNS = ("grp", "user_id", "password_hash", "salt", "is_superuser", "created_at")


def export_users(broker) -> list[dict]:
    return broker.store.dump_rows("authn_users", _COLUMNS, order="grp, created_at, user_id")


def restore_users(broker, rows: list) -> int:
    return broker.store.replace_rows("authn_users", _COLUMNS, rows,
                                     defaults={"salt": "", "is_superuser": 0},
                                     required=("grp", "user_id", "password_hash"))


def export_config(broker) -> dict:
    return {"authentication": broker.authn.configs()}


async def restore_config(broker, roots: dict) -> dict:
    """EMQX's merge: each authenticator of the backup replaces the one with its id or is
    added at the end of the chain; the others stay."""
    chain = roots.get("authentication")
    if isinstance(chain, dict):  # EMQX accepts a single authenticator for the root
        chain = [chain]
    if not isinstance(chain, list):
        return {"authentication": "a list of authenticators is expected"}
    svc, errors = broker.authn, {}
    for raw in chain:
        try:
            aid = authenticator_id(raw)
        except (KeyError, TypeError, AttributeError):
            errors["authentication"] = f"not an authenticator: {raw!r}"
            continue
        try:
            if svc.chain.get(aid) is not None:
                await svc.update(aid, raw)
            else:
                await svc.create(raw)
        except (ConfigInvalid, ValueError) as e:
            errors[f"authentication.{aid}"] = str(e)
    return errors


# -- EMQX's tables: users of the global chain ('mqtt:global'; emqpy has no per-listener one) ----

def _global(records: list[dict]):
    from emqpy.backup.erlang import text
    for r in records:
        group, user_id = r["user_id"]
        if str(group) == "mqtt:global":
            yield r, text(user_id)


def users_from_emqx(records: list[dict]) -> list[dict]:
    """emqx_authn_mnesia: hashes and salts as EMQX stores them (emqpy checks them alike)."""
    from emqpy.backup.erlang import text
    now = time.time()
    return [{"grp": "password_based:built_in_database", "user_id": uid,
             "password_hash": text(r["password_hash"]), "salt": text(r.get("salt")),
             "is_superuser": int(r.get("is_superuser") is True), "created_at": now}
            for r, uid in _global(records)]


def scram_users_from_emqx(records: list[dict]) -> list[dict]:
    """emqx_authn_scram_mnesia (emqx_enhanced_authn_scram_mnesia before 5.1): the raw keys
    and salt, stored by emqpy in hex."""
    now = time.time()
    return [{"grp": "scram:built_in_database", "user_id": uid,
             "password_hash": f"{r['stored_key'].hex()}:{r['server_key'].hex()}",
             "salt": r["salt"].hex(), "is_superuser": int(r.get("is_superuser") is True),
             "created_at": now}
            for r, uid in _global(records)]
