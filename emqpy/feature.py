"""A feature's manifest: what a package under emqpy/ plugs into a node.

Each feature package's ``__init__`` exposes ``FEATURE = Feature(...)``; the one list of feature
packages is ``emqpy.features.FEATURES``. The broker runs ``setup``/``teardown`` in that order
(teardown in reverse), the API app mounts ``routers`` in that order. Nothing else registers a
feature.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable


@dataclass(frozen=True)
class BackupTable:
    """A table a feature offers to the data backup (EMQX's emqx_db_backup behaviour).

    ``export(broker)`` gives the rows as JSON-able dicts (any iterable: the archive takes them
    in chunks, letting the event loop run between chunks, so iterate a snapshot, not a live
    dict); ``restore(broker, rows)`` merges them in (a row with the key of an existing one
    replaces it, the others stay: EMQX restores with ``keep_tables``) and returns how many it
    wrote, raising ValueError for bad rows; it is called once per chunk of the backup's rows.
    Both run on the broker's event loop, unless ``threaded``: a table kept only in the SQLite
    store (thread-safe) is exported and restored whole in a worker thread, and then
    ``after_restore(broker)``, if given, runs on the loop (to reload what the feature keeps in
    memory). ``table_set`` is EMQX's name for the group the table
    belongs to (``table_sets`` of ``POST /data/export``). ``emqx_tables`` maps the EMQX tables
    whose data this one takes (an EMQX backup's ``mnesia/<table>``) to a function turning
    their records ({field: value}, emqpy.backup.erlang's terms) into this table's rows."""
    name: str
    table_set: str
    export: Callable[[Any], list[dict]]
    restore: Callable[[Any, list[dict]], int]
    emqx_tables: dict[str, Callable[[list[dict]], list[dict]]] = field(default_factory=dict)
    threaded: bool = False
    after_restore: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class BackupConfig:
    """Config roots a feature keeps and applies itself (EMQX's emqx_config_backup behaviour).

    ``export(broker)`` returns ``{root: raw value}`` as it belongs in ``cluster.hocon``;
    ``await restore(broker, {root: raw value})`` merges an imported backup's roots in as EMQX
    does and returns ``{config path: error message}`` for what it could not import."""
    roots: tuple[str, ...]
    export: Callable[[Any], dict]
    restore: Callable[[Any, dict], Awaitable[dict]]


@dataclass(frozen=True)
class Feature:
    name: str
    # setup(broker): at broker start, once the store is open and before the listeners; sync,
    # or it returns an awaitable that the node awaits before the next feature (I/O at start).
    setup: Callable[[Any], Any] | None = None
    # await before_clients(broker): at broker start, once every feature is set up and the API
    # runs, before the MQTT listeners open (EMQX starts its listeners once its tables are
    # loaded: the cluster's replicated state catches up here, for a bounded time).
    before_clients: Callable[[Any], Awaitable[None]] | None = None
    # await teardown(broker): at broker stop, before the store closes.
    teardown: Callable[[Any], Awaitable[None]] | None = None
    # Modules whose ``router`` (paths relative to /api/v5) and ``root_router`` (paths outside
    # it) the API app mounts. Names, not modules: a broker without the API never imports FastAPI.
    routers: tuple[str, ...] = ()
    # What the feature adds to a data backup (emqpy/backup): its tables, and the config roots
    # it keeps itself rather than in cluster.hocon (or applies with work of its own).
    backup_tables: tuple[BackupTable, ...] = ()
    backup_config: BackupConfig | None = None
    # Tables a cluster replicates as rows (emqpy/cluster/replica.py) that are no part of a data
    # backup (login tokens); same shape as a backup table, whose table_set is unused.
    cluster_tables: tuple[BackupTable, ...] = ()
