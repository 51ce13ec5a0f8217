"""The seed's API-key flow, field for field, and the /api_key endpoints' validation."""
import re
import time
from datetime import datetime, timezone

from support.node import assert_error

SEED_FIELDS = {"api_key", "api_secret", "created_at", "desc", "enable", "expired", "expired_at",
               "name"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def local_rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(int(ts)).astimezone().isoformat(timespec="seconds")


def test_seed_create_then_use_the_key(api):
    # The seed's request, with an expiry in the future.
    with api.client(auth=("admin", "public"), headers={"accept": "application/json"}) as c:
        r = c.post("/api/v5/api_key", json={"name": "EMQX-API-KEY-3",
                                            "expired_at": "2099-12-05T02:01:34.186Z",
                                            "desc": "for testing", "enable": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == sorted(SEED_FIELDS)  # the seed's fields, in the seed's order
    assert re.fullmatch(r"[0-9a-f]{16}", body["api_key"])
    assert re.fullmatch(r"[A-Za-z0-9]{43}", body["api_secret"])
    assert RFC3339.match(body["created_at"])
    created = datetime.fromisoformat(body["created_at"]).timestamp()
    assert abs(created - time.time()) < 600
    assert body["created_at"] == local_rfc3339(created)  # the node's own offset
    expect_exp = datetime(2099, 12, 5, 2, 1, 34, tzinfo=timezone.utc).timestamp()
    assert body["expired_at"] == local_rfc3339(expect_exp)
    assert body["desc"] == "for testing" and body["enable"] is True
    assert body["expired"] is False and body["name"] == "EMQX-API-KEY-3"
    with api.client(auth=(body["api_key"], body["api_secret"])) as c:
        assert c.get("/api/v5/probe/whoami").json()["kind"] == "api_key"
    # The secret is shown only once.
    with api.client(auth=("admin", "public")) as c:
        one = c.get("/api/v5/api_key/EMQX-API-KEY-3").json()
        assert "api_secret" not in one and set(one) == SEED_FIELDS - {"api_secret"}
        listed = c.get("/api/v5/api_key").json()
        assert isinstance(listed, list)
        assert all("api_secret" not in k for k in listed)
        assert one in listed


def test_seed_past_expiry_creates_an_expired_key(api):
    # The seed's literal date (2022) has passed; EMQX still creates the key, already expired,
    # and refuses it when used.
    with api.client(auth=("admin", "public")) as c:
        r = c.post("/api/v5/api_key", json={"name": "EMQX-API-KEY-PAST",
                                            "expired_at": "2022-12-05T02:01:34.186Z",
                                            "desc": "for testing", "enable": True})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["expired"] is True
        expect_exp = datetime(2022, 12, 5, 2, 1, 34, tzinfo=timezone.utc).timestamp()
        assert body["expired_at"] == local_rfc3339(expect_exp)
        assert c.get("/api/v5/api_key/EMQX-API-KEY-PAST").json()["expired"] is True
    with api.client(auth=(body["api_key"], body["api_secret"])) as c:
        assert_error(c.get("/api/v5/probe/whoami"), 401,
                     "WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET")
    # Moving the expiry to the future makes the same key usable.
    with api.client(auth=("admin", "public")) as c:
        r = c.put("/api/v5/api_key/EMQX-API-KEY-PAST", json={"expired_at": "2099-01-01T00:00:00Z"})
        assert r.status_code == 200 and r.json()["expired"] is False
    with api.client(auth=(body["api_key"], body["api_secret"])) as c:
        assert c.get("/api/v5/probe/whoami").json()["kind"] == "api_key"


def test_expired_at_forms_and_defaults(api):
    later = int(time.time()) + 86400
    with api.client(auth=("admin", "public")) as c:
        r = c.post("/api/v5/api_key", json={"name": "k-epoch", "expired_at": later})
        assert r.json()["expired_at"] == local_rfc3339(later)
        r = c.post("/api/v5/api_key", json={"name": "k-default"})
        b = r.json()
        assert b["expired_at"] == "infinity" and b["enable"] is True and b["desc"] == ""
        r = c.post("/api/v5/api_key", json={"name": "k-inf", "expired_at": "infinity",
                                            "enable": False})
        assert r.json()["expired_at"] == "infinity" and r.json()["enable"] is False
        r = c.post("/api/v5/api_key", json={"name": "k-offset",
                                            "expired_at": "2099-01-01T10:00:00+02:00"})
        ts = datetime(2099, 1, 1, 8, 0, 0, tzinfo=timezone.utc).timestamp()
        assert r.json()["expired_at"] == local_rfc3339(ts)
        for bad in ("tomorrow", "2099-01-01", "2099-01-01T00:00:00", True, [1], 10**20,
                    "0001-01-01T00:00:00+01:00"):
            assert_error(c.post("/api/v5/api_key", json={"name": "k-bad", "expired_at": bad}),
                         400, "BAD_REQUEST", "expired_at")
        # Any epoch second is taken, past ones too (EMQX's ensure_expired_at has no past check).
        for name, past in (("k-past", 1000), ("k-pre-epoch", -5)):
            r = c.post("/api/v5/api_key", json={"name": name, "expired_at": past})
            assert r.status_code == 200, r.text
            assert r.json()["expired"] is True
            assert r.json()["expired_at"] == local_rfc3339(past)


def test_name_rules_and_conflicts(api):
    with api.client(auth=("admin", "public")) as c:
        for bad in ("1abc", "-x", "a b", "ключ", "a" * 257, ""):
            assert_error(c.post("/api/v5/api_key", json={"name": bad}), 400, "BAD_REQUEST", "name")
        assert c.post("/api/v5/api_key", json={"name": "Dup_key-1"}).status_code == 200
        assert_error(c.post("/api/v5/api_key", json={"name": "Dup_key-1"}), 409, "ALREADY_EXISTS")
        assert_error(c.get("/api/v5/api_key/1bad"), 400, "BAD_REQUEST", "name")


def test_update_get_delete(api):
    with api.client(auth=("admin", "public")) as c:
        created = c.post("/api/v5/api_key", json={"name": "k-upd", "desc": "one"}).json()
        r = c.put("/api/v5/api_key/k-upd", json={"desc": "two", "enable": False,
                                                 "expired_at": "2099-06-01T00:00:00Z"})
        assert r.status_code == 200
        b = r.json()
        assert b["desc"] == "two" and b["enable"] is False and b["expired_at"].startswith("2099")
        assert b["api_key"] == created["api_key"] and "api_secret" not in b
        # desc and enable left out keep their values; expired_at left out becomes "infinity",
        # as EMQX's ensure_expired_at(_) -> infinity makes it.
        b2 = c.put("/api/v5/api_key/k-upd", json={"enable": True}).json()
        assert b2["desc"] == "two" and b2["enable"] is True
        assert b2["expired_at"] == "infinity" and b2["expired"] is False
        b3 = c.put("/api/v5/api_key/k-upd", json={"expired_at": 5}).json()
        assert b3["expired"] is True and b3["expired_at"] == local_rfc3339(5)
        assert c.put("/api/v5/api_key/k-upd", json={}).json()["expired_at"] == "infinity"
        assert_error(c.put("/api/v5/api_key/k-upd", json={"expired_at": "soon"}), 400,
                     "BAD_REQUEST", "expired_at")
        assert_error(c.put("/api/v5/api_key/k-missing", json={"desc": "x"}), 404, "NOT_FOUND")
        assert_error(c.get("/api/v5/api_key/k-missing"), 404, "NOT_FOUND")
        r = c.delete("/api/v5/api_key/k-upd")
        assert r.status_code == 204 and r.content == b""
        assert_error(c.delete("/api/v5/api_key/k-upd"), 404, "NOT_FOUND")
        assert_error(c.get("/api/v5/api_key/k-upd"), 404, "NOT_FOUND")


def test_bearer_token_manages_keys(api):
    with api.bearer() as c:
        r = c.post("/api/v5/api_key", json={"name": "k-bearer"})
        assert r.status_code == 200 and "api_secret" in r.json()
        assert c.delete("/api/v5/api_key/k-bearer").status_code == 204
