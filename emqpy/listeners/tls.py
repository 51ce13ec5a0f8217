"""TLS for ssl/wss listeners: EMQX ``ssl_options`` -> ssl.SSLContext, and client certificate facts
for ``mqtt.peer_cert_as_username`` / ``peer_cert_as_clientid``."""
from __future__ import annotations

import base64
import hashlib
import os
import ssl
import warnings
from pathlib import Path

from emqpy.listeners.certs import ETC_VAR, ensure_default_certs, resolve_path

VERSIONS = {  # EMQX's names of TLS versions
    "tlsv1": ssl.TLSVersion.TLSv1, "tlsv1.1": ssl.TLSVersion.TLSv1_1,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2, "tlsv1.3": ssl.TLSVersion.TLSv1_3,
}


class TlsConfigError(ValueError):
    pass


def set_versions_and_ciphers(ctx: ssl.SSLContext, versions: list[str], ciphers: list[str],
                             where: str, error: type[Exception],
                             versions_key: str = "versions") -> None:
    """EMQX's `versions` and `ciphers` options on a context (listeners, connectors' clients,
    links between cluster nodes); raises `error` naming the option (`where`.`versions_key`,
    `where`.ciphers)."""
    wanted = [VERSIONS[v] for v in versions]
    if not wanted:
        raise error(f"{where}.{versions_key}: empty")
    try:
        with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated, and configured on purpose
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = min(wanted)
            ctx.maximum_version = max(wanted)
    except ValueError as e:
        raise error(f"{where}.{versions_key}: {e}") from None
    # OpenSSL names; TLS 1.3 suites (TLS_AES_...) cannot be narrowed from Python, and all of
    # OpenSSL's defaults are strong, so they are accepted and left to OpenSSL.
    legacy = [c for c in ciphers if not c.startswith("TLS_")]
    spec = ":".join(legacy)
    if min(wanted) < ssl.TLSVersion.TLSv1_2:
        # OpenSSL 3 refuses TLS 1.0/1.1 at its default security level: asking for them in
        # `versions` means meaning it.
        spec = (spec or "DEFAULT") + ":@SECLEVEL=0"
    if spec:
        try:
            ctx.set_ciphers(spec)
        except ssl.SSLError:
            raise error(f"{where}.ciphers: no usable cipher in {legacy}") from None


def server_context(opts, data_dir: Path) -> ssl.SSLContext:
    """Build the server context; raises TlsConfigError naming the option at fault."""
    if any(ETC_VAR in (p or "") for p in (opts.certfile, opts.keyfile, opts.cacertfile)) and \
            not os.environ.get("EMQX_ETC_DIR"):
        ensure_default_certs(data_dir)  # the defaults live in the data dir: make them once
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certfile = resolve_path(opts.certfile, data_dir)
    keyfile = resolve_path(opts.keyfile, data_dir) if opts.keyfile else None
    try:
        ctx.load_cert_chain(certfile, keyfile, opts.password or None)
    except FileNotFoundError as e:
        raise TlsConfigError(f"ssl_options.certfile/keyfile: no such file {e.filename or certfile}") \
            from None
    except (ssl.SSLError, OSError) as e:
        raise TlsConfigError(f"ssl_options.certfile/keyfile: cannot load {certfile}: {e}") from None
    verify_peer = opts.verify == "verify_peer"
    if opts.cacertfile:
        cafile = resolve_path(opts.cacertfile, data_dir)
        if verify_peer or cafile.exists():
            try:
                ctx.load_verify_locations(cafile)
            except (ssl.SSLError, OSError) as e:
                raise TlsConfigError(f"ssl_options.cacertfile: cannot load {cafile}: {e}") from None
    if getattr(opts, "cacerts", False):
        ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    if verify_peer:
        ctx.verify_mode = ssl.CERT_REQUIRED if opts.fail_if_no_peer_cert else ssl.CERT_OPTIONAL
    set_versions_and_ciphers(ctx, opts.versions, opts.ciphers, "ssl_options", TlsConfigError)
    if opts.honor_cipher_order:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if not opts.client_renegotiation or not opts.secure_renegotiate:
        ctx.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    if not opts.reuse_sessions:
        ctx.options |= ssl.OP_NO_TICKET
    if opts.dhfile:
        try:
            ctx.load_dh_params(str(resolve_path(opts.dhfile, data_dir)))
        except (ssl.SSLError, OSError) as e:
            raise TlsConfigError(f"ssl_options.dhfile: {e}") from None
    return ctx


def chain_depth_ok(transport, depth: int) -> bool:
    """EMQX `depth`: at most `depth` intermediate CAs between the client certificate and the
    trusted root (OpenSSL's meaning). Python has no setter for it, so it is checked after the
    handshake on the verified chain."""
    so = transport.get_extra_info("ssl_object")
    inner = getattr(so, "_sslobj", None)
    getter = getattr(inner, "get_verified_chain", None)
    if getter is None:
        return True
    try:
        chain = getter()
    except (ValueError, ssl.SSLError):
        return True
    return not chain or len(chain) - 2 <= depth


def peer_cert_info(transport) -> dict | None:
    """The verified client certificate as the channel keeps it (``ch._peer_cert``):
    ``{"common_name", "subject", "der"}``; None without one. (A proxy that verified the
    certificate gives only ``common_name``.)"""
    so = transport.get_extra_info("ssl_object") if transport is not None else None
    der = so.getpeercert(binary_form=True) if so is not None else None
    if not der:
        return None
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    info = {"subject": cert.subject.rfc4514_string(), "der": der}
    if cns and isinstance(cns[0].value, str):
        info["common_name"] = cns[0].value
    return info


def cert_value(info: dict, kind: str) -> str | None:
    """The username/client id EMQX derives from a certificate: cn, dn, crt (the DER), pem
    (base64 of the DER, as EMQX does), md5 (hex of the DER's MD5)."""
    if kind == "cn":
        return info.get("common_name")
    if kind == "dn":
        return info.get("subject")
    der = info.get("der")
    if der is None:
        return None
    if kind == "crt":
        return der.decode("latin-1")  # binary in EMQX; kept byte for byte here
    if kind == "pem":
        return base64.b64encode(der).decode("ascii")
    if kind == "md5":
        return hashlib.md5(der).hexdigest()
    return None
