"""Data backup (EMQX's emqx_mgmt_data_backup): export the cluster config and the features'
tables to a ``.tar.gz`` in ``<data_dir>/backup/``, list, upload, download, delete and import
such files (``archive.py``; REST API in ``api.py``, ``emqpy ctl data`` in emqpy/ctl.py).

It owns no data: each feature offers its tables and the config roots it keeps itself in its
manifest (``Feature.backup_tables``, ``Feature.backup_config``).
"""
from emqpy.feature import Feature

FEATURE = Feature("backup", routers=("emqpy.backup.api",))
