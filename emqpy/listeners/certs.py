"""Default TLS certificates, made at first start like the ones EMQX ships in etc/certs.

EMQX's listener defaults name ``${EMQX_ETC_DIR}/certs/{cacert,cert,key}.pem``. emqpy resolves
``${EMQX_ETC_DIR}`` to the environment variable of that name when it is set (an EMQX install's
etc dir), else to the data dir. When the files are missing from ``<data_dir>/certs`` emqpy
creates a private CA, a server certificate for localhost/127.0.0.1/::1/this host, and a client
certificate (client-cert.pem/client-key.pem, CN "client") signed by that CA. The CA's key is not
kept: replace the files (same names) with your own to use your own CA. Nothing is downloaded.
"""
from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
import threading
from pathlib import Path

ETC_VAR = "${EMQX_ETC_DIR}"
DEFAULT_FILES = ("cacert.pem", "cert.pem", "key.pem")
log = logging.getLogger("emqpy.listeners")
_lock = threading.Lock()
_memo: dict[str, bytes] | None = None  # one generated set per process: several brokers share it


def resolve_path(path: str, data_dir: Path) -> Path:
    if ETC_VAR in path:
        path = path.replace(ETC_VAR, os.environ.get("EMQX_ETC_DIR") or str(data_dir))
    return Path(path)


def ensure_default_certs(data_dir: Path) -> Path:
    """Create ``<data_dir>/certs`` with the default CA, server and client certificates unless
    they are there; returns the directory."""
    d = Path(data_dir) / "certs"
    with _lock:
        present = [n for n in DEFAULT_FILES if (d / n).exists()]
        if len(present) == len(DEFAULT_FILES):
            return d
        if present:
            raise FileNotFoundError(
                f"{d} has {', '.join(present)} but not all of {', '.join(DEFAULT_FILES)}: "
                "add the missing files or remove the others to get a fresh default set")
        files = _generate()
        d.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            p = d / name
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                         0o600 if name.endswith("key.pem") else 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        log.info("created default TLS certificates in %s (replace them with your own: same "
                 "file names, or set the ssl_options file paths)", d)
    return d


def _generate() -> dict[str, bytes]:
    global _memo
    if _memo is None:
        _memo = make_ca_set(_server_names())
    return _memo


def _server_names() -> list[str]:
    names = ["localhost", "127.0.0.1", "::1"]
    host = socket.gethostname()
    if host and host not in names:
        names.append(host)
    return names


def make_ca_set(server_names: list[str], client_cn: str = "client",
                ca_cn: str = "emqpy default CA") -> dict[str, bytes]:
    """A CA and a server and a client certificate it signs, as PEM bytes: cacert.pem,
    cert.pem, key.pem, client-cert.pem, client-key.pem (also used by tests)."""
    from cryptography.hazmat.primitives import serialization

    ca_key, ca_cert = _ca(ca_cn)
    srv_key, srv_cert = issue(ca_key, ca_cert, server_names[0], server_names, server=True)
    cli_key, cli_cert = issue(ca_key, ca_cert, client_cn, [], server=False)
    pem = serialization.Encoding.PEM

    def key_pem(k):
        return k.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                               serialization.NoEncryption())
    return {
        "cacert.pem": ca_cert.public_bytes(pem),
        "cert.pem": srv_cert.public_bytes(pem),
        "key.pem": key_pem(srv_key),
        "client-cert.pem": cli_cert.public_bytes(pem),
        "client-key.pem": key_pem(cli_key),
    }


def _name(cn: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "emqpy"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key():
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _validity(builder, days: int):
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(
        now + datetime.timedelta(days=days))


def _ca(cn: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = _key()
    b = x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
    b = _validity(b.public_key(key.public_key()).serial_number(x509.random_serial_number()), 3650)
    b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                        critical=True)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    return key, b.sign(key, hashes.SHA256())


def issue(ca_key, ca_cert, cn: str, names: list[str], server: bool, key=None, days: int = 825):
    """Sign a leaf certificate for `cn` (SANs from `names`) with the CA; returns (key, cert)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = key or _key()
    b = x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
    b = _validity(b.public_key(key.public_key()).serial_number(x509.random_serial_number()), days)
    b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    b = b.add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False),
                        critical=True)
    b = b.add_extension(x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), False)
    b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                        False)
    sans = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), False)
    return key, b.sign(ca_key, hashes.SHA256())
