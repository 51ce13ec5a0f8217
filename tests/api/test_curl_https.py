"""The seed's commands run with the real curl binary, and the dashboard HTTPS listener."""
import datetime as dt
import json
import shutil
import ssl
import subprocess

import httpx
import pytest

from support.servers import free_port

CURL = shutil.which("curl")


@pytest.mark.skipif(CURL is None, reason="curl not installed")
def test_seed_curl_commands(api):
    port = api.http_port
    # The seed's create command, verbatim except the port and an expiry still in the future.
    out = subprocess.run([
        CURL, "-s", "-u", "admin:public",
        "-X", "POST", f"http://localhost:{port}/api/v5/api_key",
        "-H", "accept: application/json",
        "-H", "Content-Type: application/json",
        "-d", """{
            "name": "EMQX-API-KEY-CURL",
            "expired_at": "2099-12-05T02:01:34.186Z",
            "desc": "for testing",
            "enable": true
        }"""], capture_output=True, text=True, timeout=60)
    body = json.loads(out.stdout)
    assert sorted(body) == ["api_key", "api_secret", "created_at", "desc", "enable", "expired",
                            "expired_at", "name"]
    assert body["name"] == "EMQX-API-KEY-CURL" and body["expired"] is False
    # Then the key and secret work with HTTP Basic auth.
    out = subprocess.run([CURL, "-s", "-w", "\n%{http_code}",
                          "-u", f"{body['api_key']}:{body['api_secret']}",
                          "-X", "GET", f"http://localhost:{port}/api/v5/probe/whoami"],
                         capture_output=True, text=True, timeout=60)
    text, code = out.stdout.rsplit("\n", 1)
    assert code == "200" and json.loads(text)["kind"] == "api_key"
    # An unknown key gets the seed's 401 code.
    out = subprocess.run([CURL, "-s", "-w", "\n%{http_code}", "-u", "a87465f14ca0d420:nope",
                          f"http://localhost:{port}/api/v5/probe/whoami"],
                         capture_output=True, text=True, timeout=60)
    text, code = out.stdout.rsplit("\n", 1)
    assert code == "401"
    assert json.loads(text)["code"] == "WRONG_USERNAME_OR_PWD_OR_API_KEY_OR_API_SECRET"


def _self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


def test_https_listener(make_broker, tmp_path):
    certfile, keyfile = _self_signed(tmp_path)
    h = make_broker({"dashboard": {"listeners": {"https": {
        "bind": "127.0.0.1:0",
        "ssl_options": {"certfile": str(certfile), "keyfile": str(keyfile)}}}}})
    port = h.broker.api.https_port
    assert port and port != h.http_port
    ctx = ssl.create_default_context(cafile=str(certfile))
    with httpx.Client(verify=ctx, timeout=30) as c:
        r = c.get(f"https://localhost:{port}/api/v5/users", auth=("admin", "public"))
        assert r.status_code == 200
        assert c.get(f"https://localhost:{port}/status").status_code == 200


@pytest.mark.skipif(CURL is None, reason="curl not installed")
def test_emqpy_start_serves_the_api(tmp_path):
    """`emqpy start` runs the API in the broker's process; the seed's curl works against it."""
    import os
    import sys
    import time
    from pathlib import Path

    http_port = free_port()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]),
               EMQX_LISTENERS__TCP__DEFAULT__BIND=f"127.0.0.1:{free_port()}",
               EMQX_DASHBOARD__LISTENERS__HTTP__BIND=f"127.0.0.1:{http_port}")
    for k in [k for k in env if k.startswith("EMQX_LISTENERS__") and "TCP__DEFAULT" not in k]:
        del env[k]
    p = subprocess.Popen([sys.executable, "-m", "emqpy", "start", "--data-dir", str(tmp_path)],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60  # wait for readiness (not a timing assertion)
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/status").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert p.poll() is None, p.stderr.read()
            assert time.monotonic() < deadline, "emqpy start did not serve /status"
            time.sleep(0.2)
        out = subprocess.run([
            CURL, "-s", "-u", "admin:public", "-X", "POST",
            f"http://localhost:{http_port}/api/v5/api_key",
            "-H", "accept: application/json", "-H", "Content-Type: application/json",
            "-d", '{"name": "EMQX-API-KEY-3", "expired_at": "2099-12-05T02:01:34.186Z", '
                  '"desc": "for testing", "enable": true}'],
            capture_output=True, text=True, timeout=60)
        body = json.loads(out.stdout)
        assert body["name"] == "EMQX-API-KEY-3" and len(body["api_secret"]) == 43
        assert (tmp_path / "emqpy.db").is_file()
    finally:
        p.terminate()
        p.wait(30)
        p.stderr.close()
