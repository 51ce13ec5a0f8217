"""MQTT over TLS: default certificates, a custom CA, mutual TLS with peer_cert_as_*, TLS
options, failed handshakes, and the mosquitto clients."""
from __future__ import annotations

import hashlib
import logging
import shutil
import socket
import ssl
import subprocess

import pytest

from emqpy.listeners import ListenerError, start_listener

from support.rawmqtt import connect_packet
from support.waiting import WAIT, wait_until

from .helpers import closed_by_peer, ssl_opts

def _pair(msg) -> tuple:
    return msg.topic, msg.payload



def _ssl_port(h, name="default"):
    return h.broker.listeners[f"ssl:{name}"].port


def test_default_certificates_work_out_of_the_box(make_broker, clients):
    h = make_broker()
    certs = h.broker.data_dir / "certs"
    assert {p.name for p in certs.iterdir()} >= {"cacert.pem", "cert.pem", "key.pem",
                                                  "client-cert.pem", "client-key.pem"}
    sub = clients(h.port, client_id="plain-sub")
    sub.connect()
    sub.subscribe("tls/#")
    pub = clients(_ssl_port(h), ca=certs / "cacert.pem", client_id="tls-pub")
    pub.connect()  # verifies the server certificate against the default CA
    pub.publish("tls/x", b"over tls")
    assert _pair(sub.get()) == ("tls/x", b"over tls")
    ch = wait_until(lambda: h.broker.channels.get("tls-pub"))
    assert ch.listener.id == "ssl:default"


def test_default_certificates_are_made_once(tmp_path):
    from emqpy.listeners.certs import ensure_default_certs
    d = ensure_default_certs(tmp_path)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    assert oct((d / "key.pem").stat().st_mode & 0o777) == "0o600"
    ensure_default_certs(tmp_path)  # present: left alone (a replaced set stays replaced)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    (d / "key.pem").unlink()
    with pytest.raises(FileNotFoundError, match="key.pem"):
        ensure_default_certs(tmp_path)  # a partial set is an error, never silently remade


def _mtls(pki, **extra):
    return {"listeners": {"ssl": {"default": {"ssl_options": ssl_opts(
        pki, verify="verify_peer", fail_if_no_peer_cert=True, **extra)}}}}


def test_mutual_tls_peer_cert_as_username_cn(make_broker, clients, pki):
    cfg = _mtls(pki)
    cfg["mqtt"] = {"peer_cert_as_username": "cn", "peer_cert_as_clientid": "md5"}
    h = make_broker(cfg)
    c = clients(_ssl_port(h), ca=pki.ca, cert=pki.client_cert, key=pki.client_key,
                client_id="ignored")
    c.connect(username="ignored-too")
    der = ssl.PEM_cert_to_DER_cert(pki.client_cert.read_text())
    cid = hashlib.md5(der).hexdigest()
    ch = wait_until(lambda: h.broker.channels.get(cid), what="client id from the certificate")
    assert ch.username == "device-42"
    assert ch.clientid == cid


def test_mutual_tls_dn_and_pem(make_broker, clients, pki):
    cfg = _mtls(pki)
    cfg["mqtt"] = {"peer_cert_as_username": "dn", "peer_cert_as_clientid": "cn"}
    h = make_broker(cfg)
    c = clients(_ssl_port(h), ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
    c.connect()
    ch = wait_until(lambda: h.broker.channels.get("device-42"))
    assert ch.username == "CN=device-42,O=test"


def test_client_without_certificate_is_refused_and_counted(make_broker, pki, caplog):
    h = make_broker(_mtls(pki))
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with socket.create_connection(("127.0.0.1", _ssl_port(h))) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(connect_packet("no-cert", version=4))
                assert closed_by_peer(s)  # TLS 1.3: the refusal comes after our Finished
        except (ssl.SSLError, ConnectionResetError):
            pass
    lst = h.broker.listeners["ssl:default"]
    wait_until(lambda: lst.counters["tls_handshake_error"] == 1, what="the failure to be counted")
    assert "no-cert" not in h.broker.channels


def test_plaintext_on_tls_port_is_closed_quietly(make_broker, caplog):
    h = make_broker()
    caplog.set_level(logging.DEBUG)
    for i in range(3):
        with socket.create_connection(("127.0.0.1", _ssl_port(h))) as s:
            s.sendall(connect_packet(f"plain-{i}", version=4))
            assert closed_by_peer(s)
    lst = h.broker.listeners["ssl:default"]
    wait_until(lambda: lst.counters["tls_handshake_error"] == 3)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_chain_depth(make_broker, clients, pki):
    h = make_broker(_mtls(pki, depth=0))
    lst = h.broker.listeners["ssl:default"]
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.load_cert_chain(pki.deep_client_cert, pki.deep_client_key)
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", lst.port)),
                         server_hostname="localhost") as s:
        s.sendall(connect_packet("deep", version=4))
        assert closed_by_peer(s)  # one intermediate CA is one too many for depth 0
    assert lst.counters["tls_chain_too_deep"] == 1
    assert "deep" not in h.broker.channels
    # One intermediate CA is fine with depth 1 on another listener.
    cfg = {"bind": "127.0.0.1:0", "ssl_options": ssl_opts(
        pki, verify="verify_peer", fail_if_no_peer_cert=True, depth=1)}
    lst2 = h.call(start_listener, h.broker, "ssl", "deep", cfg)
    c2 = clients(lst2.port, ca=pki.ca, cert=pki.deep_client_cert, key=pki.deep_client_key,
                 client_id="deep2")
    c2.connect()


def test_tls_versions(make_broker, pki):
    h = make_broker({"listeners": {"ssl": {"default": {"ssl_options": ssl_opts(
        pki, versions=["tlsv1.2"], ciphers=["ECDHE-ECDSA-AES256-GCM-SHA384"])}}}})
    port = _ssl_port(h)
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.version() == "TLSv1.2"
            assert s.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"
    ctx13 = ssl.create_default_context(cafile=str(pki.ca))
    ctx13.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with pytest.raises(ssl.SSLError):
            ctx13.wrap_socket(raw, server_hostname="localhost")


def test_bad_tls_files_give_a_clear_error(make_broker, tmp_path):
    h = make_broker()
    cfg = {"bind": "127.0.0.1:0", "ssl_options": {"certfile": str(tmp_path / "nope.pem"),
                                                  "keyfile": str(tmp_path / "nope.key")}}
    with pytest.raises(ListenerError, match="ssl:bad.*nope.pem"):
        h.call(start_listener, h.broker, "ssl", "bad", cfg)
    assert h.broker.listeners["ssl:bad"].running is False
    assert h.broker.listeners["tcp:default"].running


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto clients missing")
def test_mosquitto_clients_over_tls(make_broker):
    h = make_broker()
    port = _ssl_port(h)
    ca = str(h.broker.data_dir / "certs" / "cacert.pem")
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "--cafile", ca,
                            "-t", "mosq/tls", "-C", "1", "-i", "mosq-sub", "-q", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: "mosq/tls" in h.broker.router.routes, what="mosquitto_sub to subscribe")
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "--cafile", ca,
                        "-t", "mosq/tls", "-m", "hello mosquitto", "-q", "1"],
                       check=True, timeout=WAIT)
        out, err = sub.communicate(timeout=WAIT)
        assert out.strip() == b"hello mosquitto", err
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()


def test_wss_mutual_tls(make_broker, clients, pki):
    h = make_broker({"mqtt": {"peer_cert_as_clientid": "cn"},
                     "listeners": {"wss": {"default": {"ssl_options": ssl_opts(
                         pki, verify="verify_peer", fail_if_no_peer_cert=True)}}}})
    c = clients(h.broker.listeners["wss:default"].port, transport="websockets", ca=pki.ca,
                cert=pki.client_cert, key=pki.client_key, client_id="given")
    c.connect()
    ch = wait_until(lambda: h.broker.channels.get("device-42"))
    assert ch.listener.id == "wss:default"


def test_etc_dir_resolution(tmp_path, monkeypatch):
    from emqpy.listeners.certs import resolve_path
    monkeypatch.delenv("EMQX_ETC_DIR", raising=False)
    assert resolve_path("${EMQX_ETC_DIR}/certs/cert.pem", tmp_path) == tmp_path / "certs/cert.pem"
    monkeypatch.setenv("EMQX_ETC_DIR", "/opt/emqx/etc")
    assert str(resolve_path("${EMQX_ETC_DIR}/certs/key.pem", tmp_path)) == \
        "/opt/emqx/etc/certs/key.pem"
    assert str(resolve_path("/abs/cert.pem", tmp_path)) == "/abs/cert.pem"


def test_certificate_values(pki):
    import base64

    from emqpy.listeners.tls import cert_value, peer_cert_info
    der = ssl.PEM_cert_to_DER_cert(pki.client_cert.read_text())

    class SslObject:
        def getpeercert(self, binary_form=False):
            return der

    class Transport:
        def get_extra_info(self, name, default=None):
            return SslObject() if name == "ssl_object" else default

    info = peer_cert_info(Transport())
    assert info["common_name"] == "device-42" and info["subject"] == "CN=device-42,O=test"
    assert cert_value(info, "cn") == "device-42"
    assert cert_value(info, "dn") == "CN=device-42,O=test"
    assert cert_value(info, "pem") == base64.b64encode(der).decode()
    assert cert_value(info, "md5") == hashlib.md5(der).hexdigest()
    assert cert_value(info, "crt").encode("latin-1") == der
    assert cert_value({"common_name": "via-proxy"}, "md5") is None


def test_abrupt_clients_leave_no_traceback(make_broker, caplog):
    import struct
    h = make_broker()
    caplog.set_level(logging.DEBUG)
    port = _ssl_port(h)
    hello_start = bytes.fromhex("160301020001000200")  # a ClientHello cut short
    for payload in (b"", hello_start):
        s = socket.create_connection(("127.0.0.1", port))
        if payload:
            s.sendall(payload)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # reset
    ctx = ssl.create_default_context(cafile=str(h.broker.data_dir / "certs" / "cacert.pem"))
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    # handshake done, then a reset mid-packet
    s.sendall(connect_packet("then-reset", version=4)[:5])
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    lst = h.broker.listeners["ssl:default"]
    wait_until(lambda: sum(lst.counters.values()) >= 2 and not lst.connections,
               what="the failures")
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
def test_legacy_tls_versions_when_asked_for(make_broker):
    h = make_broker({"listeners": {"ssl": {"default": {"ssl_options": {
        "versions": ["tlsv1.2", "tlsv1.1"]}}}}})
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(h.broker.data_dir / "certs" / "cacert.pem")
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", _ssl_port(h)), timeout=WAIT) as raw:
        try:
            s = ctx.wrap_socket(raw, server_hostname="localhost")
        except ssl.SSLError as e:  # a client OpenSSL built without TLS 1.1
            pytest.skip(f"this OpenSSL cannot speak TLS 1.1: {e}")
        assert s.version() == "TLSv1.1"
        s.close()
