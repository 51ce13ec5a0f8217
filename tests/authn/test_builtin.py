"""password_based:built_in_database: REST management, EMQX hashes, MQTT-visible outcomes."""
import hashlib
import json

import bcrypt
import pytest

from support.node import assert_error

BUILTIN = "password_based:built_in_database"


def add_builtin(n, **cfg):
    body = {"mechanism": "password_based", "backend": "built_in_database",
            "user_id_type": "username", **cfg}
    r = n.api.post("/authentication", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def add_user(n, user_id, password, superuser=False, aid=BUILTIN):
    r = n.api.post(f"/authentication/{aid}/users",
                   json={"user_id": user_id, "password": password, "is_superuser": superuser})
    assert r.status_code == 201, r.text
    return r.json()


def test_no_authenticator_allows_everyone(make_broker):
    n = make_broker()
    assert n.api.get("/authentication").json() == []
    assert n.connack("anon1") == 0
    assert n.connack("anon2", username="x", password="y", version=4) == 0
    assert n.broker.metrics.c["authentication.success.anonymous"] == 2


@pytest.mark.parametrize("alg", [
    {"name": "sha256", "salt_position": "prefix"},
    {"name": "sha512", "salt_position": "suffix"},
    {"name": "md5", "salt_position": "disable"},
    {"name": "sha", "salt_position": "prefix"},
    {"name": "plain", "salt_position": "disable"},
    {"name": "bcrypt", "salt_rounds": 5},
    {"name": "pbkdf2", "mac_fun": "sha256", "iterations": 10, "dk_length": 32},
])
def test_password_outcomes(make_broker, alg):
    n = make_broker()
    add_builtin(n, password_hash_algorithm=alg)
    add_user(n, "alice", "s3cret")
    assert n.connack("c1", username="alice", password="s3cret") == 0
    assert n.connack("c2", username="alice", password="wrong") == 0x86
    assert n.connack("c3", username="alice", password="wrong", version=4) == 4
    assert n.connack("c4", username="alice") == 0x86  # no password at all
    # unknown user: every authenticator ignores it -> not authorized
    assert n.connack("c5", username="bob", password="s3cret") == 0x87
    assert n.connack("c6", username="bob", password="s3cret", version=4) == 5
    assert n.connack("c7") == 0x87  # anonymous, with an authenticator configured
    st = n.api.get(f"/authentication/{BUILTIN}/status").json()
    assert st["status"] == "connected"
    assert st["metrics"]["success"] == 1 and st["metrics"]["failed"] == 3
    assert st["metrics"]["nomatch"] == 3 and st["metrics"]["total"] == 7


def test_user_id_type_clientid(make_broker):
    n = make_broker()
    add_builtin(n, user_id_type="clientid")
    add_user(n, "dev-1", "pw1")
    assert n.connack("dev-1", username="anything", password="pw1") == 0
    assert n.connack("dev-1", password="bad") == 0x86
    assert n.connack("dev-2", password="pw1") == 0x87


def test_users_crud_paging_search(make_broker):
    n = make_broker()
    add_builtin(n)
    base = f"/authentication/{BUILTIN}/users"
    for i in range(12):
        add_user(n, f"user{i:02d}", "pw", superuser=(i % 3 == 0))
    assert_error(n.api.post(base, json={"user_id": "user00", "password": "x"}),
                 409, "ALREADY_EXISTS")
    assert_error(n.api.post(base, json={"user_id": "u"}), 400, "BAD_REQUEST")
    r = n.api.get(base, params={"page": 2, "limit": 5}).json()
    assert r["meta"] == {"page": 2, "limit": 5, "count": 12, "hasnext": True}
    assert [u["user_id"] for u in r["data"]] == [f"user{i:02d}" for i in range(5, 10)]
    r = n.api.get(base, params={"like_user_id": "er1"}).json()
    assert sorted(u["user_id"] for u in r["data"]) == ["user10", "user11"]
    r = n.api.get(base, params={"is_superuser": "true"}).json()
    assert {u["user_id"] for u in r["data"]} == {"user00", "user03", "user06", "user09"}
    assert n.api.get(f"{base}/user03").json() == {"user_id": "user03", "is_superuser": True}
    r = n.api.put(f"{base}/user03", json={"password": "newpw", "is_superuser": False})
    assert r.json() == {"user_id": "user03", "is_superuser": False}
    assert n.connack("c", username="user03", password="pw") == 0x86
    assert n.connack("c", username="user03", password="newpw") == 0
    assert n.api.delete(f"{base}/user03").status_code == 204
    assert_error(n.api.get(f"{base}/user03"), 404, "NOT_FOUND")
    assert_error(n.api.delete(f"{base}/user03"), 404, "NOT_FOUND")
    assert_error(n.api.put(f"{base}/ghost", json={"password": "x"}), 404, "NOT_FOUND")
    assert n.connack("c", username="user03", password="newpw") == 0x87
    assert_error(n.api.get("/authentication/jwt/users"), 404, "NOT_FOUND")


def test_import_emqx_exports(make_broker, tmp_path):
    n = make_broker()
    add_builtin(n, password_hash_algorithm={"name": "sha256", "salt_position": "suffix"})
    url = f"/authentication/{BUILTIN}/import_users"
    # EMQX's hash CSV: hex(sha256(password ++ salt)) with a suffix salt
    salt = "e378187547bf2d6f0545a3f441aa4d8a"
    ph = hashlib.sha256(b"csvpass" + salt.encode()).hexdigest()
    csv_text = f"user_id,password_hash,salt,is_superuser\ncsvuser,{ph},{salt},true\n"
    r = n.api.post(url, params={"type": "hash"},
                   files={"filename": ("users.csv", csv_text.encode(), "text/csv")})
    assert r.status_code == 204, r.text
    assert n.connack("c1", username="csvuser", password="csvpass") == 0
    # JSON export, hash type, uploaded as a file
    users = [{"user_id": "jsonuser", "password_hash": hashlib.sha256(b"jp" + b"s1").hexdigest(),
              "salt": "s1", "is_superuser": False}]
    r = n.api.post(url, params={"type": "hash"},
                   files={"filename": ("users.json", json.dumps(users).encode(), "application/json")})
    assert r.status_code == 204, r.text
    assert n.connack("c2", username="jsonuser", password="jp") == 0
    # plain type in a JSON body
    r = n.api.post(url, params={"type": "plain"},
                   json=[{"user_id": "plainuser", "password": "pp", "is_superuser": True}])
    assert r.status_code == 204, r.text
    assert n.connack("c3", username="plainuser", password="pp") == 0
    got = n.api.get(f"/authentication/{BUILTIN}/users/plainuser").json()
    assert got == {"user_id": "plainuser", "is_superuser": True}
    # bad input
    assert_error(n.api.post(url, params={"type": "hash"},
                            files={"filename": ("u.txt", b"x", "text/plain")}), 400, "BAD_REQUEST")
    assert_error(n.api.post(url, params={"type": "hash"},
                            files={"filename": ("u.csv", b"user_id,salt\nx,y\n", "text/csv")}),
                 400, "BAD_REQUEST")
    assert_error(n.api.post(url, params={"type": "hash"}, content=b"{not json",
                            headers={"content-type": "application/json"}), 400, "BAD_REQUEST")
    assert n.api.post(url, params={"type": "other"}, json=[]).status_code == 400


def test_bcrypt_hash_from_emqx_export(make_broker):
    """EMQX keeps the bcrypt salt next to the full bcrypt hash; the hash alone must verify."""
    n = make_broker()
    add_builtin(n, password_hash_algorithm={"name": "bcrypt"})
    salt = bcrypt.gensalt(6)
    ph = bcrypt.hashpw(b"bpass", salt).decode()
    r = n.api.post(f"/authentication/{BUILTIN}/import_users", params={"type": "hash"},
                   json=[{"user_id": "bu", "password_hash": ph, "salt": salt.decode()}])
    assert r.status_code == 204
    assert n.connack("c", username="bu", password="bpass") == 0
    assert n.connack("c", username="bu", password="nope") == 0x86


def test_authenticator_crud_and_validation(make_broker):
    n = make_broker()
    assert_error(n.api.post("/authentication", json={"mechanism": "password_based",
                                                     "backend": "nosuch"}), 400, "BAD_REQUEST")
    assert_error(n.api.post("/authentication", json={
        "mechanism": "password_based", "backend": "built_in_database",
        "password_hash_algorithm": {"name": "bcrypt", "salt_rounds": 99}}), 400, "BAD_REQUEST")
    assert_error(n.api.post("/authentication", json=[1]), 400, "BAD_REQUEST")
    cfg = add_builtin(n)
    assert cfg["password_hash_algorithm"] == {"name": "sha256", "salt_position": "prefix"}
    assert cfg["enable"] is True
    assert_error(n.api.post("/authentication", json={"mechanism": "password_based",
                                                     "backend": "built_in_database"}),
                 409, "ALREADY_EXISTS")
    add_user(n, "u1", "p1")
    # disabling the only authenticator lets everyone in again
    r = n.api.put(f"/authentication/{BUILTIN}", json={**cfg, "enable": False})
    assert r.status_code == 204, r.text
    assert n.api.get(f"/authentication/{BUILTIN}").json()["enable"] is False
    assert n.connack("c", username="u1", password="bad") == 0
    r = n.api.put(f"/authentication/{BUILTIN}", json={**cfg, "enable": True})
    assert n.connack("c", username="u1", password="bad") == 0x86
    assert_error(n.api.put(f"/authentication/{BUILTIN}", json={**cfg, "user_id_type": "x"}),
                 400, "BAD_REQUEST")
    assert_error(n.api.get("/authentication/jwt"), 404, "NOT_FOUND")
    assert n.api.delete(f"/authentication/{BUILTIN}").status_code == 204
    assert_error(n.api.delete(f"/authentication/{BUILTIN}"), 404, "NOT_FOUND")
    # users went with the authenticator
    add_builtin(n)
    assert n.api.get(f"/authentication/{BUILTIN}/users").json()["meta"]["count"] == 0


def test_authenticators_carry_their_id(make_broker):
    # EMQX's emqx_authn_api adds `id` to every authenticator it shows: list, one, and the
    # POST answer; a GET answer sent back to PUT (id included) is accepted.
    n = make_broker()
    assert add_builtin(n)["id"] == BUILTIN
    r = n.api.post("/authentication", json={"mechanism": "jwt", "algorithm": "hmac-based",
                                            "secret": "topsecret"})
    assert r.status_code == 200 and r.json()["id"] == "jwt"
    assert [a["id"] for a in n.api.get("/authentication").json()] == [BUILTIN, "jwt"]
    one = n.api.get(f"/authentication/{BUILTIN}").json()
    assert one["id"] == BUILTIN and one["backend"] == "built_in_database"
    assert n.api.get("/authentication/jwt").json()["id"] == "jwt"
    assert n.api.put(f"/authentication/{BUILTIN}", json={**one, "enable": False}
                     ).status_code == 204
    assert n.api.get(f"/authentication/{BUILTIN}").json() == {**one, "enable": False}
    # an id that is not this authenticator's is not a field of its config
    assert_error(n.api.put("/authentication/jwt", json={
        **n.api.get("/authentication/jwt").json(), "id": BUILTIN}), 400, "BAD_REQUEST")


def test_order_and_position(make_broker):
    n = make_broker()
    add_builtin(n)
    r = n.api.post("/authentication", json={"mechanism": "jwt", "algorithm": "hmac-based",
                                            "secret": "topsecret"})
    assert r.status_code == 200, r.text
    assert r.json()["secret"] == "******"  # never shown
    ids = lambda: [a.get("backend", a["mechanism"]) for a in n.api.get("/authentication").json()]
    assert ids() == ["built_in_database", "jwt"]
    assert n.api.put(f"/authentication/{BUILTIN}/position/rear").status_code == 204
    assert ids() == ["jwt", "built_in_database"]
    assert n.api.put(f"/authentication/{BUILTIN}/position/before:jwt").status_code == 204
    assert ids() == ["built_in_database", "jwt"]
    assert n.api.put(f"/authentication/{BUILTIN}/position/after:jwt").status_code == 204
    assert ids() == ["jwt", "built_in_database"]
    assert_error(n.api.put(f"/authentication/{BUILTIN}/position/sideways"), 400, "BAD_REQUEST")
    assert_error(n.api.put(f"/authentication/{BUILTIN}/position/before:nope"), 404, "NOT_FOUND")
    assert n.api.put("/authentication/order", json=[{"id": BUILTIN}, {"id": "jwt"}]
                     ).status_code == 204
    assert ids() == ["built_in_database", "jwt"]
    assert_error(n.api.put("/authentication/order", json=[{"id": "jwt"}]), 400, "BAD_REQUEST")
    assert "topsecret" not in n.api.get("/authentication").text
    # a PUT that sends the mask back keeps the secret
    jwt_cfg = n.api.get("/authentication/jwt").json()
    assert n.api.put("/authentication/jwt", json=jwt_cfg).status_code == 204
    assert n.broker.authn.get("jwt").cfg["secret"] == "topsecret"


def test_persisted_across_restart(make_broker):
    n = make_broker()
    add_builtin(n, password_hash_algorithm={"name": "sha512", "salt_position": "suffix"})
    add_user(n, "keep", "me", superuser=True)
    n.restart()
    assert n.api.get(f"/authentication/{BUILTIN}").json()["password_hash_algorithm"]["name"] \
        == "sha512"
    assert n.connack("c", username="keep", password="me") == 0
    assert n.connack("c", username="keep", password="no") == 0x86


def test_from_config_file_and_listener_enable_authn(make_broker):
    n = make_broker({"authentication": [{"mechanism": "password_based",
                                  "backend": "built_in_database"}],
              "listeners": {"tcp": {"default": {"enable_authn": False}}}})
    assert n.api.get("/authentication").json()[0]["backend"] == "built_in_database"
    assert n.connack("c", username="nobody", password="x") == 0  # listener skips authn
    n2 = make_broker({"authentication": [{"mechanism": "password_based",
                                   "backend": "built_in_database"}]})
    assert n2.connack("c", username="nobody", password="x") == 0x87


def test_superuser_flag_reaches_channel(make_broker):
    n = make_broker()
    add_builtin(n)
    add_user(n, "root", "pw", superuser=True)
    add_user(n, "user", "pw")
    c, code = n.connect("su", username="root", password="pw")
    assert code == 0
    assert n.broker.channels["su"].is_superuser is True
    c2, code = n.connect("nu", username="user", password="pw")
    assert code == 0 and n.broker.channels["nu"].is_superuser is False
