"""password_based:http against a real local HTTP service."""
import json
import socket
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from support.node import assert_error
from support.rawmqtt import connect_packet
from support.servers import HttpServer, QuietHandler

HTTP_ID = "password_based:http"


class AuthService:
    """users: username -> (password, superuser). Special usernames steer the answer."""

    def __init__(self):
        self.requests = []
        svc = self

        class H(QuietHandler):
            def _answer(self, params):
                svc.requests.append((self.command, self.path,
                                     {k.lower(): v for k, v in self.headers.items()}, params))
                user = params.get("username", "")
                if user == "slow":
                    time.sleep(3)
                if user == "err500":
                    return self.send_json(500, {"result": "allow"})
                if user == "nobody":
                    return self.send_json(200, {"result": "ignore"})
                if user == "nocontent":
                    return self.send_json(204, None)
                if user == "notjson":
                    return self.send_json(200, b"allow")
                ok = params.get("password") == "good"
                self.send_json(200, {"result": "allow" if ok else "deny",
                                 "is_superuser": user == "admin"})

            def do_POST(self):
                n = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(n).decode()
                if self.headers.get("content-type", "").startswith("application/json"):
                    params = json.loads(raw)
                else:
                    params = {k: v[0] for k, v in parse_qs(raw).items()}
                self._answer(params)

            def do_GET(self):
                q = parse_qs(urlsplit(self.path).query)
                self._answer({k: v[0] for k, v in q.items()})

        self.srv = HttpServer(H)
        self.port = self.srv.port

    def close(self):
        self.srv.close()


@pytest.fixture
def service():
    s = AuthService()
    yield s
    s.close()


def add_http(n, url, **cfg):
    body = {"mechanism": "password_based", "backend": "http", "method": "post", "url": url,
            "body": {"username": "${username}", "password": "${password}",
                     "clientid": "${clientid}", "peerhost": "${peerhost}"},
            "request_timeout": "1s", **cfg}
    r = n.api.post("/authentication", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_post_json(make_broker, service):
    n = make_broker()
    add_http(n, f"http://127.0.0.1:{service.port}/auth/${{clientid}}")
    assert n.connack("c1", username="alice", password="good") == 0
    method, path, headers, params = service.requests[-1]
    assert method == "POST" and path == "/auth/c1"
    assert params == {"username": "alice", "password": "good", "clientid": "c1",
                      "peerhost": "127.0.0.1"}
    assert n.connack("c2", username="alice", password="bad") == 0x86
    assert n.connack("c2", username="alice", password="bad", version=4) == 4
    assert n.connack("c3", username="nobody", password="good") == 0x87  # ignore
    assert n.connack("c4", username="err500", password="good") == 0x87  # non-2xx: ignore
    assert n.connack("c5", username="notjson", password="good") == 0x87
    assert n.connack("c6", username="nocontent", password="x") == 0  # 204: allow
    c, code = n.connect("c7", username="admin", password="good")
    assert code == 0 and n.broker.channels["c7"].is_superuser
    m = n.api.get(f"/authentication/{HTTP_ID}/status").json()
    assert m["status"] == "connected"
    assert m["metrics"]["success"] == 3 and m["metrics"]["failed"] == 2


def test_get_and_form(make_broker, service):
    n = make_broker()
    add_http(n, f"http://127.0.0.1:{service.port}/check", method="get")
    assert n.connack("g1", username="bob", password="good") == 0
    method, path, headers, params = service.requests[-1]
    assert method == "GET" and path.startswith("/check?") and params["clientid"] == "g1"
    n2 = make_broker()
    add_http(n2, f"http://127.0.0.1:{service.port}/form",
             headers={"content-type": "application/x-www-form-urlencoded"})
    assert n2.connack("f1", username="bob", password="good") == 0
    assert n2.connack("f1", username="bob", password="nope") == 0x86
    assert service.requests[-1][2]["content-type"].startswith("application/x-www-form")


def test_unreachable_and_slow_backends(make_broker, service):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens there once closed
    n = make_broker()
    add_http(n, f"http://127.0.0.1:{dead}/auth")
    assert n.connack("c1", username="alice", password="good") == 0x87
    st = n.api.get(f"/authentication/{HTTP_ID}/status").json()
    assert st["status"] == "disconnected" and st["node_error"]
    # the chain goes on after an ignoring authenticator: a built-in user still gets in
    r = n.api.post("/authentication", json={"mechanism": "password_based",
                                            "backend": "built_in_database"})
    assert r.status_code == 200
    n.api.post("/authentication/password_based:built_in_database/users",
               json={"user_id": "local", "password": "pw"})
    assert n.connack("c2", username="local", password="pw") == 0
    # a backend slower than request_timeout: ignored; the broker keeps serving others meanwhile
    n2 = make_broker()
    add_http(n2, f"http://127.0.0.1:{service.port}/auth")
    slow = n2.raw()
    slow.send(connect_packet("slowpoke", username="slow", password=b"good"))
    assert n2.connack("fast", username="alice", password="good") == 0
    assert slow.expect(2, timeout=10).rc == 0x87


def test_validation(make_broker):
    n = make_broker()
    assert_error(n.api.post("/authentication", json={
        "mechanism": "password_based", "backend": "http", "url": "ftp://x"}),
        400, "BAD_REQUEST")
    assert_error(n.api.post("/authentication", json={
        "mechanism": "password_based", "backend": "http", "url": "http://x",
        "request_timeout": "soon"}), 400, "BAD_REQUEST")
    assert_error(n.api.post("/authentication", json={
        "mechanism": "password_based", "backend": "http", "url": "http://x", "pool_size": 0}),
        400, "BAD_REQUEST")
