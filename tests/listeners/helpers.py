"""Helpers for the listener tests: a test PKI made here with `cryptography` (independent of
emqpy's own default-certificate code) and paho clients over tcp/ssl/ws/wss."""
from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from support.mqttclient import MqttClient
from support.waiting import WAIT



def issue_cert(subject_cn, issuer_key, issuer_name, key, *, ca=False, sans=(), eku=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name or name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1))
         .not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(s)) if s[0].isdigit() else x509.DNSName(s)
             for s in sans]), critical=False)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    deep_client_cert: Path  # signed by an intermediate CA (chain depth 1)
    deep_client_key: Path
    deep_chain: Path        # intermediate CA certificate, sent by the client


def write_pem(path: Path, obj) -> Path:
    """A certificate or a private key (unencrypted PKCS#8) as a PEM file."""
    if isinstance(obj, x509.Certificate):
        path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(obj.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return path


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    d = tmp_path_factory.mktemp("pki")

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def write(name, obj):
        return write_pem(d / name, obj)

    ca_key = key()
    ca = issue_cert("Test Root CA", ca_key, None, ca_key, ca=True)
    skey = key()
    srv = issue_cert("localhost", ca_key, ca.subject, skey, sans=("localhost", "127.0.0.1"),
                eku=ExtendedKeyUsageOID.SERVER_AUTH)
    ckey = key()
    cli = issue_cert("device-42", ca_key, ca.subject, ckey, eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    ikey = key()
    inter = issue_cert("Test Intermediate", ca_key, ca.subject, ikey, ca=True)
    dkey = key()
    deep = issue_cert("deep-device", ikey, inter.subject, dkey, eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    deep_path = d / "deep-client.pem"
    deep_path.write_bytes(deep.public_bytes(serialization.Encoding.PEM)
                          + inter.public_bytes(serialization.Encoding.PEM))
    return Pki(d, write("ca.pem", ca), write("server.pem", srv), write("server.key", skey),
               write("client.pem", cli), write("client.key", ckey), deep_path,
               write("deep-client.key", dkey), write("inter.pem", inter))


def ssl_opts(pki: Pki, **extra) -> dict:
    return {"certfile": str(pki.server_cert), "keyfile": str(pki.server_key),
            "cacertfile": str(pki.ca), **extra}


@pytest.fixture
def clients():
    """clients(port, client_id=..., transport=..., ca=..., ...) -> an MQTT 3.1.1 MqttClient
    on 127.0.0.1 (support/mqttclient.py), closed after the test."""
    made = []

    def factory(port, **kw):
        c = MqttClient("127.0.0.1", port, version=kw.pop("version", 4), **kw)
        made.append(c)
        return c

    yield factory
    for c in made:
        c.close()


def recv_exactly(sock, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"closed after {buf!r}")
        buf += chunk
    return buf


def closed_by_peer(sock) -> bool:
    """True once the server has closed `sock` (reads EOF or a reset)."""
    sock.settimeout(WAIT)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, ssl.SSLError):
        pass
    except socket.timeout:
        return False
    return True


class RawWs:
    """A WebSocket client over a plain socket (wsproto, client side) for byte-level checks."""

    def __init__(self, port, path="/mqtt", subprotocols=("mqtt",), headers=(), ctx=None,
                 extensions=()):
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import Request

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        if ctx is not None:
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.events = []
        self.sock.sendall(self.ws.send(Request(
            host="127.0.0.1", target=path, subprotocols=list(subprotocols),
            extensions=list(extensions),
            extra_headers=[(k.encode(), v.encode()) for k, v in headers])))
        self.status, self.subprotocol = None, None
        from wsproto.events import AcceptConnection, RejectConnection
        while self.status is None:
            for ev in self._read():
                if isinstance(ev, AcceptConnection):
                    self.status, self.subprotocol = 101, ev.subprotocol
                    self.accepted_extensions = ev.extensions
                elif isinstance(ev, RejectConnection):
                    self.status = ev.status_code
                else:
                    self.events.append(ev)

    def _read(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("closed")
        self.ws.receive_data(data)
        return list(self.ws.events())

    def send(self, data: bytes) -> None:
        from wsproto.events import BytesMessage
        self.sock.sendall(self.ws.send(BytesMessage(data=data)))

    def send_event(self, ev) -> None:
        self.sock.sendall(self.ws.send(ev))

    def next_event(self):
        while not self.events:
            self.events.extend(self._read())
        return self.events.pop(0)

    def recv_frame(self) -> bytes:
        """The payload of the next binary message (skipping nothing else)."""
        from wsproto.events import BytesMessage
        ev = self.next_event()
        assert isinstance(ev, BytesMessage), ev
        data = bytes(ev.data)
        while not ev.message_finished:
            ev = self.next_event()
            data += bytes(ev.data)
        return data

    def close(self):
        self.sock.close()
