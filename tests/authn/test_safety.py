"""Secrets stay out of logs and API answers; bad input never takes the broker down."""
import logging
import socket

from support.rawmqtt import CONNACK

SECRET_PW = "client-pw-6f1c"
JWT_SECRET = "jwt-secret-0a9b-0a9b-0a9b-0a9b-0a9b"
REDIS_PW = "redis-pw-77e2"


def test_secrets_not_logged_or_shown(make_broker, caplog):
    caplog.set_level(logging.DEBUG)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    n = make_broker()
    for body in (
        {"mechanism": "jwt", "algorithm": "hmac-based", "secret": JWT_SECRET},
        {"mechanism": "password_based", "backend": "http",
         "url": f"http://127.0.0.1:{dead}/auth", "body": {"p": "${password}"}},
        {"mechanism": "password_based", "backend": "redis", "server": f"127.0.0.1:{dead}",
         "password": REDIS_PW, "cmd": "HMGET u:${username} password_hash salt"},
        {"mechanism": "password_based", "backend": "built_in_database"},
    ):
        assert n.api.post("/authentication", json=body).status_code == 200
    n.api.post("/authentication/password_based:built_in_database/users",
               json={"user_id": "u", "password": SECRET_PW})
    assert n.connack("c1", username="u", password=SECRET_PW) == 0
    assert n.connack("c2", username="u", password=SECRET_PW + "x") == 0x86
    assert n.connack("c3", username="v", password=SECRET_PW) == 0x87
    listing = n.api.get("/authentication").text
    for s in (JWT_SECRET, REDIS_PW):
        assert s not in listing
        for aid in ("jwt", "password_based:redis"):
            assert s not in n.api.get(f"/authentication/{aid}").text
    for s in (SECRET_PW, JWT_SECRET, REDIS_PW):
        assert s not in caplog.text
    stored = n.broker.store.query("SELECT password_hash FROM authn_users")
    assert all(SECRET_PW not in r["password_hash"] for r in stored)


def test_malformed_connects_with_authn(make_broker):
    n = make_broker()
    n.api.post("/authentication", json={"mechanism": "password_based",
                                        "backend": "built_in_database"})
    n.api.post("/authentication", json={"mechanism": "jwt", "algorithm": "hmac-based",
                                        "secret": JWT_SECRET})
    for pw in (b"\xff\xfe\x00", b"a.b.c", b"e30.e30.", b"x" * 60000, b""):
        c = n.raw()
        from support.rawmqtt import connect_packet
        c.send(connect_packet("m", username="u", password=pw))
        assert c.expect(CONNACK).rc in (0x86, 0x87)
    assert n.connack("still-alive", username="u", password="x") == 0x87
