"""Dashboard users, API keys and login tokens, kept in the Store (no HTTP here: the REST API and
`emqpy ctl admins` both use this module).

Passwords and API secrets are stored only as salted PBKDF2-SHA256 hashes. Checking such a hash
costs ~0.1 s on purpose, so after one successful check we remember a keyed fast digest of the
secret against that exact stored hash; a changed or deleted hash (also by `emqpy ctl` in another
process) makes the entry useless, because every check re-reads the row.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
import time
from dataclasses import dataclass

import jwt

from emqpy.store import Store, register_migrations

PBKDF2_ITERATIONS = 600_000
ADMIN_BACKEND = "local"
MAX_API_KEYS = 100

register_migrations("dashboard", [
    [
        "CREATE TABLE dashboard_users (username TEXT PRIMARY KEY, pwd_hash TEXT NOT NULL, "
        "description TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, "
        "password_ts REAL NOT NULL)",
        "CREATE TABLE api_keys (name TEXT PRIMARY KEY, api_key TEXT NOT NULL UNIQUE, "
        "secret_hash TEXT NOT NULL, created_at REAL NOT NULL, expired_at REAL, "
        "description TEXT NOT NULL DEFAULT '', enable INTEGER NOT NULL DEFAULT 1, "
        "source TEXT NOT NULL DEFAULT 'api')",
        "CREATE TABLE dashboard_tokens (jti TEXT PRIMARY KEY, username TEXT NOT NULL, "
        "created_at REAL NOT NULL, expires_at REAL NOT NULL)",
        "CREATE INDEX dashboard_tokens_user ON dashboard_tokens(username)",
    ],
    # A token is checked against the SHA-256 of it kept in its row, not against a key of the
    # node, so that the row alone (replicated in a cluster) makes it valid on every node.
    # Tokens signed before have no hash: their users log in again.
    [
        "DELETE FROM dashboard_tokens",
        "ALTER TABLE dashboard_tokens ADD COLUMN token_hash TEXT NOT NULL DEFAULT ''",
    ],
])
TOKEN_COLUMNS = ("jti", "username", "created_at", "expires_at", "token_hash")


class AdminError(Exception):
    """A refused operation: ``code`` is the EMQX error code, ``status`` the HTTP status."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# -- hashing ----------------------------------------------------------------------------------

def hash_secret(secret: str, iterations: int | None = None) -> str:
    iterations = iterations or PBKDF2_ITERATIONS
    salt = secrets.token_bytes(16)
    dk = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"pbkdf2_sha256${iterations}${b64(salt)}${b64(dk)}"


def emqx_sha256_hash(salt: bytes, digest: bytes) -> str:
    """The stored form of a hash made by EMQX (SHA-256 of salt + secret), as an imported
    backup brings it; a password set in emqpy is hashed with PBKDF2 instead."""
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"emqx_sha256${b64(salt)}${b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        if stored.startswith("emqx_sha256$"):
            _, salt, digest = stored.split("$")
            salt = base64.b64decode(salt)
            got = hashlib.sha256(salt + secret.encode()).digest()
            return hmac.compare_digest(got, base64.b64decode(digest))
        algo, iters, salt, dk = stored.split("$")
        if algo != "pbkdf2_sha256":
            return False
        got = hashlib.pbkdf2_hmac("sha256", secret.encode(), base64.b64decode(salt), int(iters))
        return hmac.compare_digest(got, base64.b64decode(dk))
    except (ValueError, TypeError):
        return False


class _VerifyCache:
    """Remembers successful slow checks: (who, stored_hash) -> HMAC(process key, secret)."""

    def __init__(self, max_entries: int = 10_000):
        self._key = secrets.token_bytes(32)
        self._entries: dict[tuple[str, str], bytes] = {}
        self._max = max_entries

    def _digest(self, secret: str) -> bytes:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).digest()

    def verify(self, who: str, secret: str, stored: str) -> bool:
        cached = self._entries.get((who, stored))
        if cached is not None:
            return hmac.compare_digest(cached, self._digest(secret))
        if not verify_secret(secret, stored):
            return False
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[(who, stored)] = self._digest(secret)
        return True


_user_cache = _VerifyCache()
_key_cache = _VerifyCache()

# -- validation (EMQX 5.8's rules) -------------------------------------------------------------

_USERNAME_RE = re.compile(r"^[_a-zA-Z0-9]*$")
_SPECIAL = set("!@#$%^&*()_+-=[]{}\"|;':,./<>?`~ ")
API_KEY_NAME_RE = re.compile(r"^[A-Za-z]+[A-Za-z0-9-_]*$")


def check_username(username: str) -> None:
    if not username:
        raise AdminError(400, "BAD_REQUEST", "Username cannot be empty")
    if len(username) > 100:
        raise AdminError(400, "BAD_REQUEST", "Username is longer than 100 characters")
    if not _USERNAME_RE.match(username):
        raise AdminError(400, "BAD_REQUEST", "Bad Username. Only upper and lower case letters, "
                                             "numbers and underscores are supported")


def check_password(password: str) -> None:
    if not 8 <= len(password) <= 64:
        raise AdminError(400, "BAD_REQUEST", "The range of password length is 8~64")
    kinds = (any(c.isascii() and c.isalpha() for c in password)
             + any(c.isascii() and c.isdigit() for c in password)
             + any(c in _SPECIAL for c in password))
    if kinds < 2:
        raise AdminError(400, "BAD_REQUEST",
                         "Bad password. At least two different kind of characters from groups of "
                         "letters, numbers, and special characters. For example, if password is "
                         "composed from letters, it must contain at least one number or a "
                         "special character.")
    if not password.isascii():
        raise AdminError(400, "BAD_REQUEST", "Only ascii characters are allowed in the password")


# -- users ------------------------------------------------------------------------------------

def user_view(row) -> dict:
    return {"username": row["username"], "description": row["description"],
            "backend": ADMIN_BACKEND}


def list_users(store: Store) -> list[dict]:
    return [user_view(r) for r in store.query("SELECT * FROM dashboard_users ORDER BY username")]


def get_user(store: Store, username: str):
    return store.query_one("SELECT * FROM dashboard_users WHERE username=?", (username,))


def add_user(store: Store, username: str, password: str, description: str = "", *,
             validate_password: bool = True) -> dict:
    check_username(username)
    if validate_password:
        check_password(password)
    if get_user(store, username) is not None:
        raise AdminError(409, "ALREADY_EXISTS", f"username_already_exists: {username}")
    now = time.time()
    pwd_hash = hash_secret(password)
    try:
        store.execute("INSERT INTO dashboard_users(username, pwd_hash, description, created_at, "
                      "password_ts) VALUES (?, ?, ?, ?, ?)",
                      (username, pwd_hash, description or "", now, now))
    except Exception as e:  # a concurrent insert of the same name
        if "UNIQUE" in str(e):
            raise AdminError(409, "ALREADY_EXISTS", f"username_already_exists: {username}")
        raise
    return user_view(get_user(store, username))


def update_user(store: Store, username: str, description: str) -> dict:
    if store.execute("UPDATE dashboard_users SET description=? WHERE username=?",
                     (description or "", username)) == 0:
        raise AdminError(404, "USER_NOT_FOUND", "User not found")
    return user_view(get_user(store, username))


def delete_user(store: Store, username: str) -> None:
    with store.transaction() as conn:
        if conn.execute("DELETE FROM dashboard_users WHERE username=?", (username,)).rowcount == 0:
            raise AdminError(404, "USER_NOT_FOUND", "User not found")
        conn.execute("DELETE FROM dashboard_tokens WHERE username=?", (username,))


def set_password(store: Store, username: str, new_password: str) -> None:
    """Trusted password change (CLI, or after the old password was checked): ends sessions."""
    check_password(new_password)
    with store.transaction() as conn:
        n = conn.execute("UPDATE dashboard_users SET pwd_hash=?, password_ts=? WHERE username=?",
                         (hash_secret(new_password), time.time(), username)).rowcount
        if n == 0:
            raise AdminError(404, "USER_NOT_FOUND", "User not found")
        conn.execute("DELETE FROM dashboard_tokens WHERE username=?", (username,))


def change_password(store: Store, username: str, old_password: str, new_password: str) -> None:
    row = get_user(store, username)
    if row is None:
        raise AdminError(404, "USER_NOT_FOUND", "User not found")
    if not verify_secret(old_password, row["pwd_hash"]):
        raise AdminError(400, "ERROR_PWD_NOT_MATCH", "Old password does not match")
    set_password(store, username, new_password)


def check_user_password(store: Store, username: str, password: str) -> bool:
    row = get_user(store, username)
    if row is None:
        # Same cost as a real check, so response time does not reveal which usernames exist.
        verify_secret(password, _DUMMY_HASH)
        return False
    return _user_cache.verify(username, password, row["pwd_hash"])


_DUMMY_HASH = hash_secret(secrets.token_hex(8))


def ensure_default_user(store: Store, username: str, password: str) -> bool:
    """Create the default user the first time this database is used (EMQX: on first boot).
    Returns True if it was created."""
    if store.get_meta("dashboard.default_user_initialized") or not username:
        return False
    created = False
    if get_user(store, username) is None:
        # EMQX's default password "public" is shorter than the password rule allows; the
        # rule applies to passwords users choose, not to the configured default.
        add_user(store, username, password, "administrator", validate_password=False)
        created = True
    store.set_meta("dashboard.default_user_initialized", "1")
    return created


# -- tokens -----------------------------------------------------------------------------------

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_token(store: Store, username: str, ttl_s: float) -> str:
    """A new login token: a JWT (EMQX's form) whose row keeps only its hash. The signing key
    is random and thrown away: what makes the token valid is its row (jti, hash, expiry), which
    a cluster replicates without anything that could make a token (`token_row`)."""
    now = time.time()
    jti = secrets.token_hex(16)
    token = jwt.encode({"sub": username, "jti": jti, "iat": int(now), "exp": int(now + ttl_s)},
                       secrets.token_bytes(32), algorithm="HS256")
    store.execute("INSERT INTO dashboard_tokens(jti, username, created_at, expires_at, "
                  "token_hash) VALUES (?, ?, ?, ?, ?)",
                  (jti, username, now, now + ttl_s, _token_hash(token)))
    # Old expired tokens of this user are pruned here rather than by a timer.
    store.execute("DELETE FROM dashboard_tokens WHERE username=? AND expires_at < ?",
                  (username, now - 86400))
    return token


@dataclass
class TokenCheck:
    username: str | None = None
    jti: str | None = None
    error: str | None = None  # None, "TOKEN_TIME_OUT" or "BAD_TOKEN"


def _token_jti(token: str) -> str | None:
    try:
        claims = jwt.decode(token, options={"verify_signature": False,
                                            "require": ["sub", "jti", "exp"]})
    except jwt.PyJWTError:
        return None
    jti = claims["jti"]
    return jti if isinstance(jti, str) else None


def verify_token(store: Store, token: str) -> TokenCheck:
    jti = _token_jti(token)
    row = store.query_one("SELECT * FROM dashboard_tokens WHERE jti=?", (jti,)) \
        if jti is not None else None
    if row is None or not hmac.compare_digest(row["token_hash"], _token_hash(token)):
        return TokenCheck(error="BAD_TOKEN")
    if row["expires_at"] <= time.time():
        store.execute("DELETE FROM dashboard_tokens WHERE jti=?", (row["jti"],))
        return TokenCheck(error="TOKEN_TIME_OUT")
    return TokenCheck(username=row["username"], jti=row["jti"])


def destroy_token(store: Store, jti: str) -> None:
    store.execute("DELETE FROM dashboard_tokens WHERE jti=?", (jti,))


def token_row(store: Store, token: str) -> dict | None:
    """The stored row of a token this node signed (what a cluster replicates of a login)."""
    jti = _token_jti(token)
    row = store.query_one(f"SELECT {', '.join(TOKEN_COLUMNS)} FROM dashboard_tokens "
                          "WHERE jti=?", (jti,)) if jti is not None else None
    return dict(row) if row is not None else None


def restore_token_rows(store: Store, rows: list) -> int:
    """Store token rows another node made (its logins), unless their user is gone here."""
    rows = [r for r in rows if isinstance(r, dict) and get_user(store, r.get("username")) is not None]
    return store.replace_rows("dashboard_tokens", TOKEN_COLUMNS, rows, required=TOKEN_COLUMNS)


# -- API keys ---------------------------------------------------------------------------------

_SECRET_ALPHABET = string.ascii_letters + string.digits


def new_api_key() -> str:
    return secrets.token_hex(8)  # 16 hex chars, like EMQX's


def new_api_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(43))


def api_key_view(row, *, now: float | None = None) -> dict:
    from emqpy.timefmt import rfc3339
    now = time.time() if now is None else now
    exp = row["expired_at"]
    return {
        "api_key": row["api_key"],
        "created_at": rfc3339(row["created_at"]),
        "desc": row["description"],
        "enable": bool(row["enable"]),
        "expired": exp is not None and exp < now,
        "expired_at": "infinity" if exp is None else rfc3339(exp),
        "name": row["name"],
    }


def list_api_keys(store: Store) -> list[dict]:
    return [api_key_view(r) for r in store.query("SELECT * FROM api_keys ORDER BY created_at")]


def get_api_key(store: Store, name: str):
    return store.query_one("SELECT * FROM api_keys WHERE name=?", (name,))


def create_api_key(store: Store, name: str, *, expired_at: float | None, desc: str = "",
                   enable: bool = True, api_key: str | None = None, api_secret: str | None = None,
                   source: str = "api") -> dict:
    """Returns the view including ``api_secret`` (the only time it is ever shown)."""
    if len(name) > 256 or not name:
        raise AdminError(400, "BAD_REQUEST", "name: Name Length must =< 256")
    if not API_KEY_NAME_RE.match(name):
        raise AdminError(400, "BAD_REQUEST", "name: Name should be ^[A-Za-z]+[A-Za-z0-9-_]*$")
    # An expiry in the past is accepted, as EMQX accepts it: the key is created expired.
    api_key = api_key or new_api_key()
    api_secret = api_secret or new_api_secret()
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM api_keys WHERE name=?", (name,)).fetchone():
            raise AdminError(409, "ALREADY_EXISTS", f"API key name already exists: {name}")
        if conn.execute("SELECT 1 FROM api_keys WHERE api_key=?", (api_key,)).fetchone():
            raise AdminError(409, "ALREADY_EXISTS", f"API key already exists: {api_key}")
        if conn.execute("SELECT count(*) FROM api_keys").fetchone()[0] >= MAX_API_KEYS:
            raise AdminError(409, "EXCEED_LIMIT", f"At most {MAX_API_KEYS} API keys may exist")
        conn.execute("INSERT INTO api_keys(name, api_key, secret_hash, created_at, expired_at, "
                     "description, enable, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (name, api_key, hash_secret(api_secret), int(time.time()), expired_at,
                      desc or "", 1 if enable else 0, source))
    view = api_key_view(get_api_key(store, name))
    view["api_secret"] = api_secret
    return dict(sorted(view.items()))


_KEEP = object()


def update_api_key(store: Store, name: str, *, enable=_KEEP, expired_at=_KEEP, desc=_KEEP) -> dict:
    if get_api_key(store, name) is None:
        raise AdminError(404, "NOT_FOUND", "Name NOT FOUND")
    sets, params = [], []
    if enable is not _KEEP and enable is not None:
        sets.append("enable=?")
        params.append(1 if enable else 0)
    if expired_at is not _KEEP:
        sets.append("expired_at=?")
        params.append(expired_at)
    if desc is not _KEEP and desc is not None:
        sets.append("description=?")
        params.append(desc)
    if sets:
        store.execute(f"UPDATE api_keys SET {', '.join(sets)} WHERE name=?", (*params, name))
    return api_key_view(get_api_key(store, name))


def delete_api_key(store: Store, name: str) -> None:
    if store.execute("DELETE FROM api_keys WHERE name=?", (name,)) == 0:
        raise AdminError(404, "NOT_FOUND", "Name NOT FOUND")


def is_api_key(store: Store, name: str) -> bool:
    """Whether `name` is an API key (Basic auth then checks it as one, not as a user)."""
    return store.query_one("SELECT 1 FROM api_keys WHERE api_key=?", (name,)) is not None


def check_api_key(store: Store, api_key: str, api_secret: str) -> bool:
    """True if the key exists, is enabled, has not expired, and the secret matches."""
    row = store.query_one("SELECT * FROM api_keys WHERE api_key=?", (api_key,))
    if row is None:
        verify_secret(api_secret, _DUMMY_HASH)
        return False
    if not _key_cache.verify(api_key, api_secret, row["secret_hash"]):
        return False
    if not row["enable"]:
        return False
    return row["expired_at"] is None or row["expired_at"] > time.time()


_BOOTSTRAP_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def load_bootstrap_file(store: Store, path: str, log) -> int:
    """EMQX's ``api_key.bootstrap_file``: lines ``key:secret`` (an optional third field, EMQX's
    role, is accepted and ignored). Adds missing keys and updates the secret of keys the file
    created earlier; returns how many lines were applied."""
    applied = 0
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(":")
            if len(parts) not in (2, 3) or not _BOOTSTRAP_KEY_RE.match(parts[0]) \
                    or len(parts[1]) < 3:
                log.warning("api_key.bootstrap_file %s line %d ignored: expected key:secret",
                            path, lineno)
                continue
            key, secret = parts[0], parts[1]
            row = store.query_one("SELECT * FROM api_keys WHERE api_key=?", (key,))
            if row is None:
                name = "from_bootstrap_file_" + re.sub(r"[^A-Za-z0-9_-]", "_", key)
                if get_api_key(store, name) is not None:
                    log.warning("api_key.bootstrap_file line %d: name %s taken", lineno, name)
                    continue
                try:
                    create_api_key(store, name, expired_at=None, desc="from bootstrap file",
                                   api_key=key, api_secret=secret, source="bootstrap")
                except AdminError as e:
                    log.warning("api_key.bootstrap_file line %d ignored: %s", lineno, e.message)
                    continue
            elif row["source"] == "bootstrap" and not verify_secret(secret, row["secret_hash"]):
                store.execute("UPDATE api_keys SET secret_hash=? WHERE api_key=?",
                              (hash_secret(secret), key))
            applied += 1
    return applied
