"""The dashboard's tables in a data backup: users (EMQX's table set ``dashboard_users``) and
API keys (``api_keys``). Secrets travel as the stored hashes; login tokens are not backed up,
nor the key `emqpy ctl` made for itself (its secret file belongs to the data dir)."""
from __future__ import annotations

import time

_USER_COLUMNS = ("username", "pwd_hash", "description", "created_at", "password_ts")
_KEY_COLUMNS = ("name", "api_key", "secret_hash", "created_at", "expired_at", "description",
                "enable", "source")


def _store(broker):
    broker.store.migrate("dashboard")  # the API server migrates it; an API-less node may not
    return broker.store


def export_users(broker) -> list[dict]:
    return _store(broker).dump_rows("dashboard_users", _USER_COLUMNS, order="username")


def export_api_keys(broker) -> list[dict]:
    return _store(broker).dump_rows("api_keys", _KEY_COLUMNS, "source != 'ctl'",
                                    "created_at, name")


def restore_users(broker, rows: list) -> int:
    store = _store(broker)
    before = {r["username"]: r["pwd_hash"] for r in
              store.dump_rows("dashboard_users", ("username", "pwd_hash"))}
    n = store.replace_rows(
        "dashboard_users", _USER_COLUMNS, rows, defaults={"description": ""},
        required=("username", "pwd_hash", "created_at", "password_ts"))
    # a user whose password changed is logged out, as by a password change here
    for row in rows:
        name = row["username"]
        if name in before and before[name] != row["pwd_hash"]:
            store.execute("DELETE FROM dashboard_tokens WHERE username=?", (name,))
    return n


def export_tokens(broker) -> list[dict]:
    from emqpy.dashboard.admin import TOKEN_COLUMNS
    return _store(broker).dump_rows("dashboard_tokens", TOKEN_COLUMNS, order="created_at")


def restore_tokens(broker, rows: list) -> int:
    from emqpy.dashboard.admin import restore_token_rows
    return restore_token_rows(_store(broker), rows)


def restore_api_keys(broker, rows: list) -> int:
    return _store(broker).replace_rows(
        "api_keys", _KEY_COLUMNS, rows,
        defaults={"description": "", "enable": 1, "source": "api"},
        required=("name", "api_key", "secret_hash", "created_at"))


# -- EMQX's tables ----------------------------------------------------------------------------

def _emqx_hash(salted: bytes) -> str:
    """EMQX's dashboard hash (4 salt bytes, then SHA-256 of salt + secret) in the stored form
    admin.verify_secret reads."""
    from emqpy.dashboard.admin import emqx_sha256_hash
    if not isinstance(salted, bytes) or len(salted) != 36:
        raise ValueError("not an EMQX password hash")
    return emqx_sha256_hash(salted[:4], salted[4:])


def users_from_emqx(records: list[dict]) -> list[dict]:
    """EMQX's emqx_admin records (username, pwdhash, description, role, extra); the role,
    an Enterprise feature, is dropped."""
    from emqpy.backup.erlang import text
    now = time.time()
    return [{"username": text(r["username"]), "pwd_hash": _emqx_hash(r["pwdhash"]),
             "description": text(r.get("description")), "created_at": now, "password_ts": now}
            for r in records]


def api_keys_from_emqx(records: list[dict]) -> list[dict]:
    """EMQX's emqx_app records; the description is a field of its own or in ``extra``,
    depending on the release that wrote them."""
    from emqpy.backup.erlang import epoch, text
    out = []
    for r in records:
        extra = r.get("extra") if isinstance(r.get("extra"), dict) else {}
        desc = r.get("desc", extra.get("desc", b""))
        out.append({"name": text(r["name"]), "api_key": text(r["api_key"]),
                    "secret_hash": _emqx_hash(r["api_secret_hash"]),
                    "created_at": epoch(r.get("created_at")) or time.time(),
                    "expired_at": epoch(r.get("expired_at")), "description": text(desc),
                    "enable": 1 if r.get("enable", True) is True else 0, "source": "api"})
    return out
