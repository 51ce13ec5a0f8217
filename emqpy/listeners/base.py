"""What every listener type shares: binding, admission (access rules, max_connections,
max_conn_rate), the PROXY protocol and TLS accept path, counters, and CONNECT enrichment.

Two accept paths. Plain listeners without a connection rate limit use `loop.create_server`, so
the hot path is asyncio's own (a Channel is the protocol, no wrapper). Listeners with TLS, the
PROXY protocol or `max_conn_rate` run their own accept loop: it can pause accepting (as EMQX's
rate limiter does), read the PROXY header byte-exactly before TLS starts, and catch a failed
handshake per connection (counted, logged at debug level, never a traceback).
"""
from __future__ import annotations

import asyncio
import collections
import functools
import ipaddress
import logging
import math
import os
import socket
import ssl
import time

from emqpy.broker.channel import Channel
from emqpy.config import parse_rate
from emqpy.listeners.limiter import ConnLimiter, limits_of
from emqpy.mqtt import reason_codes as rc

log = logging.getLogger("emqpy.listeners")


MAX_ACCEPTORS = 64  # accept watchers per plain listener (EMQX's `acceptors`, capped)


class ListenerError(RuntimeError):
    pass


class ProxiedChannel(Channel):
    """A Channel whose peer address comes from a PROXY protocol header."""

    __slots__ = ("_proxy",)

    def __init__(self, broker, listener, proxy):
        super().__init__(broker, listener)
        self._proxy = proxy

    def connection_made(self, transport) -> None:
        Channel.connection_made(self, transport)
        apply_proxy_info(self, self._proxy)


def apply_proxy_info(ch, info) -> None:
    if info is None:
        return
    if info.src is not None:
        ch.peerhost, ch.peerport = info.src
    if info.dst is not None:
        ch.sockport = info.dst[1]
    if info.ssl_cn is not None:  # the proxy verified the client certificate
        ch._peer_cert = {"common_name": info.ssl_cn}


class TokenBucket:
    def __init__(self, rate: float, burst: float, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = burst
        self.at = clock()

    def take(self) -> float:
        """Take a token; returns 0, or how long to wait for it (the token is reserved)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


def parse_access_rules(rules: list[str]) -> list[tuple[bool, object]] | None:
    """EMQX `access_rules` ("allow all", "deny 10.0.0.0/8", ...); None when they allow all."""
    out = []
    for r in rules:
        parts = r.split()
        if len(parts) != 2 or parts[0] not in ("allow", "deny"):
            raise ListenerError(f"invalid access rule {r!r}: expected 'allow|deny all|CIDR'")
        if parts[1] == "all":
            net = None
        else:
            try:
                net = ipaddress.ip_network(parts[1], strict=False)
            except ValueError:
                raise ListenerError(f"invalid access rule {r!r}: bad address") from None
        out.append((parts[0] == "allow", net))
    if not out or (out[0] == (True, None)):
        return None
    return out


def access_allowed(rules, host: str) -> bool:
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return True
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for allow, net in rules:  # first match decides; no match allows, as esockd does
        if net is None or (addr.version == net.version and addr in net):
            return allow
    return True


class Listener:
    type = "tcp"
    tls = False
    # Plain listeners (create_server path) check access_rules when the channel starts; WebSocket
    # listeners do it on the TCP connection, before the upgrade.
    check_access_late = True

    def __init__(self, broker, name: str, cfg):
        self.broker = broker
        self.name = name
        self.cfg = cfg  # also sets the values derived from it (see the setter)
        self.host = cfg.bind.host
        self.port = cfg.bind.port
        self.connections: set = set()
        # Failed or refused attempts, by reason (tls_handshake_error, proxy_header_error,
        # ws_rejected, idle_timeout, max_connections, access_denied, conn_rate_limited, ...).
        self.counters: collections.Counter = collections.Counter()
        self.ssl_context: ssl.SSLContext | None = None
        self._server: asyncio.AbstractServer | None = None
        self._more_servers: list[asyncio.AbstractServer] = []  # (see `acceptors` in start)
        self._sock: socket.socket | None = None
        self._accept_task: asyncio.Task | None = None
        self._setups: set[asyncio.Task] = set()
        self._pending: set = set()  # transports accepted but not yet channels (WS handshakes)

    @property
    def cfg(self):
        return self._cfg

    @cfg.setter
    def cfg(self, cfg) -> None:
        """A new config applies at once to what new connections see (mountpoint, limits,
        access rules); bind, TLS and WebSocket options need `restart_listener`."""
        rate = parse_rate(cfg.max_conn_rate)
        rules = parse_access_rules(cfg.access_rules)
        self._cfg = cfg
        self.mountpoint = cfg.mountpoint
        mc = cfg.max_connections
        self.max_connections = 0 if mc == math.inf else int(mc)
        old = getattr(self, "bucket", None)
        self.bucket = TokenBucket(*rate) if rate else None
        if old is not None and self.bucket is not None and (old.rate, old.burst) == rate:
            self.bucket = old  # unchanged: keep its state
        self.access_rules = rules
        limits = limits_of(cfg)  # messages_rate / bytes_rate, per connection
        changed = limits != getattr(self, "limits", None)
        self.limits = limits
        if changed:
            for ch in getattr(self, "connections", ()):  # the ones connected follow too
                self._limit(ch)

    def _limit(self, ch) -> None:
        """Give connection `ch` the listener's current receive limits (or take them away)."""
        lim, limits = ch.limiter, self.limits
        if limits is None:
            if lim is not None:
                ch.limiter = None
                lim.release()
        elif lim is None:
            ch.limiter = ConnLimiter(ch, limits)
        else:
            lim.retune(limits)

    def needs_restart(self, cfg) -> bool:
        """Whether `cfg` differs from the running config in something only a restart applies
        (the `cfg` setter handles the rest). A connection rate limit on a plain listener needs
        the listener's own accept loop, hence a restart to switch it on."""
        old = self._cfg
        hot = {"enable", "max_connections", "mountpoint", "zone", "enable_authn", "access_rules",
               "messages_rate", "bytes_rate", "acceptors", "max_conn_rate"}
        a, b = old.model_dump(), cfg.model_dump()
        if any(a.get(k) != b.get(k) for k in a.keys() | b.keys() if k not in hot):
            return True
        own_loop = self.tls or old.proxy_protocol
        return not own_loop and (parse_rate(old.max_conn_rate) is None) != \
            (parse_rate(cfg.max_conn_rate) is None)

    @property
    def id(self) -> str:
        return f"{self.type}:{self.name}"

    @property
    def running(self) -> bool:
        return self._server is not None or self._accept_task is not None

    @property
    def current_connections(self) -> int:
        return len(self.connections)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.host}:{self.port} running={self.running}>"

    # -- protocol objects ------------------------------------------------------------------

    def _inner(self, proxy=None):
        """The protocol run over the (TLS) transport: a Channel for tcp/ssl."""
        if proxy is not None:
            return ProxiedChannel(self.broker, self, proxy)
        return Channel(self.broker, self)

    def _channel(self):
        return Channel(self.broker, self)

    # -- start / stop ----------------------------------------------------------------------

    async def start(self) -> None:
        if self.running:
            return
        if self.tls:
            from emqpy.listeners.tls import TlsConfigError, server_context
            try:
                self.ssl_context = server_context(self.cfg.ssl_options, self.broker.data_dir)
            except (TlsConfigError, OSError) as e:
                raise ListenerError(f"listener {self.id}: {e}") from None
        sock = self._bind()
        self.port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        if self.tls or self.cfg.proxy_protocol or self.bucket is not None:
            self._sock = sock
            self._accept_task = loop.create_task(self._accept_loop(sock))
        else:
            factory, backlog = self._plain_factory(), self.cfg.tcp_options.backlog
            self._server = await loop.create_server(factory, sock=sock, backlog=backlog)
            # EMQX's `acceptors`. libuv accepts one connection per watcher and loop iteration,
            # so a burst of connections would cost an iteration each: more watchers on the same
            # listening socket (duplicated descriptors) accept up to that many per iteration.
            for _ in range(min(self.cfg.acceptors, MAX_ACCEPTORS) - 1):
                dup = socket.socket(fileno=os.dup(sock.fileno()))
                self._more_servers.append(
                    await loop.create_server(factory, sock=dup, backlog=backlog))
        log.info("listener %s started on %s:%s", self.id, self.host, self.port)

    def _plain_factory(self):
        """What loop.create_server calls per connection: `_inner()` without the Python
        frames in between (a partial of the class is called from C)."""
        return functools.partial(Channel, self.broker, self)

    def _bind(self) -> socket.socket:
        host, port = self.host, self.cfg.bind.port
        opts = self.cfg.tcp_options
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE | socket.AI_NUMERICHOST)
            family, _, _, _, addr = infos[0]
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as e:
            raise ListenerError(f"listener {self.id} cannot bind {self.cfg.bind}: {e}") from None
        try:
            if opts.reuseaddr:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # node.process_workers: every broker process of this machine binds the same port and
            # the kernel spreads the connections over them (emqpy/cluster/workers.py)
            if self.broker.config.node.process_workers != 1 and hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            # Options set on the listening socket are inherited by accepted sockets (Linux).
            if opts.nodelay:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if opts.recbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(opts.recbuf))
            if opts.sndbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, int(opts.sndbuf))
            if opts.keepalive != "none":
                idle, intvl, probes = (int(x) for x in opts.keepalive.split(","))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                for name, v in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", intvl),
                                ("TCP_KEEPCNT", probes)):
                    if hasattr(socket, name):
                        sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), v)
            sock.bind(addr)
            sock.listen(opts.backlog)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            raise ListenerError(f"listener {self.id} cannot bind {self.cfg.bind}: "
                                f"{e.strerror or e}") from None
        return sock

    async def stop(self) -> None:
        if not self.running and not self.connections and not self._pending:
            return
        for srv in self._more_servers:
            srv.close()
        self._more_servers.clear()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._accept_task is not None:
            task, self._accept_task = self._accept_task, None
            task.cancel()
            try:  # let it leave sock_accept before its socket is closed
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for t in list(self._setups):
            t.cancel()
        for p in list(self._pending):
            p.abort()
        self._pending.clear()
        for ch in list(self.connections):
            ch.close(rc.SERVER_SHUTTING_DOWN, "listener_stopped")
        self.broker.flush()
        log.info("listener %s stopped", self.id)

    # -- the own accept loop (TLS, PROXY protocol, rate limit) -----------------------------

    async def _accept_loop(self, lsock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, addr = await loop.sock_accept(lsock)
            except asyncio.CancelledError:
                raise
            except OSError as e:  # e.g. out of file descriptors: back off, do not spin
                log.warning("listener %s accept failed: %s", self.id, e)
                await asyncio.sleep(0.1)
                continue
            if self.bucket is not None:
                wait = self.bucket.take()
                if wait > 0:  # like EMQX: stop accepting until the rate allows it again
                    self.counters["conn_rate_limited"] += 1
                    try:
                        await asyncio.sleep(wait)
                    except asyncio.CancelledError:
                        conn.close()
                        raise
            if self.access_rules is not None and not access_allowed(self.access_rules, addr[0]):
                self.counters["access_denied"] += 1
                conn.close()
                continue
            task = loop.create_task(self._setup(conn, addr))
            self._setups.add(task)
            task.add_done_callback(self._setups.discard)

    async def _setup(self, conn: socket.socket, addr) -> None:
        loop = asyncio.get_running_loop()
        proxy = None
        stage = "proxy_header"
        try:
            conn.setblocking(False)
            if self.cfg.proxy_protocol:
                from emqpy.listeners.proxy import read_header
                proxy = await asyncio.wait_for(read_header(loop, conn),
                                               self.cfg.proxy_protocol_timeout)
            stage = "tls_handshake"
            ctx = self.ssl_context
            if ctx is None:
                await loop.connect_accepted_socket(lambda: self._inner(proxy), conn)
                return
            timeout = self.cfg.ssl_options.handshake_timeout
            await loop.connect_accepted_socket(
                lambda: self._inner(proxy), conn, ssl=ctx, ssl_handshake_timeout=timeout)
        except asyncio.CancelledError:
            conn.close()
            raise
        except Exception as e:  # a bad client: count it, say why at debug level, go on
            if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
                reason = stage + "_timeout"
            elif isinstance(e, EOFError):
                reason = "closed_before_proxy_header"
            else:
                reason = stage + "_error"
            self.counters[reason] += 1
            log.debug("listener %s: %s from %s: %r", self.id, reason, addr[0], e)
            conn.close()
            return

    # -- called by channels ----------------------------------------------------------------

    def on_connection_made(self, ch) -> None:
        self.connections.add(ch)
        if self.limits is not None:
            ch.limiter = ConnLimiter(ch, self.limits)
        if self.tls and self.ssl_context.verify_mode != ssl.CERT_NONE and \
                not _depth_ok(ch.transport, self.cfg.ssl_options.depth):
            self.counters["tls_chain_too_deep"] += 1
            ch.close(None, "tls_chain_too_deep")
            return
        if self.max_connections and len(self.connections) > self.max_connections:
            self.counters["max_connections"] += 1
            ch.close(None, "max_connections")
            return
        if self.access_rules is not None and self._server is not None and self.check_access_late \
                and ch.peerhost and not access_allowed(self.access_rules, ch.peerhost):
            self.counters["access_denied"] += 1
            ch.close(None, "access_denied")

    def on_connection_lost(self, ch) -> None:
        self.connections.discard(ch)
        if ch._close_reason == "idle_timeout":  # never sent CONNECT
            self.counters["idle_timeout"] += 1

    def enrich_connect(self, ch, pkt) -> int:
        """Called by the broker before its CONNECT checks: records the client certificate
        (``ch._peer_cert``, for authentication placeholders too) and applies
        mqtt.peer_cert_as_username / peer_cert_as_clientid. (`enable_authn` is applied by
        emqpy.authn, which reads ``listener.cfg.enable_authn``.)"""
        cert = ch._peer_cert
        if cert is None and self.tls:
            from emqpy.listeners.tls import peer_cert_info
            cert = ch._peer_cert = peer_cert_info(ch.transport)
        if cert is None:
            return 0
        mq = self.broker.config.mqtt
        as_user, as_cid = mq.peer_cert_as_username, mq.peer_cert_as_clientid
        if as_user != "disabled" or as_cid != "disabled":
            from emqpy.listeners.tls import cert_value
            if as_user != "disabled":
                v = cert_value(cert, as_user)
                if v is not None:
                    pkt.username = v
            if as_cid != "disabled":
                v = cert_value(cert, as_cid)
                if v is not None:
                    pkt.clientid = v
        return 0

def _depth_ok(transport, depth: int) -> bool:
    from emqpy.listeners.tls import chain_depth_ok
    return chain_depth_ok(transport, depth)
