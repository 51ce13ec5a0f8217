"""Every way in (Basic with key or user, Bearer from /login) and every refusal code."""
import base64
import time

import jwt

from emqpy.api.auth import LoginLock

from support.node import assert_error

WWW_AUTH = 'Basic Realm="emqx-dashboard"'


def test_missing_or_malformed_header(api):
    with api.client() as c:
        r = c.get("/api/v5/users")
        assert_error(r, 401, "AUTHORIZATION_HEADER_ERROR", "Missing authorization header")
        assert r.headers["www-authenticate"] == WWW_AUTH
        for header in ("Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode(),
                       "Digest abc", "Bearer", "garbage"):
            assert_error(c.get("/api/v5/users", headers={"Authorization": header}),
                         401, "AUTHORIZATION_HEADER_ERROR")


def test_basic_auth_with_dashboard_user(api):
    with api.client(auth=("admin", "public")) as c:
        assert c.get("/api/v5/probe/whoami").json() == {"kind": "user", "name": "admin"}
        assert c.get("/api/v5/users").status_code == 200
    with api.client(auth=("admin", "wrong")) as c:
        r = c.get("/api/v5/users")
        assert_error(r, 401, "WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET")
        assert r.headers["www-authenticate"] == WWW_AUTH
    with api.client(auth=("nobody", "public")) as c:
        assert_error(c.get("/api/v5/users"), 401, "WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET")


def test_basic_auth_with_api_key(api):
    k = api.new_key("auth-basic-key")
    with api.client(auth=(k["api_key"], k["api_secret"])) as c:
        assert c.get("/api/v5/probe/whoami").json() == {"kind": "api_key", "name": k["api_key"]}
        # again (served from the verified-secret cache) and with a wrong secret
        assert c.get("/api/v5/probe/whoami").status_code == 200
    with api.client(auth=(k["api_key"], k["api_secret"] + "x")) as c:
        assert_error(c.get("/api/v5/probe/whoami"), 401,
                     "WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET")


def test_api_keys_may_not_manage_keys_or_users(api):
    k = api.new_key("auth-limited-key")
    with api.client(auth=(k["api_key"], k["api_secret"])) as c:
        for method, path in [("GET", "/api/v5/api_key"), ("POST", "/api/v5/api_key"),
                             ("GET", "/api/v5/api_key/auth-limited-key"),
                             ("PUT", "/api/v5/api_key/auth-limited-key"),
                             ("DELETE", "/api/v5/api_key/auth-limited-key"),
                             ("GET", "/api/v5/users"), ("POST", "/api/v5/users"),
                             ("PUT", "/api/v5/users/admin"), ("DELETE", "/api/v5/users/admin"),
                             ("POST", "/api/v5/users/admin/change_pwd"),
                             ("POST", "/api/v5/logout")]:
            r = c.request(method, path, json={})
            assert_error(r, 401, "API_KEY_NOT_ALLOW", path)
    with api.client(auth=("admin", "public")) as c:  # nothing was changed
        assert c.get("/api/v5/api_key/auth-limited-key").status_code == 200


def test_login_token_and_logout(api):
    with api.client() as c:
        r = c.post("/api/v5/login", json={"username": "admin", "password": "public"})
        assert r.status_code == 200
        body = r.json()
        assert set(body) == {"token", "version", "license"}
        assert body["version"] == "5.8.1" and body["license"] == {"edition": "opensource"}
        bearer = {"Authorization": "Bearer " + body["token"]}
        assert c.get("/api/v5/users", headers=bearer).status_code == 200
        assert c.get("/api/v5/probe/whoami", headers=bearer).json()["name"] == "admin"
        # logout with someone else's name is refused; with the owner's name it works
        assert_error(c.post("/api/v5/logout", json={"username": "other"}, headers=bearer),
                     401, "WRONG_TOKEN_OR_USERNAME")
        r = c.post("/api/v5/logout", json={"username": "admin"}, headers=bearer)
        assert r.status_code == 204 and r.content == b""
        assert_error(c.get("/api/v5/users", headers=bearer), 401, "BAD_TOKEN")
        # Basic credentials are not a session: logout needs the bearer token
        assert_error(c.post("/api/v5/logout", auth=("admin", "public")), 401,
                     "AUTHORIZATION_HEADER_ERROR")


def test_login_failures(api):
    with api.client() as c:
        r = c.post("/api/v5/login", json={"username": "admin", "password": "nope"})
        assert_error(r, 401, "WRONG_USERNAME_OR_PWD")
        assert_error(c.post("/api/v5/login", json={"username": "ghost", "password": "x"}),
                     401, "WRONG_USERNAME_OR_PWD")
        assert_error(c.post("/api/v5/login", json={"username": "admin"}), 400, "BAD_REQUEST",
                     "password")
        assert_error(c.post("/api/v5/login", json={"username": "a" * 101, "password": "p"}),
                     400, "BAD_REQUEST", "username")


def test_forged_and_expired_tokens(api):
    token = api.token()
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, "not-the-secret-" + "x" * 32, algorithm="HS256")
    with api.client() as c:
        assert_error(c.get("/api/v5/users", headers={"Authorization": "Bearer " + forged}),
                     401, "BAD_TOKEN")
        r = c.get("/api/v5/users", headers={"Authorization": "Bearer abc.def.ghi"})
        assert_error(r, 401, "BAD_TOKEN")
        # as EMQX: no Basic challenge for a bearer token (a browser would prompt for a password)
        assert "www-authenticate" not in r.headers
        # Expire the token's session in the database (instead of waiting an hour).
        api.store.execute("UPDATE dashboard_tokens SET expires_at=? WHERE jti=?",
                          (time.time() - 1, claims["jti"]))
        r = c.get("/api/v5/users", headers={"Authorization": "Bearer " + token})
        assert_error(r, 401, "TOKEN_TIME_OUT")
        assert "www-authenticate" not in r.headers


def test_token_lifetime_follows_config(make_broker):
    h = make_broker({"dashboard": {"token_expired_time": "2m"}})
    claims = jwt.decode(h.token(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120
    row = h.store.query_one("SELECT * FROM dashboard_tokens WHERE jti=?", (claims["jti"],))
    assert round(row["expires_at"] - row["created_at"]) == 120


def test_expired_and_disabled_keys_are_refused(api):
    k = api.new_key("auth-expiring", expired_at=int(time.time()) + 3600)
    cred = (k["api_key"], k["api_secret"])
    with api.client(auth=cred) as c:
        assert c.get("/api/v5/probe/whoami").status_code == 200
    api.store.execute("UPDATE api_keys SET expired_at=? WHERE name=?",
                      (time.time() - 5, "auth-expiring"))
    with api.client(auth=cred) as c:
        assert_error(c.get("/api/v5/probe/whoami"), 401,
                     "WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET")
    with api.client(auth=("admin", "public")) as admin:
        got = admin.get("/api/v5/api_key/auth-expiring").json()
        assert got["expired"] is True
        # extend it, then disable it
        r = admin.put("/api/v5/api_key/auth-expiring", json={"expired_at": "infinity"})
        assert r.json()["expired"] is False and r.json()["expired_at"] == "infinity"
        with api.client(auth=cred) as c:
            assert c.get("/api/v5/probe/whoami").status_code == 200
        assert admin.put("/api/v5/api_key/auth-expiring",
                         json={"enable": False}).json()["enable"] is False
        with api.client(auth=cred) as c:
            assert_error(c.get("/api/v5/probe/whoami"), 401,
                         "WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET")
        admin.put("/api/v5/api_key/auth-expiring", json={"enable": True})
        with api.client(auth=cred) as c:
            assert c.get("/api/v5/probe/whoami").status_code == 200
        assert admin.delete("/api/v5/api_key/auth-expiring").status_code == 204
        with api.client(auth=cred) as c:
            assert c.get("/api/v5/probe/whoami").status_code == 401


def test_repeated_failed_logins_lock_the_user(api):
    with api.client(auth=("admin", "public")) as c:
        assert c.post("/api/v5/users", json={"username": "lockme", "password": "lockme123"}
                      ).status_code == 200
    with api.client() as c:
        for _ in range(5):
            assert_error(c.post("/api/v5/login", json={"username": "lockme", "password": "bad"}),
                         401, "WRONG_USERNAME_OR_PWD")
        # now even the right password is refused, by /login and by Basic auth
        assert_error(c.post("/api/v5/login", json={"username": "lockme", "password": "lockme123"}),
                     401, "LOGIN_LOCKED")
        assert_error(c.get("/api/v5/probe/whoami", auth=("lockme", "lockme123")),
                     401, "LOGIN_LOCKED")
        # other users are not affected
        assert c.post("/api/v5/login", json={"username": "admin", "password": "public"}
                      ).status_code == 200


def test_login_lock_window_and_expiry():
    now = [1000.0]
    lock = LoginLock(max_attempts=3, interval=300, lock_duration=600, clock=lambda: now[0])
    lock.failed("u")
    now[0] += 301  # the first failure has left the window
    lock.failed("u")
    lock.failed("u")
    assert not lock.locked("u")
    lock.failed("u")
    assert lock.locked("u")
    now[0] += 599
    assert lock.locked("u")
    now[0] += 2
    assert not lock.locked("u")
    lock.failed("v")
    lock.failed("v")
    lock.succeeded("v")  # success clears the count
    lock.failed("v")
    assert not lock.locked("v")


def test_user_basic_auth_can_be_switched_off(make_broker):
    h = make_broker({"dashboard": {"allow_user_basic_auth": False}})
    k = None
    with h.bearer() as c:  # users still log in and use tokens
        r = c.post("/api/v5/api_key", json={"name": "only-keys"})
        assert r.status_code == 200
        k = r.json()
    with h.client(auth=("admin", "public")) as c:
        assert_error(c.get("/api/v5/users"), 401,
                     "WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET")
    with h.client(auth=(k["api_key"], k["api_secret"])) as c:
        assert c.get("/api/v5/probe/whoami").json()["kind"] == "api_key"


def test_secrets_and_passwords_are_stored_hashed(api):
    k = api.new_key("auth-hashed")
    with api.client(auth=("admin", "public")) as c:
        c.post("/api/v5/users", json={"username": "hashme", "password": "Plain-Pass-42"})
    rows = api.store.query("SELECT secret_hash FROM api_keys WHERE name='auth-hashed'")
    assert rows[0][0].startswith("pbkdf2_sha256$") and k["api_secret"] not in rows[0][0]
    rows = api.store.query("SELECT pwd_hash FROM dashboard_users WHERE username='hashme'")
    assert rows[0][0].startswith("pbkdf2_sha256$")
    api.store.execute("PRAGMA wal_checkpoint(FULL)")
    raw = b""
    for f in api.data_dir.glob("emqpy.db*"):
        raw += f.read_bytes()
    assert k["api_secret"].encode() not in raw
    assert b"Plain-Pass-42" not in raw
