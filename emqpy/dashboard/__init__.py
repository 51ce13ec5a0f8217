"""Dashboard users, API keys, login tokens and their REST API (``api.py``) and CLI (``cli.py``).

Its tables are migrated when the API server starts (``emqpy.api.server``); as an entry of
``emqpy.features`` it contributes routes (the API's, the web dashboard's ``web.py`` and the
dashboard's ``/schemas/{name}``, ``schema_api.py``) and its tables to the data backup
(``backup.py``)."""
from emqpy.dashboard import backup
from emqpy.feature import BackupTable, Feature

FEATURE = Feature("dashboard", routers=("emqpy.dashboard.api", "emqpy.dashboard.web",
                                        "emqpy.dashboard.schema_api"),
                  backup_tables=(
    BackupTable("dashboard_users", "dashboard_users", backup.export_users,
                backup.restore_users, emqx_tables={"emqx_admin": backup.users_from_emqx},
                threaded=True),
    BackupTable("api_keys", "api_keys", backup.export_api_keys, backup.restore_api_keys,
                emqx_tables={"emqx_app": backup.api_keys_from_emqx}, threaded=True)),
                  cluster_tables=(
    BackupTable("dashboard_tokens", "", backup.export_tokens, backup.restore_tokens,
                threaded=True),))
