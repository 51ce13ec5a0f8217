"""Dashboard users: list, create (EMQX 5.8's username/password rules), update, delete,
change_pwd."""
from support.node import assert_error


def test_default_admin_exists(api):
    with api.client(auth=("admin", "public")) as c:
        users = c.get("/api/v5/users").json()
    assert {"username": "admin", "description": "administrator", "backend": "local"} in users


def test_create_update_delete_user(api):
    with api.client(auth=("admin", "public")) as c:
        r = c.post("/api/v5/users", json={"username": "ops_1", "password": "s3cret-pw",
                                          "description": "operator"})
        assert r.status_code == 200
        assert r.json() == {"username": "ops_1", "description": "operator", "backend": "local"}
        assert_error(c.post("/api/v5/users", json={"username": "ops_1", "password": "s3cret-pw"}),
                     409, "ALREADY_EXISTS")
        r = c.put("/api/v5/users/ops_1", json={"description": "night shift"})
        assert r.json()["description"] == "night shift"
        assert_error(c.put("/api/v5/users/ghost", json={"description": "x"}), 404,
                     "USER_NOT_FOUND")
    # the new user can log in and use the API
    with api.bearer("ops_1", "s3cret-pw") as c:
        assert c.get("/api/v5/users").status_code == 200
        assert_error(c.delete("/api/v5/users/ops_1"), 400, "NOT_ALLOWED", "self")
    with api.client(auth=("admin", "public")) as c:
        r = c.delete("/api/v5/users/ops_1")
        assert r.status_code == 204 and r.content == b""
        assert_error(c.delete("/api/v5/users/ops_1"), 404, "USER_NOT_FOUND")
    with api.client() as c:
        assert_error(c.post("/api/v5/login", json={"username": "ops_1", "password": "s3cret-pw"}),
                     401, "WRONG_USERNAME_OR_PWD")


def test_user_validation(api):
    with api.client(auth=("admin", "public")) as c:
        cases = [({"username": "bad name", "password": "abc12345"}, "Bad Username"),
                 ({"username": "", "password": "abc12345"}, "Username"),
                 ({"username": "u1", "password": "short1"}, "8~64"),
                 ({"username": "u1", "password": "onlyletters"}, "Bad password"),
                 ({"username": "u1", "password": "12345678"}, "Bad password"),
                 ({"username": "u1", "password": "pässword1"}, "ascii"),
                 ({"username": "u1"}, "password")]
        for body, frag in cases:
            assert_error(c.post("/api/v5/users", json=body), 400, "BAD_REQUEST", frag)
        assert_error(c.put("/api/v5/users/admin", json={}), 400, "BAD_REQUEST", "description")


def test_change_password(api):
    with api.client(auth=("admin", "public")) as c:
        c.post("/api/v5/users", json={"username": "pw_user", "password": "first-pw1"})
    token_client = api.bearer("pw_user", "first-pw1")
    with api.client(auth=("admin", "public")) as c:
        url = "/api/v5/users/pw_user/change_pwd"
        assert_error(c.post(url, json={"old_pwd": "wrong-pw1", "new_pwd": "second-pw2"}),
                     400, "ERROR_PWD_NOT_MATCH")
        assert_error(c.post(url, json={"old_pwd": "first-pw1", "new_pwd": "short"}),
                     400, "BAD_REQUEST", "8~64")
        assert_error(c.post(url, json={"old_pwd": "", "new_pwd": "second-pw2"}),
                     400, "BAD_REQUEST")
        assert_error(c.post("/api/v5/users/ghost/change_pwd",
                            json={"old_pwd": "a", "new_pwd": "second-pw2"}), 404, "USER_NOT_FOUND")
        r = c.post(url, json={"old_pwd": "first-pw1", "new_pwd": "second-pw2"})
        assert r.status_code == 204 and r.content == b""
    # the user's sessions ended; the new password works, the old one does not
    with token_client:
        assert_error(token_client.get("/api/v5/users"), 401, "BAD_TOKEN")
    with api.client() as c:
        assert_error(c.post("/api/v5/login", json={"username": "pw_user", "password": "first-pw1"}),
                     401, "WRONG_USERNAME_OR_PWD")
    with api.client(auth=("pw_user", "second-pw2")) as c:
        assert c.get("/api/v5/users").status_code == 200
