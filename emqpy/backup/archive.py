"""Data backup files (EMQX's emqx_mgmt_data_backup): export, import, and the files kept in
``<data_dir>/backup/``.

An archive ``<name>.tar.gz`` holds, under the one folder ``<name>/`` (as EMQX's):

- ``META.hocon``: ``edition`` and ``version`` (emqpy writes EMQX's ``ce`` and 5.8.1, the
  release it stands in for, plus ``emqpy_version``); an import refuses a newer minor version
  and an Enterprise backup, as EMQX does;
- ``cluster.hocon``: the cluster config — the data dir's ``configs/cluster.hocon`` (changes
  made at run time) with the roots features keep themselves (authentication, authorization,
  connectors, actions, sources, rule_engine) from those features;
- ``tables/<table>.json``: emqpy's tables, each a JSON list of rows from the feature that owns
  it (``Feature.backup_tables``). EMQX writes its tables as Mnesia backups under
  ``mnesia/<table>``: emqpy reads those (``erlang.py``) through the converters the features
  declare (``BackupTable.emqx_tables``) and names the tables no feature takes as not read.

Importing merges: config roots as EMQX merges them, table rows replacing rows with the same
key. Errors in single roots or tables do not stop the rest; they are returned, and the API
answers them as EMQX does (400 listing them).
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import tarfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from emqpy.config import ConfigError
from emqpy.config.loader import cluster_hocon_path, parse_hocon_file, parse_hocon_string
from emqpy.feature import BackupConfig, BackupTable
from emqpy.features import manifests
from emqpy.timefmt import rfc3339

log = logging.getLogger("emqpy.backup")

BACKUP_DIR = "backup"
SUFFIX = ".tar.gz"
META = "META.hocon"
CLUSTER_HOCON = "cluster.hocon"
TABLES_DIR = "tables"
EMQX_TABLES_DIR = "mnesia"
EDITION, VERSION = "ce", "5.8.1"
# Roots imported as they are (merged onto the running ones): EMQX's generic list
# (emqx_mgmt_data_backup ?CONF_KEYS) as far as emqpy has them, and the listeners
# (emqx_mgmt_listeners_conf). Roots a feature keeps itself go through its BackupConfig.
GENERIC_ROOTS = ("retainer", "mqtt", "alarm", "sysmon", "sys_topics", "log", "prometheus",
                 "flapping_detect", "broker", "force_gc", "force_shutdown", "listeners")

Progress = Callable[[str], None]


class BackupError(Exception):
    """A refused operation; the message is EMQX's (``format_error``)."""


class NotFound(BackupError):
    def __init__(self):
        super().__init__("backup file not found")


@dataclass
class ImportResult:
    db_errors: dict[str, str]
    config_errors: dict[str, str]
    not_read: list[str]  # parts of the archive emqpy cannot read (an EMQX backup's tables)

    @property
    def ok(self) -> bool:
        return not self.db_errors and not self.config_errors

    def message(self) -> str:
        """EMQX's 400 message: one line per failed table, then per config path."""
        lines = [f"[error] Failed to import built-in database table: {t}, reason: {e}\n"
                 for t, e in self.db_errors.items()]
        lines += [f"Failed to import the following config path: {p}, reason: {e}\n"
                  for p, e in self.config_errors.items()]
        return "".join(lines)


# -- what the features offer ----------------------------------------------------------------

def backup_tables() -> list[BackupTable]:
    return [t for f in manifests() for t in f.backup_tables]


def backup_configs() -> list[BackupConfig]:
    return [f.backup_config for f in manifests() if f.backup_config is not None]


def table_set_names() -> list[str]:
    return sorted({t.table_set for t in backup_tables()})


# -- files ----------------------------------------------------------------------------------

def backup_dir(broker) -> Path:
    d = Path(broker.data_dir) / BACKUP_DIR
    d.mkdir(parents=True, exist_ok=True)
    return d


def check_name(filename: str) -> str:
    """A backup's file name: a plain name ending in .tar.gz (EMQX's bad_backup_name)."""
    if not isinstance(filename, str) or not filename.endswith(SUFFIX) or len(filename) <= len(
            SUFFIX) or os.path.basename(filename) != filename or filename in (".", ".."):
        raise BackupError("invalid backup name: file name must have .tar.gz extension")
    return filename


def file_info(broker, path: Path) -> dict:
    st = path.stat()
    return {"filename": path.name, "size": st.st_size, "created_at": rfc3339(st.st_ctime),
            "created_at_sec": int(st.st_ctime), "node": broker.node_name}


def list_files(broker) -> list[dict]:
    """Every backup file, newest first (ties: name descending), as EMQX lists them."""
    infos = []
    for p in backup_dir(broker).glob("*" + SUFFIX):
        try:
            infos.append(file_info(broker, p))
        except OSError:  # deleted meanwhile
            continue
    infos.sort(key=lambda i: (i["created_at_sec"], i["filename"]), reverse=True)
    return infos


def read_file(broker, filename: str) -> bytes:
    path = backup_dir(broker) / check_name(filename)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFound() from None


def delete_file(broker, filename: str) -> None:
    path = backup_dir(broker) / check_name(filename)
    try:
        path.unlink()
    except FileNotFoundError:
        raise NotFound() from None


def upload(broker, filename: str, content: bytes) -> None:
    """Keep an uploaded backup after checking it can be imported (EMQX checks the archive's
    layout, META.hocon and cluster.hocon); a bad one is not kept."""
    check_name(filename)
    path = backup_dir(broker) / filename
    if path.exists():
        raise BackupError(f'Backup file "{filename}" already exists')
    parsed = read_archive(content, filename)  # raises BackupError
    parse_cluster_hocon(parsed)
    tmp = path.with_name(f".{filename}.upload")
    tmp.write_bytes(content)
    os.replace(tmp, path)


# -- reading an archive ---------------------------------------------------------------------

def _check_version(meta: dict) -> None:
    edition, version = meta.get("edition"), meta.get("version")
    if edition not in ("ce", "ee"):
        raise BackupError("invalid backup archive content: wrong EMQX edition value in "
                          "META.hocon")
    if edition == "ee":
        raise BackupError("importing EMQX Enterprise data backup to EMQX is not allowed")
    m = re.match(r"^(\d+)\.(\d+)", str(version or ""))
    if m is None:
        raise BackupError("invalid backup archive content: wrong EMQX version value in "
                          "META.hocon")
    ours = tuple(int(x) for x in VERSION.split(".")[:2])
    major, minor = int(m.group(1)), int(m.group(2))
    if major > ours[0] or minor > ours[1]:  # (EMQX's test, minor compared on its own)
        raise BackupError(f'[warning] Backup version "{version}" is newer than EMQX version '
                          f'"{VERSION}", import is not allowed.\n')


def read_archive(content: bytes, filename: str) -> dict[str, bytes]:
    """The archive's regular files by their path under its folder (``cluster.hocon``,
    ``tables/banned.json``, ...), read in memory: nothing is extracted to disk. BackupError
    for what EMQX refuses (another folder, no META.hocon, an unsupported version)."""
    folder = filename[:-len(SUFFIX)]
    try:
        tar = tarfile.open(fileobj=io.BytesIO(content), mode="r:gz")
        members = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BackupError(f"invalid backup archive: {e}") from None
    files: dict[str, bytes] = {}
    with tar:
        for m in members:
            parts = m.name.replace("\\", "/").split("/")
            if parts[0] != folder or ".." in parts or m.name.startswith("/"):
                raise BackupError("invalid backup archive content: all files in the archive "
                                  "must be under <backup name> directory")
            if m.isfile() and len(parts) > 1:
                try:
                    files["/".join(p for p in parts[1:] if p)] = tar.extractfile(m).read()
                except (tarfile.TarError, OSError, EOFError) as e:
                    raise BackupError(f"invalid backup archive: {e}") from None
    if META not in files:
        raise BackupError("invalid backup archive file: missing META.hocon")
    try:
        meta = parse_hocon_string(files[META].decode("utf-8"))
    except (ConfigError, UnicodeDecodeError):
        raise BackupError("invalid backup archive file: missing META.hocon") from None
    _check_version(meta)
    return files


def parse_cluster_hocon(files: dict[str, bytes]) -> dict:
    raw = files.get(CLUSTER_HOCON)
    if raw is None:
        return {}  # (a backup may have no config, as in EMQX)
    try:
        conf = parse_hocon_string(raw.decode("utf-8"))
    except (ConfigError, UnicodeDecodeError) as e:
        raise BackupError(f"invalid cluster.hocon: {e}") from None
    if not isinstance(conf, dict):
        raise BackupError("invalid cluster.hocon: an object is expected")
    return conf


# -- export ---------------------------------------------------------------------------------

def new_name(now: float) -> str:
    """EMQX's name: emqx-export-<local date and time, to the millisecond>.tar.gz."""
    t = datetime.fromtimestamp(now)
    return f"emqx-export-{t:%Y-%m-%d-%H-%M-%S}.{int(now * 1000) % 1000:03d}"


def cluster_config(broker, root_keys: list[str] | None = None) -> dict:
    """The cluster config a backup holds: the saved runtime changes, with the roots that
    features keep themselves as those features give them."""
    path = cluster_hocon_path(broker.data_dir)
    conf = parse_hocon_file(path) if path.is_file() else {}
    for bc in backup_configs():
        conf.update(bc.export(broker))
    if root_keys is not None:
        wanted = set(root_keys)
        conf = {k: v for k, v in conf.items() if k in wanted}
    return conf


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(mtime), 0o644
    tar.addfile(info, io.BytesIO(data))


def _write_archive(path: Path, folder: str, files: dict[str, bytes], now: float) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            for name, data in files.items():
                _tar_add(tar, f"{folder}/{name}", data, now)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


async def export(broker, *, table_sets: list[str] | None = None,
                 root_keys: list[str] | None = None, progress: Progress | None = None) -> dict:
    """Write a new backup file; returns its info (EMQX's backup_file_info)."""
    from emqpy.mgmt.configs_api import to_hocon  # (EMQX's hocon_pp look)
    say = progress or (lambda line: None)
    tables = backup_tables()
    if table_sets is not None:
        bad = sorted(set(table_sets) - {t.table_set for t in tables})
        if bad:
            raise BackupError("Invalid table sets: " + ", ".join(bad))
        tables = [t for t in tables if t.table_set in set(table_sets)]
    now = time.time()
    folder = new_name(now)
    path = backup_dir(broker) / (folder + SUFFIX)
    say(f"Exporting data to {str(path)!r}...")
    files = {META: "".join(f"{k} = {json.dumps(v)}\n" for k, v in (
        ("edition", EDITION), ("version", VERSION), ("emqpy_version", _emqpy_version()))).encode()}
    say("Exporting cluster configuration...")
    files[CLUSTER_HOCON] = to_hocon(cluster_config(broker, root_keys)).encode()
    say("Exporting built-in database...")
    for t in tables:
        say(f"Exporting {t.name} database table...")
        if t.threaded:
            rows = await asyncio.to_thread(lambda: list(t.export(broker)))
        else:
            rows = await _take_in_chunks(t.export(broker))
        files[f"{TABLES_DIR}/{t.name}.json"] = await asyncio.to_thread(_json_bytes, rows)
    await asyncio.to_thread(_write_archive, path, folder, files, now)
    return file_info(broker, path)


# Rows handled on the event loop between two of its turns: a backup may hold a million
# retained messages, and the API and the MQTT clients share the loop.
CHUNK = 1000


async def _take_in_chunks(rows) -> list[dict]:
    out: list[dict] = []
    for row in rows:
        out.append(row)
        if len(out) % CHUNK == 0:
            await asyncio.sleep(0)
    return out


def _json_bytes(rows: list[dict]) -> bytes:
    return json.dumps(rows, ensure_ascii=False).encode()


def _emqpy_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("emqpy")
    except PackageNotFoundError:
        return "unknown"


# -- import ---------------------------------------------------------------------------------

def find_file(broker, filename: str) -> Path:
    """EMQX's lookup: a path to an existing file, else a plain name in the backup folder."""
    if not isinstance(filename, str) or not filename:
        raise NotFound()
    p = Path(filename)
    if p.is_file() and (p.is_absolute() or os.path.basename(filename) != filename):
        return p
    if os.path.basename(filename) != filename:
        raise NotFound()
    path = backup_dir(broker) / filename
    if not path.is_file():
        raise NotFound()
    return path


async def import_file(broker, filename: str, progress: Progress | None = None) -> ImportResult:
    """Import a backup file (a name in the backup folder, or a path); BackupError when the file
    cannot be imported at all, else what could not be imported in the result."""
    say = progress or (lambda line: None)
    path = find_file(broker, filename)
    check_name(path.name)
    say(f"Importing data from {str(path)!r}...")
    content = await asyncio.to_thread(path.read_bytes)
    return await import_archive(broker, content, path.name, say)


async def import_archive(broker, content: bytes, name: str, progress: Progress | None = None,
                         skip_tables: frozenset = frozenset()) -> ImportResult:
    """Import a backup's content (`name` its file name); the tables named in `skip_tables`
    are left out (a cluster's other nodes, which get retained messages another way)."""
    say = progress or (lambda line: None)
    files = await asyncio.to_thread(read_archive, content, name)
    conf = parse_cluster_hocon(files)
    config_errors = await import_config(broker, conf, say) if conf else {}
    if not conf:
        say("No cluster configuration to be imported.")
    db_errors = await import_tables(broker, files, say, skip_tables)
    emqx_errors, not_read = await import_emqx_tables(broker, files, say, skip_tables)
    db_errors.update(emqx_errors)
    for table in not_read:
        log.warning("backup %s: %s is not a table emqpy reads: not imported", name, table)
        say(f"[warning] Not imported: {table}.")
    return ImportResult(db_errors, config_errors, not_read)


def _problem(e: Exception) -> str:
    return str(e) or type(e).__name__


async def import_config(broker, conf: dict, say: Progress) -> dict[str, str]:
    from emqpy.mgmt.configs_api import update_roots
    say("Importing cluster configuration...")
    errors: dict[str, str] = {}
    for root in GENERIC_ROOTS:
        if root in conf:
            try:
                await update_roots(broker, {root: conf[root]}, "merge")
            except Exception as e:  # ConfigError, a listener that cannot start, ...
                errors[root] = _problem(e)
    claimed = set(GENERIC_ROOTS)
    for bc in backup_configs():
        claimed.update(bc.roots)
        part = {r: conf[r] for r in bc.roots if r in conf}
        if part:
            errors.update(await bc.restore(broker, part))
    ignored = sorted(set(conf) - claimed)
    if ignored:
        log.info("backup: config roots not imported (not importable or not in emqpy): %s",
                 ", ".join(ignored))
    for p, e in errors.items():
        say(f"Failed to import the following config path: {p}, reason: {e}")
    return errors


_TABLE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError)


async def restore_table(broker, table: BackupTable, rows: list) -> None:
    """Restore rows into a table: whole in a thread (a ``threaded`` table), else a chunk per
    turn of the event loop."""
    if table.threaded:
        await asyncio.to_thread(table.restore, broker, rows)
        if table.after_restore is not None:
            table.after_restore(broker)
        return
    for start in range(0, len(rows), CHUNK):
        table.restore(broker, rows[start:start + CHUNK])
        await asyncio.sleep(0)


def _emqx_rows(data: bytes, name: str, convert) -> list[dict]:
    from emqpy.backup import erlang
    emqx_name, records = erlang.mnesia_records(data)
    if emqx_name != name:
        raise ValueError(f"the file holds table {emqx_name}")
    return convert(records)


async def import_emqx_tables(broker, files: dict[str, bytes], say: Progress,
                             skip_tables: frozenset = frozenset()
                             ) -> tuple[dict[str, str], list[str]]:
    """The Mnesia tables of an EMQX backup, each through the converter a feature declares
    for it (``BackupTable.emqx_tables``; decoded and converted in a thread); returns the
    errors and the files no feature reads (an EMQX table emqpy has no feature for, such as
    emqx_psk)."""
    from emqpy.backup import erlang
    takers = {name: (t, convert) for t in backup_tables()
              for name, convert in t.emqx_tables.items()}
    errors: dict[str, str] = {}
    not_read = []
    for path in sorted(n for n in files if n.startswith(EMQX_TABLES_DIR + "/")):
        name = path.split("/", 1)[1]
        if name not in takers:
            not_read.append(path)
            continue
        table, convert = takers[name]
        if table.name in skip_tables:
            continue
        say(f"Importing {name} database table...")
        try:
            rows = await asyncio.to_thread(_emqx_rows, files[path], name, convert)
            await restore_table(broker, table, rows)
        except (erlang.TermError, *_TABLE_ERRORS) as e:
            errors[name] = _problem(e)
            say(f"[error] Failed to import built-in database table: {name}, "
                f"reason: {_problem(e)}")
    return errors, not_read


def _json_rows(data: bytes) -> list:
    rows = json.loads(data)
    if not isinstance(rows, list):
        raise ValueError("a JSON list of rows is expected")
    return rows


async def import_tables(broker, files: dict[str, bytes], say: Progress,
                        skip_tables: frozenset = frozenset()) -> dict[str, str]:
    say("Importing built-in database...")
    errors: dict[str, str] = {}
    for t in backup_tables():
        if t.name in skip_tables:
            continue
        data = files.get(f"{TABLES_DIR}/{t.name}.json")
        if data is None:
            say(f"No backup file for {t.name} database table...")
            continue
        say(f"Importing {t.name} database table...")
        try:
            await restore_table(broker, t, await asyncio.to_thread(_json_rows, data))
        except _TABLE_ERRORS as e:
            errors[t.name] = _problem(e)
            say(f"[error] Failed to import built-in database table: {t.name}, "
                f"reason: {_problem(e)}")
    return errors
