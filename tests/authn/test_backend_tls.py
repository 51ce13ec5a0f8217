"""TLS options emqpy cannot honour yet are refused with 400, never silently ignored."""
from support.node import assert_error


def test_database_backend_tls_is_refused(make_broker):
    n = make_broker()
    for backend, extra in (("postgresql", {"database": "mqtt", "query": "SELECT 1"}),
                           ("redis", {"redis_type": "single", "cmd": "HMGET mqtt_user:${username} password_hash",
                                      "database": 0})):
        body = {"mechanism": "password_based", "backend": backend, "server": "127.0.0.1:1",
                "ssl": {"enable": True}, "password_hash_algorithm": {"name": "plain"}, **extra}
        r = n.api.post("/authentication", json=body)
        assert_error(r, 400, "BAD_REQUEST")
        assert "ssl" in r.json()["message"]
    assert n.api.get("/authentication").json() == []


def test_http_backend_client_certificates_are_refused(make_broker):
    n = make_broker()
    body = {"mechanism": "password_based", "backend": "http", "url": "https://127.0.0.1:1/auth",
            "ssl": {"enable": True, "certfile": "/tmp/c.pem", "keyfile": "/tmp/k.pem"}}
    r = n.api.post("/authentication", json=body)
    assert_error(r, 400, "BAD_REQUEST")
    assert "ssl" in r.json()["message"]
