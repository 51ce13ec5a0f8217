"""The dashboard's tables in a data backup: users (EMQX's table set ``dashboard_users``) and
API keys (``api_keys``). Secrets travel as the stored hashes; login tokens are not backed up,
nor the key `emqpy ctl` made for itself (its secret file belongs to the data dir)."""
from __future__ import annotations

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
    return _store(broker).replace_rows(
        "dashboard_users", _USER_COLUMNS, rows, defaults={"description": ""},
        required=("username", "pwd_hash", "created_at", "password_ts"))


def restore_api_keys(broker, rows: list) -> int:
    return _store(broker).replace_rows(
        "api_keys", _KEY_COLUMNS, rows,
        defaults={"description": "", "enable": 1, "source": "api"},
        required=("name", "api_key", "secret_hash", "created_at"))
