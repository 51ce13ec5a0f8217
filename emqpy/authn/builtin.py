"""`password_based:built_in_database`: users in emqpy's SQLite store, EMQX-compatible hashes."""
from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import time
from pathlib import Path

from emqpy.authn import hashing
from emqpy.authn.core import Authenticator, credentials
from emqpy.mqtt import reason_codes as rc
from emqpy.store import register_migrations

log = logging.getLogger("emqpy.authn")

COMPONENT = "authn"
register_migrations(COMPONENT, [
    "CREATE TABLE authn_users (grp TEXT NOT NULL, user_id TEXT NOT NULL, "
    "password_hash TEXT NOT NULL, salt TEXT NOT NULL DEFAULT '', "
    "is_superuser INTEGER NOT NULL DEFAULT 0, created_at REAL, PRIMARY KEY (grp, user_id))",
])


class UserError(ValueError):
    """Bad user data from the API (400)."""


class BuiltinDB(Authenticator):
    def __init__(self, broker, cfg: dict):
        super().__init__(broker, cfg)
        self.alg = cfg["password_hash_algorithm"]
        self.by = cfg.get("user_id_type", "username")
        self.group = self.id  # one built-in database authenticator per chain

    @property
    def store(self):
        return self.broker.store

    # -- authentication -------------------------------------------------------------------

    def check(self, ch, pkt):
        username, password = credentials(pkt)
        user_id = username if self.by == "username" else ch.clientid
        if not user_id:
            return None
        row = self.store.query_one(
            "SELECT password_hash, salt, is_superuser FROM authn_users WHERE grp=? AND user_id=?",
            (self.group, user_id))
        if row is None:
            return None
        if password is None:
            return rc.BAD_USERNAME_OR_PASSWORD
        args = (self.alg, password, row["salt"], row["password_hash"])
        result = {"is_superuser": bool(row["is_superuser"])}
        if hashing.is_slow(self.alg):
            return self._check_slow(args, result)
        return result if hashing.check_password(*args) else rc.BAD_USERNAME_OR_PASSWORD

    async def _check_slow(self, args, result):
        ok = await asyncio.to_thread(hashing.check_password, *args)
        return result if ok else rc.BAD_USERNAME_OR_PASSWORD

    async def destroy(self) -> None:
        self.store.execute("DELETE FROM authn_users WHERE grp=?", (self.group,))

    # -- users ------------------------------------------------------------------------------

    @staticmethod
    def _user(row) -> dict:
        return {"user_id": row["user_id"], "is_superuser": bool(row["is_superuser"])}

    def get_user(self, user_id: str) -> dict | None:
        row = self.store.query_one("SELECT user_id, is_superuser FROM authn_users "
                                   "WHERE grp=? AND user_id=?", (self.group, user_id))
        return self._user(row) if row else None

    def list_users(self, offset: int, limit: int, like: str | None = None,
                   is_superuser: bool | None = None) -> tuple[list[dict], int]:
        where, params = "grp=?", [self.group]
        if like:
            where += " AND instr(user_id, ?) > 0"
            params.append(like)
        if is_superuser is not None:
            where += " AND is_superuser=?"
            params.append(int(is_superuser))
        total = self.store.query_one(f"SELECT count(*) AS n FROM authn_users WHERE {where}",
                                     params)["n"]
        if offset >= total:  # past the end (an offset SQLite's 64 bits may not even hold)
            return [], total
        rows = self.store.query(f"SELECT user_id, is_superuser FROM authn_users WHERE {where} "
                                "ORDER BY created_at, user_id LIMIT ? OFFSET ?",
                                [*params, limit, offset])
        return [self._user(r) for r in rows], total

    def _hash(self, password: str) -> tuple[str, str]:
        salt = hashing.gen_salt(self.alg)
        try:
            return hashing.hash_password(self.alg, password, salt), salt
        except ValueError as e:  # e.g. a pbkdf2 mac_fun this OpenSSL lacks
            raise UserError(f"cannot hash with {self.alg['name']}: {e}") from None

    def add_user(self, user_id: str, password: str, is_superuser: bool) -> dict:
        if not user_id:
            raise UserError("user_id must not be empty")
        ph, salt = self._hash(password)
        n = self.store.execute(
            "INSERT INTO authn_users (grp, user_id, password_hash, salt, is_superuser, "
            "created_at) VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (self.group, user_id, ph, salt, int(is_superuser), time.time()))
        if not n:
            raise FileExistsError(user_id)
        return {"user_id": user_id, "is_superuser": bool(is_superuser)}

    def update_user(self, user_id: str, password: str | None,
                    is_superuser: bool | None) -> dict | None:
        if self.get_user(user_id) is None:
            return None
        with self.store.transaction() as conn:
            if password is not None:
                ph, salt = self._hash(password)
                conn.execute("UPDATE authn_users SET password_hash=?, salt=? "
                             "WHERE grp=? AND user_id=?", (ph, salt, self.group, user_id))
            if is_superuser is not None:
                conn.execute("UPDATE authn_users SET is_superuser=? WHERE grp=? AND user_id=?",
                             (int(is_superuser), self.group, user_id))
        return self.get_user(user_id)

    def delete_user(self, user_id: str) -> bool:
        return bool(self.store.execute("DELETE FROM authn_users WHERE grp=? AND user_id=?",
                                       (self.group, user_id)))

    # -- import (EMQX's CSV and JSON export formats) ----------------------------------------

    def parse_users(self, kind: str, filename: str | None, data: bytes | list) -> list[tuple]:
        """Rows for the users table from EMQX's import formats: `kind` "hash" (password_hash,
        salt) or "plain" (password, hashed here); a list, or a .json/.csv file's bytes.
        UserError says what is wrong (nothing is taken from a file with a bad entry)."""
        if isinstance(data, list):
            records = data
        elif (filename or "").lower().endswith(".json"):
            try:
                records = json.loads(data)
            except ValueError as e:
                raise UserError(f"bad JSON file: {e}") from None
        elif (filename or "").lower().endswith(".csv"):
            try:
                records = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
            except (UnicodeDecodeError, csv.Error) as e:
                raise UserError(f"bad CSV file: {e}") from None
        else:
            raise UserError("unsupported file type: use a .csv or .json file")
        if not isinstance(records, list):
            raise UserError("a list of users is expected")
        rows = []
        for i, rec in enumerate(records, 1):
            if not isinstance(rec, dict) or not rec.get("user_id"):
                raise UserError(f"user {i}: user_id is required")
            sup = rec.get("is_superuser", False)
            if isinstance(sup, str):
                sup = sup.strip().lower() == "true"
            if kind == "hash":
                if not isinstance(rec.get("password_hash"), str):
                    raise UserError(f"user {i}: password_hash is required")
                ph, salt = rec["password_hash"], str(rec.get("salt") or "")
            else:
                if not isinstance(rec.get("password"), str):
                    raise UserError(f"user {i}: password is required")
                ph, salt = self._hash(rec["password"])
            rows.append((self.group, str(rec["user_id"]), ph, salt, int(bool(sup)), time.time()))
        return rows

    def import_users(self, kind: str, filename: str | None, data: bytes | list) -> int:
        """The API's import: users already there are overwritten; returns users written."""
        rows = self.parse_users(kind, filename, data)
        with self.store.transaction() as conn:
            conn.executemany(
                "INSERT INTO authn_users (grp, user_id, password_hash, salt, is_superuser, "
                "created_at) VALUES (?,?,?,?,?,?) ON CONFLICT(grp, user_id) DO UPDATE SET "
                "password_hash=excluded.password_hash, salt=excluded.salt, "
                "is_superuser=excluded.is_superuser", rows)
        return len(rows)

    # -- bootstrap_file ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.bootstrap()

    async def bootstrap(self) -> int:
        """EMQX's `bootstrap_file`, read each time the authenticator is created or started
        (so also at every broker start): its users that are not in the database yet are
        added; a user already there is left as it is (changed through the API, or removed
        from the file: the database wins). A file that cannot be read or parsed is logged
        and skipped: the authenticator works with the users it has. Returns users added."""
        path = self.cfg.get("bootstrap_file")
        if not path:
            return 0
        path = expand_path(path)
        kind = self.cfg.get("bootstrap_type", "plain")
        try:
            data = await asyncio.to_thread(Path(path).read_bytes)
        except OSError as e:
            level = logging.DEBUG if self.cfg["bootstrap_file"] == DEFAULT_BOOTSTRAP_FILE \
                else logging.WARNING  # (EMQX ships that file; emqpy installs may not have it)
            log.log(level, "authentication %s: cannot read bootstrap_file %s: %s", self.id,
                    path, e.strerror or e)
            return 0
        try:  # (hashing plain passwords may be slow: not in the event loop)
            rows = await asyncio.to_thread(self.parse_users, kind, path, data)
        except UserError as e:
            log.warning("authentication %s: bootstrap_file %s ignored: %s", self.id, path, e)
            return 0
        with self.store.transaction() as conn:
            added = sum(conn.execute(
                "INSERT INTO authn_users (grp, user_id, password_hash, salt, is_superuser, "
                "created_at) VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING", row).rowcount
                for row in rows)
        if added or rows:
            log.info("authentication %s: bootstrap_file %s: %d user(s) added, %d already "
                     "there kept as they are", self.id, path, added, len(rows) - added)
        return added


DEFAULT_BOOTSTRAP_FILE = "${EMQX_ETC_DIR}/auth-built-in-db-bootstrap.csv"


def expand_path(path: str) -> str:
    """A file name as EMQX's config writes it: `${EMQX_ETC_DIR}` is the environment variable
    (default `etc`, as the rest of emqpy resolves it), other `${VAR}`s the environment's."""
    path = path.replace("${EMQX_ETC_DIR}", os.environ.get("EMQX_ETC_DIR", "etc"))
    return os.path.expandvars(path)
