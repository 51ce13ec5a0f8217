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

import asyncio
import ipaddress
import json
import logging
import os
import socket
import ssl
from pathlib import Path

from emqpy.listeners.certs import resolve_path
from emqpy.listeners.tls import VERSIONS, set_versions_and_ciphers

log = logging.getLogger("emqpy.cluster")

RELOAD_EVERY = 10.0  # seconds between two looks at the rpc.* files (see CertReloader)
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


def _paths(config) -> dict[str, Path]:
    rpc, data = config.rpc, Path(config.node.data_dir)
    return {key: resolve_path(getattr(rpc, key), data).absolute()
            for key in ("certfile", "keyfile", "cacertfile")}


def files(config) -> dict[str, str]:
    """The cluster's certificate, key and CA as absolute paths (for nats-server's config)."""
    out = {}
    for key, path in _paths(config).items():
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
    return (f"cert_file: {json.dumps(paths['certfile'])}, "
            f"key_file: {json.dumps(paths['keyfile'])}, "
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


class CertReloader:
    """New certificates without a restart, as EMQX's nodes get them (Erlang's ssl reads the
    files again for new connections once its PEM cache expires): every RELOAD_EVERY seconds
    the rpc.* files are looked at, and when they changed and load (a certificate with its
    key), the contexts this node made from them load them again, for the connections made
    from then on, and the embedded nats-server reloads its configuration (SIGHUP), which
    names the files. Until they load, the old ones stay in use, with an error in the log.
    A CA is only ever added: a CA taken out of rpc.cacertfile stays trusted until a
    restart."""

    def __init__(self, config, contexts: list[ssl.SSLContext], nats_server):
        self.config = config
        self.contexts = contexts
        self.nats_server = nats_server  # fn() -> the running NatsServer, or None
        self.seen = self.stamp()

    def stamp(self) -> tuple:
        out = []
        for path in _paths(self.config).values():  # (one missing while replaced: None)
            try:
                st = os.stat(path)
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        return tuple(out)

    def check(self) -> bool:
        """Reload if the files changed since last seen; True when reloaded."""
        now = self.stamp()
        if now == self.seen:
            return False
        self.seen = now  # (a pair caught half-written changes again: looked at next time)
        try:
            _context(self.config, ssl.PROTOCOL_TLS_SERVER)  # all of them load, together
        except TlsError as e:
            log.error("cluster: the new TLS files do not load, the old ones stay: %s", e)
            return False
        paths = files(self.config)
        for ctx in self.contexts:
            ctx.load_cert_chain(paths["certfile"], paths["keyfile"])
            ctx.load_verify_locations(paths["cacertfile"])
        server = self.nats_server()
        if server is not None:
            server.reload()
        log.info("cluster: TLS certificates reloaded from %s", paths["certfile"])
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_EVERY)
            try:
                self.check()
            except Exception:
                log.exception("cluster: reloading the TLS files failed")

