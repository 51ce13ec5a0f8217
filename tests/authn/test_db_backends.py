"""password_based:redis and password_based:postgresql against real servers."""
import hashlib

import bcrypt
import pytest

from support.node import assert_error
from support.servers import PG_PASSWORD, REDIS_PASSWORD, free_port

pytest.importorskip("redis")
pytest.importorskip("asyncpg")


def sha256_prefix(salt: str, pw: str) -> str:
    return hashlib.sha256((salt + pw).encode()).hexdigest()


def add(n, body):
    r = n.api.post("/authentication", json={"mechanism": "password_based", **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_redis(make_broker, redis_server):
    r = redis_server.client()
    r.hset("mqtt_user:alice", mapping={"password_hash": sha256_prefix("s4lt", "pw"),
                                       "salt": "s4lt", "is_superuser": "1"})
    r.hset("mqtt_user:bob", mapping={"password_hash": sha256_prefix("x", "pw"), "salt": "x"})
    n = make_broker()
    cfg = add(n, {"backend": "redis", "server": f"127.0.0.1:{redis_server.port}",
                  "password": REDIS_PASSWORD, "database": 0,
                  "cmd": "HMGET mqtt_user:${username} password_hash salt is_superuser"})
    assert cfg["password"] == "******"
    c, code = n.connect("c1", username="alice", password="pw")
    assert code == 0 and n.broker.channels["c1"].is_superuser is True
    c, code = n.connect("c2", username="bob", password="pw")
    assert code == 0 and n.broker.channels["c2"].is_superuser is False
    assert n.connack("c3", username="bob", password="wrong") == 0x86
    assert n.connack("c4", username="carol", password="pw") == 0x87  # no such user: ignore
    assert n.api.get("/authentication/password_based:redis/status").json()["status"] \
        == "connected"
    assert REDIS_PASSWORD not in n.api.get("/authentication").text
    # HGET form with bcrypt
    r.hset("bc:dave", "password_hash", bcrypt.hashpw(b"bpw", bcrypt.gensalt(5)).decode())
    n2 = make_broker()
    add(n2, {"backend": "redis", "server": f"127.0.0.1:{redis_server.port}",
             "password": REDIS_PASSWORD, "cmd": "HGET bc:${username} password_hash",
             "password_hash_algorithm": {"name": "bcrypt"}})
    assert n2.connack("d", username="dave", password="bpw") == 0
    assert n2.connack("d", username="dave", password="no") == 0x86


def test_redis_failures(make_broker, redis_server):
    n = make_broker()
    assert_error(n.api.post("/authentication", json={
        "mechanism": "password_based", "backend": "redis", "server": "127.0.0.1:1",
        "cmd": "GET ${username}"}), 400, "BAD_REQUEST")
    # wrong password for redis itself, then a dead port: clients are refused, never stuck
    add(n, {"backend": "redis", "server": f"127.0.0.1:{redis_server.port}",
            "password": "not-it", "cmd": "HMGET u:${username} password_hash salt"})
    assert n.connack("c", username="alice", password="pw") == 0x87
    st = n.api.get("/authentication/password_based:redis/status").json()
    assert st["status"] == "disconnected" and st["node_error"]
    n2 = make_broker()
    add(n2, {"backend": "redis", "server": f"127.0.0.1:{free_port()}",
             "cmd": "HMGET u:${username} password_hash salt"})
    assert n2.connack("c", username="alice", password="pw") == 0x87
    assert n2.api.get("/authentication/password_based:redis/status").json()["status"] \
        == "disconnected"


def test_postgresql(make_broker, pg_server):
    pg_server.sql(
        "CREATE TABLE mqtt_user (username text primary key, password_hash text, salt text,"
        " is_superuser boolean)",
        ("INSERT INTO mqtt_user VALUES ($1, $2, $3, $4)", "alice",
         hashlib.sha512(b"pw" + b"pep").hexdigest(), "pep", True),
        ("INSERT INTO mqtt_user VALUES ($1, $2, $3, $4)", "o'brien",
         hashlib.sha512(b"pw2" + b"q").hexdigest(), "q", False))
    n = make_broker()
    cfg = add(n, {"backend": "postgresql", "server": f"127.0.0.1:{pg_server.port}",
                  "database": "postgres", "username": "postgres", "password": PG_PASSWORD,
                  "password_hash_algorithm": {"name": "sha512", "salt_position": "suffix"},
                  "query": "SELECT password_hash, salt, is_superuser FROM mqtt_user "
                           "WHERE username = ${username} LIMIT 1"})
    assert cfg["password"] == "******"
    c, code = n.connect("p1", username="alice", password="pw")
    assert code == 0 and n.broker.channels["p1"].is_superuser is True
    assert n.connack("p2", username="o'brien", password="pw2") == 0  # parameters, not splicing
    assert n.connack("p3", username="alice", password="bad") == 0x86
    assert n.connack("p4", username="' OR '1'='1", password="pw") == 0x87
    assert n.api.get("/authentication/password_based:postgresql/status").json()["status"] \
        == "connected"
    # a broken query is a backend fault: ignored and reported
    n.api.put("/authentication/password_based:postgresql",
              json={**n.api.get("/authentication/password_based:postgresql").json(),
                    "query": "SELECT nope FROM missing WHERE x = ${username}"})
    assert n.connack("p5", username="alice", password="pw") == 0x87
    # the server goes away
    n2 = make_broker()
    add(n2, {"backend": "postgresql", "server": f"127.0.0.1:{free_port()}",
             "database": "postgres", "username": "postgres", "password": "x",
             "query": "SELECT password_hash FROM mqtt_user WHERE username = ${username}"})
    assert n2.connack("p6", username="alice", password="pw") == 0x87
    st = n2.api.get("/authentication/password_based:postgresql/status").json()
    assert st["status"] == "disconnected"
