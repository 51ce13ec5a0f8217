"""http, redis and postgresql authorization sources, seen by MQTT clients."""
import json
import socket
import time

import pytest

from support.node import assert_error
from support.rawmqtt import PUBACK, SUBACK, publish_packet, subscribe_packet
from support.servers import PG_PASSWORD, REDIS_PASSWORD, HttpServer, QuietHandler, free_port


def sub(c, topics, pid=1):
    c.send(subscribe_packet(pid, [(t, q) for t, q in topics]))
    return c.expect(SUBACK).rcs


def pub(c, topic, pid=7, qos=1):
    c.send(publish_packet(topic, b"x", qos=qos, pid=pid))
    return c.expect(PUBACK).rc


class AclService:
    """Allows topics under `ok/`, denies `no/`, ignores the rest; `slow/` waits 2s first."""

    def __init__(self):
        self.requests = []
        svc = self

        class H(QuietHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                svc.requests.append(body)
                t = body["topic"]
                if t.startswith("slow/"):
                    time.sleep(2)
                result = "allow" if t.startswith(("ok/", "slow/")) else \
                    "deny" if t.startswith("no/") else "ignore"
                self.send_json(200, {"result": result})

        self.srv = HttpServer(H)
        self.url = self.srv.url("/acl")

    def close(self):
        self.srv.close()


@pytest.fixture
def acl_service():
    s = AclService()
    yield s
    s.close()


def http_source(url, **kw):
    return {"type": "http", "method": "post", "url": url, "request_timeout": "1s",
            "body": {"clientid": "${clientid}", "username": "${username}",
                     "topic": "${topic}", "action": "${action}", "qos": "${qos}",
                     "retain": "${retain}"}, **kw}


@pytest.mark.parametrize("cache", [True, False])
def test_http_source(make_broker, acl_service, cache):
    n = make_broker({"authorization": {"no_match": "deny", "cache": {"enable": cache},
                                "sources": [http_source(acl_service.url)]}})
    c, code = n.connect("h1", username="hu")
    assert code == 0
    assert sub(c, [("ok/a", 1), ("no/b", 0), ("other", 0), ("ok/c", 2)]) == [1, 0x87, 0x87, 2]
    assert pub(c, "ok/x") == 0x10
    assert pub(c, "no/x", pid=8) == 0x87
    assert pub(c, "other", pid=9) == 0x87  # ignored by the service -> no_match deny
    # QoS 0 publishes behind a deferred one keep their order
    c.send(publish_packet("ok/a", b"1") + publish_packet("ok/a", b"2", qos=1, pid=11))
    got = [c.recv() for _ in range(3)]  # two PUBLISHes to ourselves and the PUBACK of pid 11
    assert [p.payload for p in got if p.type == 3] == [b"1", b"2"]
    assert [p.pid for p in got if p.type == PUBACK] == [11]
    req = [r for r in acl_service.requests if r["topic"] == "ok/x"][0]
    assert req == {"clientid": "h1", "username": "hu", "topic": "ok/x", "action": "publish",
                   "qos": "1", "retain": "false"}
    before = len(acl_service.requests)
    assert pub(c, "ok/x", pid=12) == 0x10
    assert (len(acl_service.requests) == before) is cache  # cached answers skip the service
    st = n.api.get("/authorization/sources/http/status").json()
    assert st["status"] == "connected" and st["metrics"]["allow"] >= 2


def test_slow_and_dead_http_source(make_broker, acl_service):
    n = make_broker({"authorization": {"no_match": "deny",
                                       "sources": [http_source(acl_service.url)]}})
    slow, _ = n.connect("slowc")
    slow.send(subscribe_packet(1, [("slow/1", 0)]))  # the service takes 2s (> timeout 1s)
    fast, _ = n.connect("fastc")
    assert sub(fast, [("ok/1", 0)]) == [0]  # other clients are not held up
    assert slow.expect(SUBACK, timeout=10).rcs == [0x87]  # timed out: ignored -> no_match
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    r = n.api.put("/authorization/sources/http", json=http_source(f"http://127.0.0.1:{dead}/"))
    assert r.status_code == 204, r.text
    assert sub(fast, [("ok/2", 0)], pid=2) == [0x87]
    st = n.api.get("/authorization/sources/http/status").json()
    assert st["status"] == "disconnected"
    assert_error(n.api.put("/authorization/sources/http", json={"url": "ftp://x"}),
                 400, "BAD_REQUEST")


def test_redis_source(make_broker, redis_server):
    r = redis_server.client()
    r.hset("mqtt_acl:ru", mapping={"ru/#": "all", "pub/only": "publish",
                                   "q1/#": json.dumps({"action": "subscribe", "qos": [1]})})
    n = make_broker({"authorization": {"no_match": "deny", "sources": [
        {"type": "redis", "server": f"127.0.0.1:{redis_server.port}",
         "password": REDIS_PASSWORD, "cmd": "HGETALL mqtt_acl:${username}"}]}})
    assert n.api.get("/authorization/sources/redis").json()["password"] == "******"
    c, _ = n.connect("r1", username="ru")
    assert sub(c, [("ru/a", 0), ("pub/only", 0), ("q1/x", 1), ("q1/y", 0)]) == [0, 0x87, 1, 0x87]
    assert pub(c, "pub/only") == 0x10
    other, _ = n.connect("r2", username="nobody")
    assert sub(other, [("ru/a", 0)]) == [0x87]
    # redis down: every answer is "ignore" -> no_match
    n2 = make_broker({"authorization": {"no_match": "deny", "sources": [
        {"type": "redis", "server": f"127.0.0.1:{free_port()}",
         "cmd": "HGETALL mqtt_acl:${username}"}]}})
    c, _ = n2.connect("r3", username="ru")
    assert sub(c, [("ru/a", 0)]) == [0x87]
    assert n2.api.get("/authorization/sources/redis/status").json()["status"] == "disconnected"


def test_postgresql_source(make_broker, pg_server):
    pg_server.sql(
        "CREATE TABLE mqtt_acl (username text, permission text, action text, topic text,"
        " qos int, retain int)",
        "INSERT INTO mqtt_acl VALUES ('pu', 'deny', 'all', 'pg/secret', NULL, NULL)",
        "INSERT INTO mqtt_acl VALUES ('pu', 'allow', 'all', 'pg/#', NULL, NULL)",
        "INSERT INTO mqtt_acl VALUES ('pu', 'allow', 'publish', 'r/x', 1, 0)")
    n = make_broker({"authorization": {"no_match": "deny", "sources": [
        {"type": "postgresql", "server": f"127.0.0.1:{pg_server.port}", "database": "postgres",
         "username": "postgres", "password": PG_PASSWORD,
         "query": "SELECT permission, action, topic, qos, retain FROM mqtt_acl "
                  "WHERE username = ${username}"}]}})
    c, _ = n.connect("p1", username="pu")
    assert sub(c, [("pg/a", 0), ("pg/secret", 0), ("elsewhere", 0)]) == [0, 0x87, 0x87]
    assert pub(c, "r/x") == 0x10
    c.send(publish_packet("r/x", b"x", qos=1, pid=8, retain=True))
    assert c.expect(PUBACK).rc == 0x87
    st = n.api.get("/authorization/sources/postgresql/status").json()
    assert st["status"] == "connected"
    assert "pg-pw" not in n.api.get("/authorization/sources").text
