"""jwt authentication: HMAC, public keys, JWKS, claims, expiry."""
import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from support.node import assert_error
from support.rawmqtt import DISCONNECT
from support.servers import HttpServer, QuietHandler


def add_jwt(n, **cfg):
    r = n.api.post("/authentication", json={"mechanism": "jwt", **cfg})
    assert r.status_code == 200, r.text
    return r.json()


def tok(key, alg="HS256", headers=None, **claims):
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def test_hmac(make_broker):
    n = make_broker()
    cfg = add_jwt(n, algorithm="hmac-based", secret="k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y", verify_claims={"sub": "${clientid}"})
    assert cfg["secret"] == "******" and cfg["from"] == "password"
    now = time.time()
    assert n.connack("dev1", username="u", password=tok("k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y", sub="dev1")) == 0
    assert n.connack("dev1", username="u", password=tok("k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y", sub="dev1", exp=now + 600),
                     version=4) == 0
    # claim mismatch, expired, not yet valid: refused
    assert n.connack("dev2", password=tok("k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y", sub="dev1")) == 0x86
    assert n.connack("dev1", password=tok("k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y", sub="dev1", exp=now - 10)) == 0x86
    assert n.connack("dev1", password=tok("k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y", sub="dev1", nbf=now + 600)) == 0x86
    assert n.connack("dev1", password=tok("k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y")) == 0x86  # the verified claim is missing
    # another key or garbage: ignored, so nobody else says yes -> not authorized
    assert n.connack("dev1", password=tok("other", sub="dev1")) == 0x87
    assert n.connack("dev1", password="not.a.jwt") == 0x87
    assert n.connack("dev1", password="\x00garbage") == 0x87
    assert n.connack("dev1") == 0x87


def test_hmac_base64_secret_from_username_and_superuser(make_broker):
    n = make_broker()
    raw = b"\x01\x02binary-secret" * 5
    add_jwt(n, algorithm="hmac-based", secret=base64.b64encode(raw).decode(),
            secret_base64_encoded=True, **{"from": "username"},
            verify_claims={"username": "${username}"})
    t = tok(raw, "HS512", username="ignored", is_superuser=True)
    # the token is the username here, so ${username} renders to the token itself
    assert n.connack("c", username=t, password="x") == 0x86
    t = tok(raw, "HS512", is_superuser=True)
    add = n.api.put("/authentication/jwt", json={**n.api.get("/authentication/jwt").json(),
                                                 "verify_claims": {}})
    assert add.status_code == 204, add.text
    c, code = n.connect("su", username=t)
    assert code == 0 and n.broker.channels["su"].is_superuser is True
    assert_error(n.api.post("/authentication", json={"mechanism": "jwt",
                                                     "algorithm": "hmac-based"}),
                 400, "BAD_REQUEST")


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_public_key(make_broker, kind):
    if kind == "rsa":
        priv, alg = rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"
    else:
        priv, alg = ec.generate_private_key(ec.SECP256R1()), "ES256"
    pem = priv.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    n = make_broker()
    add_jwt(n, algorithm="public-key", public_key=pem.decode())
    assert n.connack("c", password=tok(priv, alg, sub="x")) == 0
    other = ec.generate_private_key(ec.SECP256R1())
    assert n.connack("c", password=tok(other, "ES256", sub="x")) == 0x87
    assert n.connack("c", password=tok("hmac-key-same-alg-family-hmac-key-same", "HS256")) == 0x87
    assert_error(n.api.post("/authentication", json={"mechanism": "jwt",
                                                     "algorithm": "public-key",
                                                     "public_key": "not a key"}),
                 400, "BAD_REQUEST")


def test_disconnect_after_expire(make_broker):
    n = make_broker()
    add_jwt(n, algorithm="hmac-based", secret="s-s-s-s-s-s-s-s-s-s-s-s-s-s-s-s-s")
    c, code = n.connect("short", password=tok("s-s-s-s-s-s-s-s-s-s-s-s-s-s-s-s-s", exp=int(time.time()) + 2))
    assert code == 0
    pkts = c.expect_close(timeout=10)
    assert pkts and pkts[-1].type == DISCONNECT and pkts[-1].rc == 0x87


class _Jwks(QuietHandler):
    body = b"{}"

    def do_GET(self):
        self.send_json(200, self.body)


def test_jwks(make_broker):
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(priv.public_key()))
    jwk.update(kid="k1", alg="RS256", use="sig")
    handler = type("H", (_Jwks,), {"body": json.dumps({"keys": [jwk]}).encode()})
    srv = HttpServer(handler)
    try:
        n = make_broker()
        add_jwt(n, use_jwks=True, endpoint=srv.url("/jwks"))
        t = tok(priv, "RS256", headers={"kid": "k1"}, sub="a")
        assert n.connack("c", password=t) == 0
        wrong = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        assert n.connack("c", password=tok(wrong, "RS256", headers={"kid": "k1"})) == 0x87
        assert n.api.get("/authentication/jwt/status").json()["status"] == "connected"
    finally:
        srv.close()
    # endpoint gone: tokens cannot be checked, clients are refused, status shows it
    n2 = make_broker()
    add_jwt(n2, use_jwks=True, endpoint=srv.url("/jwks"))
    assert n2.connack("c", password=tok(priv, "RS256", headers={"kid": "k1"})) == 0x87
    st = n2.api.get("/authentication/jwt/status").json()
    assert st["status"] == "disconnected" and st["node_error"]


def test_acl_claim(make_broker):
    from support.rawmqtt import SUBACK, publish_packet, subscribe_packet
    n = make_broker({"authorization": {"no_match": "allow", "sources": []}})
    key = "acl-key-acl-key-acl-key-acl-key-acl"
    add_jwt(n, algorithm="hmac-based", secret=key)
    acl = [{"permission": "allow", "action": "sub", "topic": "own/${clientid}/#"},
           {"permission": "deny", "action": "all", "topic": "own/#"},
           {"permission": "allow", "action": "pub", "topic": "up/+", "qos": [1]},
           {"permission": "deny", "action": "pub", "topic": "up/#"}]
    c, code = n.connect("dev9", password=tok(key, acl=acl, exp=int(time.time()) + 600))
    assert code == 0
    c.send(subscribe_packet(1, [("own/dev9/x", 0), ("own/other/x", 0), ("free/x", 0)]))
    assert c.expect(SUBACK).rcs == [0, 0x87, 0]  # unmatched: sources / no_match decide
    c.send(publish_packet("up/a", b"x", qos=1, pid=2))
    assert c.expect(4).rc == 0x10
    c.send(publish_packet("up/a", b"x", qos=2, pid=3))
    assert c.expect(5).rc == 0x87
    # the older map form: only the listed topics are granted (everything else: no_match)
    c2, code = n.connect("dev10", password=tok(key, acl={"sub": ["m/#"]}))
    c2.send(subscribe_packet(1, [("m/1", 0)]))
    assert c2.expect(SUBACK).rcs == [0]
    # a takeover by a connection with the same token keeps its rules
    c4, code = n.connect("dev9", password=tok(key, acl=acl, exp=int(time.time()) + 600))
    assert code == 0
    c4.send(subscribe_packet(1, [("own/other/x", 0)]))
    assert c4.expect(SUBACK).rcs == [0x87]
    # other clients are not affected by dev9's token
    c3, _ = n.connect("plain", password=tok(key))
    c3.send(subscribe_packet(1, [("own/other/x", 0)]))
    assert c3.expect(SUBACK).rcs == [0]
