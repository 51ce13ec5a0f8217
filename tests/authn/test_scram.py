"""scram:built_in_database: MQTT 5 enhanced authentication (CONNECT / AUTH / CONNACK)."""
import base64
import hashlib
import hmac
import secrets

import pytest

from support.rawmqtt import AUTH, CONNACK, connect_packet, packet, parse_props, props

from support.node import assert_error

METHOD, DATA = 0x15, 0x16
SCRAM_ID = "scram:built_in_database"


class ScramClient:
    """The client side of RFC 5802, written from the RFC for the test."""

    def __init__(self, user, password, alg="sha256"):
        self.user, self.password, self.alg = user, password, alg
        self.cnonce = base64.b64encode(secrets.token_bytes(12)).decode()
        self.bare = f"n={user},r={self.cnonce}"

    def first(self) -> bytes:
        return ("n,," + self.bare).encode()

    def final(self, server_first: bytes, tamper=False) -> bytes:
        sf = server_first.decode()
        a = dict(p.split("=", 1) for p in sf.split(","))
        assert a["r"].startswith(self.cnonce)
        salted = hashlib.pbkdf2_hmac(self.alg, self.password.encode(),
                                     base64.b64decode(a["s"]), int(a["i"]))
        ck = hmac.new(salted, b"Client Key", self.alg).digest()
        sk = hmac.new(salted, b"Server Key", self.alg).digest()
        without = f"c={base64.b64encode(b'n,,').decode()},r={a['r']}"
        auth = f"{self.bare},{sf},{without}".encode()
        sig = hmac.new(hashlib.new(self.alg, ck).digest(), auth, self.alg).digest()
        proof = bytes(x ^ y for x, y in zip(ck, sig))
        if tamper:
            proof = bytes([proof[0] ^ 1]) + proof[1:]
        self.expected_server = b"v=" + base64.b64encode(hmac.new(sk, auth, self.alg).digest())
        return f"{without},p={base64.b64encode(proof).decode()}".encode()


def auth_packet(method, data, code=0x18):
    return packet(AUTH, 0, bytes([code]) + props({METHOD: method, DATA: data}))


def exchange(n, clientid, client, method="SCRAM-SHA-256", tamper=False):
    """Run the exchange; returns (raw client, CONNACK packet)."""
    c = n.raw()
    c.send(connect_packet(clientid, properties={METHOD: method, DATA: client.first()}))
    p = c.recv()
    if p.type == CONNACK:
        return c, p
    assert p.type == AUTH and p.body[0] == 0x18
    pr, _ = parse_props(p.body, 1)
    assert pr[METHOD] == method
    c.send(auth_packet(method, client.final(pr[DATA], tamper)))
    return c, c.expect(CONNACK)


@pytest.mark.parametrize("alg", ["sha256", "sha512"])
def test_scram_exchange(make_broker, alg):
    n = make_broker()
    r = n.api.post("/authentication", json={"mechanism": "scram", "backend": "built_in_database",
                                            "algorithm": alg, "iteration_count": 64})
    assert r.status_code == 200, r.text
    r = n.api.post(f"/authentication/{SCRAM_ID}/users",
                   json={"user_id": "sam", "password": "pa55", "is_superuser": True})
    assert r.status_code == 201
    method = "SCRAM-SHA-256" if alg == "sha256" else "SCRAM-SHA-512"
    client = ScramClient("sam", "pa55", alg)
    c, ack = exchange(n, "sc1", client, method)
    assert ack.rc == 0
    assert ack.props[METHOD] == method and ack.props[DATA] == client.expected_server
    assert n.broker.channels["sc1"].is_superuser is True
    # wrong password, unknown user, unknown method
    c, ack = exchange(n, "sc2", ScramClient("sam", "nope", alg), method)
    assert ack.rc == 0x86
    c, ack = exchange(n, "sc3", ScramClient("sam", "pa55", alg), method, tamper=True)
    assert ack.rc == 0x86
    c, ack = exchange(n, "sc4", ScramClient("ghost", "pa55", alg), method)
    assert ack.rc == 0x87
    c, ack = exchange(n, "sc5", ScramClient("sam", "pa55", alg), "SCRAM-SHA-1")
    assert ack.rc == 0x8C
    # a plain CONNECT is not answered by a SCRAM authenticator
    assert n.connack("plain", username="sam", password="pa55") == 0x87
    users = n.api.get(f"/authentication/{SCRAM_ID}/users").json()
    assert users["data"] == [{"user_id": "sam", "is_superuser": True}]


def test_without_scram_authenticator(make_broker):
    n = make_broker()
    c, ack = exchange(n, "x", ScramClient("a", "b"))
    assert ack.rc == 0x8C
    assert_error(n.api.post("/authentication", json={"mechanism": "scram",
                                                     "backend": "built_in_database",
                                                     "algorithm": "md5"}), 400, "BAD_REQUEST")


def test_garbage_in_exchange(make_broker):
    n = make_broker()
    n.api.post("/authentication", json={"mechanism": "scram", "backend": "built_in_database",
                                        "iteration_count": 16})
    n.api.post(f"/authentication/{SCRAM_ID}/users", json={"user_id": "u", "password": "p"})
    c = n.raw()
    c.send(connect_packet("g1", properties={METHOD: "SCRAM-SHA-256", DATA: b"\xff\xfe"}))
    assert c.expect(CONNACK).rc == 0x87
    c = n.raw()
    cl = ScramClient("u", "p")
    c.send(connect_packet("g2", properties={METHOD: "SCRAM-SHA-256", DATA: cl.first()}))
    assert c.recv().type == AUTH
    c.send(auth_packet("SCRAM-SHA-256", b"c=biws,r=wrong,p=AAAA"))
    assert c.expect(CONNACK).rc == 0x86
    # a PUBLISH instead of the AUTH answer is a protocol error: the connection ends
    c = n.raw()
    c.send(connect_packet("g3", properties={METHOD: "SCRAM-SHA-256", DATA: cl.first()}))
    assert c.recv().type == AUTH
    c.send(bytes([0x30, 0x04, 0x00, 0x01, 0x74, 0x00]))
    c.expect_close()
    assert n.connack("ok-after", username="x") in (0x87,)  # broker still serving


def test_reauthentication(make_broker):
    from support.rawmqtt import DISCONNECT
    n = make_broker()
    n.api.post("/authentication", json={"mechanism": "scram", "backend": "built_in_database",
                                        "iteration_count": 16})
    n.api.post(f"/authentication/{SCRAM_ID}/users", json={"user_id": "ra", "password": "pw"})
    c, ack = exchange(n, "re1", ScramClient("ra", "pw"))
    assert ack.rc == 0
    # a fresh exchange on the live connection: AUTH 0x19 ... AUTH 0x00
    cl = ScramClient("ra", "pw")
    c.send(auth_packet("SCRAM-SHA-256", cl.first(), code=0x19))
    p = c.expect(AUTH)
    assert p.body[0] == 0x18
    c.send(auth_packet("SCRAM-SHA-256", cl.final(parse_props(p.body, 1)[0][DATA])))
    p = c.expect(AUTH)
    assert p.body[0] == 0x00 and parse_props(p.body, 1)[0][DATA] == cl.expected_server
    # a failed re-authentication ends the connection
    cl = ScramClient("ra", "wrong")
    c.send(auth_packet("SCRAM-SHA-256", cl.first(), code=0x19))
    p = c.expect(AUTH)
    c.send(auth_packet("SCRAM-SHA-256", cl.final(parse_props(p.body, 1)[0][DATA])))
    pkts = c.expect_close()
    assert pkts[-1].type == DISCONNECT and pkts[-1].rc == 0x86
    # re-authentication on a connection that did not use enhanced auth: protocol error
    n.api.post("/authentication", json={"mechanism": "password_based",
                                        "backend": "built_in_database"})
    n.api.post("/authentication/password_based:built_in_database/users",
               json={"user_id": "pl", "password": "pw"})
    c2, code = n.connect("re2", username="pl", password="pw")
    assert code == 0
    c2.send(auth_packet("SCRAM-SHA-256", ScramClient("ra", "pw").first(), code=0x19))
    pkts = c2.expect_close()
    assert pkts[-1].type == DISCONNECT and pkts[-1].rc == 0x82
