"""TLS between the nodes of a cluster (``rpc.protocol = ssl``, EMQX's key for its inter-node
RPC) and to an external NATS (``cluster.nats.tls``).

With ``rpc.protocol = ssl`` every node has a certificate (``rpc.certfile``/``keyfile``) signed
by the cluster's CA (``rpc.cacertfile``) and naming its host (the part of ``node.name`` after
the ``@``) in its subjectAltName, used both as server and as client: the NATS routes, a node's
NATS connection when its client port is not on loopback, and the join listener all require the
peer's certificate from that CA (mutual TLS) and check the host it names, as NATS does for its
routes.
"""
from __future__ import annotations

import ipaddress
import json
import socket
import ssl
from pathlib import Path

from emqpy.listeners.certs import resolve_path
from emqpy.listeners.tls import VERSIONS, set_versions_and_ciphers

# nats-server's min_version names
_NATS_VERSIONS = {"tlsv1": "1.0", "tlsv1.1": "1.1", "tlsv1.2": "1.2", "tlsv1.3": "1.3"}


class TlsError(RuntimeError):
    """A certificate or key that cannot be used; the message names the key."""


def enabled(config) -> bool:
    return config.rpc.protocol == "ssl"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def files(config) -> dict[str, str]:
    """The cluster's certificate, key and CA as absolute paths (for nats-server's config)."""
    rpc, data = config.rpc, Path(config.node.data_dir)
    out = {}
    for key in ("certfile", "keyfile", "cacertfile"):
        path = resolve_path(getattr(rpc, key), data).absolute()
        if not path.is_file():
            raise TlsError(f"rpc.{key}: no such file {path}")
        out[key] = str(path)
    return out


def _context(config, purpose: int) -> ssl.SSLContext:
    paths = files(config)
    ctx = ssl.SSLContext(purpose)
    try:
        ctx.load_cert_chain(paths["certfile"], paths["keyfile"])
    except (ssl.SSLError, OSError) as e:
        raise TlsError(f"rpc.certfile/keyfile: cannot load {paths['certfile']}: {e}") from None
    try:
        ctx.load_verify_locations(paths["cacertfile"])
    except (ssl.SSLError, OSError) as e:
        raise TlsError(f"rpc.cacertfile: cannot load {paths['cacertfile']}: {e}") from None
    ctx.verify_mode = ssl.CERT_REQUIRED  # both ways: a node proves itself with the cluster's CA
    set_versions_and_ciphers(ctx, config.rpc.tls_versions, config.rpc.ciphers, "rpc", TlsError,
                             versions_key="tls_versions")
    return ctx


def server_context(config) -> ssl.SSLContext:
    """The join listener's side: the requester must show a certificate of the cluster's CA."""
    return _context(config, ssl.PROTOCOL_TLS_SERVER)


def client_context(config) -> ssl.SSLContext:
    """A node connecting to another (join requests) or to its NATS: the server's certificate
    must come from the cluster's CA and name the host connected to."""
    return _context(config, ssl.PROTOCOL_TLS_CLIENT)


def nats_server_block(config, *, verify: bool = True) -> str:
    """The body of a nats-server ``tls { }`` block with the cluster's certificates."""
    paths = files(config)
    lowest = min(config.rpc.tls_versions, key=lambda v: VERSIONS[v])
    return (f"cert_file: {json.dumps(paths['certfile'])}, key_file: {json.dumps(paths['keyfile'])}, "
            f"ca_file: {json.dumps(paths['cacertfile'])}, verify: {json.dumps(verify)}, "
            f"min_version: {json.dumps(_NATS_VERSIONS[lowest])}, timeout: 5")


def external_context(config) -> ssl.SSLContext:
    """``cluster.nats.tls`` as an SSLContext (EMQX's client ``ssl`` options, built by the one
    builder of those)."""
    from emqpy.bridge.http import ConnectorError, client_ssl_context
    from emqpy.config.bridges import ClientSsl
    opts = ClientSsl.model_validate(config.cluster.nats.tls.model_dump())
    try:
        return client_ssl_context(opts, Path(config.node.data_dir))
    except ConnectorError as e:
        raise TlsError(f"cluster.nats.tls.{str(e).removeprefix('ssl.')}") from None


def nats_connect_options(config, servers: list[str], node_host: str) -> dict:
    """nats-py's TLS options for a node's connection to `servers`: ``cluster.nats.tls`` when
    enabled; else, for ``tls://`` servers (this node's embedded server with TLS on its client
    port, or the main's for a ``node.process_workers`` sibling), the cluster's certificates,
    the server's expected to name `node_host`."""
    if config.cluster.nats.tls.enable:
        opts = {"tls": external_context(config)}
        sni = config.cluster.nats.tls.server_name_indication
        if sni and sni != "disable":
            opts["tls_hostname"] = sni
        return opts
    if enabled(config) and any(s.startswith("tls://") for s in servers):
        return {"tls": client_context(config), "tls_hostname": node_host}
    return {}


def route_problem(url: str, context: ssl.SSLContext | None, timeout: float = 1.0) -> str | None:
    """Why this node's NATS server cannot route to the route port at `url` (``nats://host:port``)
    as far as TLS goes, given this node's client `context` (None: rpc.protocol = tcp); None
    when TLS is not the problem, or nothing answers. A route port without TLS sends its INFO
    at once; one with TLS waits for the TLS handshake first (nats-server 2.10+)."""
    host, _, port = url.split("://", 1)[-1].rpartition("@")[2].rpartition(":")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.settimeout(timeout)
            try:
                first = s.recv(4096)
            except socket.timeout:
                first = None  # silent: waiting for a TLS ClientHello
            if first is not None:
                if first.startswith(b"INFO ") and context is not None:
                    return "does not speak TLS (rpc.protocol = tcp there, ssl here)"
                return None
            if context is None:
                return "requires TLS (rpc.protocol = ssl there, tcp here)"
            try:
                with context.wrap_socket(s, server_hostname=host) as t:
                    t.recv(1)  # a certificate it refuses shows here under TLS 1.3
            except ssl.SSLCertVerificationError as e:
                return f"shows a certificate this node does not accept: {e.verify_message}"
            except ssl.SSLError as e:
                return f"refuses this node's certificate: {e.reason or e}"
            except socket.timeout:
                return None
    except (OSError, ValueError):
        return None
    return None
