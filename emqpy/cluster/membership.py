"""Who is in this node's cluster, and how nodes join and leave it (EMQX's manual discovery:
``PUT /cluster/{node}/invite``, ``emqpy ctl cluster join|leave|force-leave``).

A standalone node runs no NATS: it only listens for invitations on its join port (EMQX's
distribution port: 4370 plus the number its name ends in, or ``cluster.join_port``). An inviting
node starts its own NATS if it had none, then sends the invited node its member list over that
port; the invited node leaves the cluster it was in (if any), starts its NATS routed to the
members and answers with its own addresses. Both sides prove they know ``node.cookie`` (HMAC
over both sides' nonces and the message: the cookie never travels). With ``rpc.protocol = ssl``
the join port speaks TLS only, both sides showing a certificate of the cluster's CA (tls.py).

The member list (name -> NATS route URL and join address) is kept in
``<data_dir>/cluster/membership.json``: a node restarted with one rejoins its cluster. Changes go
to the other members over NATS (``<p>.members``); a node that left or was removed is remembered
(``removed``), so its heartbeats are ignored until it is invited again, and a removed node
that comes back asks a member and leaves on its own.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import ssl
import struct
import time
from pathlib import Path

import msgpack

from emqpy.cluster import _start, _stop, natsd, tls

log = logging.getLogger("emqpy.cluster")

JOIN_PORT_BASE = 4370
MAX_FRAME = 1 << 20
HANDSHAKE_TIMEOUT = 10.0
DEFAULT_INVITE_TIMEOUT = 15.0
WATCH_INTERVAL = 1.0
ROUTE_CHECK_EVERY = 10  # watch rounds between checks of the silent peers' route ports (TLS)
NATS_ALARM = "cluster_nats_down"


class JoinError(Exception):
    """A membership change refused or failed; the message is EMQX's reason where it has one
    (``node_not_in_cluster``, ``{node_down,'emqx2@127.0.0.1'}``, ...)."""


class Ignored(Exception):
    """The operation names this node itself (EMQX's ``ignore``)."""


def join_address(node_name: str, port: int = 0) -> tuple[str, int]:
    return natsd.node_host(node_name), port or JOIN_PORT_BASE + natsd.node_offset(node_name)


def atom(name: str) -> str:
    """A node name as Erlang prints it."""
    return f"'{name}'"


# -- the join wire protocol: 4-byte length + JSON, one request and one reply per connection ----
# The requester speaks first (its nonce), so that a requester without TLS facing a listener with
# TLS is refused at once instead of both sides waiting for the other.

def _proof(cookie: str, *parts: str) -> str:
    return hmac.new(cookie.encode(), "|".join(parts).encode(), hashlib.sha256).hexdigest()


def _canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


async def _send(writer, obj) -> None:
    data = json.dumps(obj).encode()
    writer.write(struct.pack(">I", len(data)) + data)
    await writer.drain()


class TlsMismatch(ValueError):
    """A TLS handshake on the join port of a node without TLS."""


async def _recv(reader) -> dict:
    head = await reader.readexactly(4)
    if head[0] == 0x16 and head[1] == 0x03:  # a TLS record: handshake
        raise TlsMismatch("a TLS handshake on a join port without TLS")
    (n,) = struct.unpack(">I", head)
    if n > MAX_FRAME:
        raise ValueError(f"join frame of {n} bytes")
    obj = json.loads(await reader.readexactly(n))
    if not isinstance(obj, dict):
        raise ValueError("join frame is not an object")
    return obj


async def request(node: str, address: tuple[str, int], cookie: str, body: dict,
                  timeout: float, ssl_context: ssl.SSLContext | None = None) -> object:
    """Send `body` to `node`'s join listener and return its result (JoinError when it refuses,
    cannot be reached or does not prove the cookie). With `ssl_context` (rpc.protocol = ssl)
    over TLS, `node`'s certificate expected to name the host of `address`."""
    mine = secrets.token_hex(16)
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(*address)
            try:
                if ssl_context is not None:
                    try:
                        await writer.start_tls(ssl_context, server_hostname=address[0])
                    except (ssl.SSLError, ssl.CertificateError, ConnectionError) as e:
                        log.warning("cluster: TLS with the join port of %s (%s:%d) failed: %s "
                                    "(every node needs rpc.protocol = ssl and a certificate "
                                    "of the same CA naming its host)", node, *address,
                                    str(e) or "closed during the handshake")
                        raise JoinError(f"{{tls_handshake_failed,{atom(node)}}}") from None
                await _send(writer, {"nonce": mine})
                try:
                    hello = await _recv(reader)
                except (asyncio.IncompleteReadError, ConnectionResetError):
                    if ssl_context is None:  # closed at once: what a TLS-only port does
                        log.warning("cluster: %s closed its join port on this node's request "
                                    "at once: does it have rpc.protocol = ssl (this node: tcp)?",
                                    node)
                        raise JoinError(f"{{tls_required,{atom(node)}}}") from None
                    # under TLS 1.3 a listener refusing this node's certificate does so after
                    # the handshake, closing the connection
                    log.warning("cluster: %s closed its join port on this node's request at "
                                "once: it does not accept this node's certificate", node)
                    raise JoinError(f"{{tls_handshake_failed,{atom(node)}}}") from None
                await _send(writer, {"body": body,
                                     "proof": _proof(cookie, "req", hello["nonce"], mine,
                                                     _canon(body))})
                reply = await _recv(reader)
            finally:
                writer.close()
    except TimeoutError:
        raise JoinError("timeout") from None
    except (OSError, asyncio.IncompleteReadError, ValueError, KeyError):
        raise JoinError(f"{{node_down,{atom(node)}}}") from None
    proof = reply.pop("proof", None)
    if proof is None or not hmac.compare_digest(
            proof, _proof(cookie, "rep", mine, hello["nonce"], _canon(reply))):
        raise JoinError(reply.get("reason") or "bad_cookie")
    if not reply.get("ok"):
        raise JoinError(str(reply.get("reason")))
    return reply.get("result")


class Membership:
    def __init__(self, broker):
        self.broker = broker
        self.node = broker.node_name
        c = broker.config.cluster
        self.cluster_name = c.name
        self.cookie = broker.config.node.cookie
        self.seeds = list(c.static.seeds) if c.discovery_strategy == "static" else []
        self.path = Path(broker.config.node.data_dir) / "cluster" / "membership.json"
        self.members: dict[str, dict] = {}  # node -> {"route": NATS route URL, "join": [h, p]}
        # made by the node that formed the cluster: part of the NATS cluster name, so that the
        # servers of a cluster a node left (which keep retrying its route port) cannot route
        # to it once it is in another cluster
        self.cluster_id = ""
        self.removed: set[str] = set()
        self.lock = asyncio.Lock()  # one membership change at a time
        self.server = None  # the join listener
        self.join_addr = join_address(self.node, c.join_port)
        self.invitations: dict[str, dict] = {}  # node -> {started_at, task} (invite_async)
        self.finished: dict[str, dict] = {}  # node -> {started_at, finished_at, reason}
        self._watch: asyncio.Task | None = None
        self._checked = False
        self._background: set[asyncio.Task] = set()  # referenced until done
        # rpc.protocol = ssl: the join port speaks TLS only (made here: bad files stop the start)
        secure = tls.enabled(broker.config)
        self.tls_server = tls.server_context(broker.config) if secure else None
        self.tls_client = tls.client_context(broker.config) if secure else None
        self._route_tls_reported: dict[str, str] = {}  # route URL -> the TLS problem logged
        self._route_check_running = False

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the node's own addresses ----------------------------------------------------------
    def own_entry(self) -> dict:
        c = self.broker.config.cluster.nats
        host = c.host if c.host not in ("", "0.0.0.0", "::") else natsd.node_host(self.node)
        port = c.cluster_port or natsd.CLUSTER_PORT_BASE + natsd.node_offset(self.node)
        return {"route": f"nats://{host}:{port}", "join": list(self.join_addr)}

    def address_of(self, node: str) -> tuple[str, int]:
        entry = self.members.get(node)
        return tuple(entry["join"]) if entry else join_address(node)

    def admits(self, node: str) -> bool:
        return node not in self.removed

    # -- persistence -----------------------------------------------------------------------
    def load(self) -> None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            log.error("cluster: ignoring unreadable %s: %s", self.path, e)
            return
        if data.get("cluster") != self.cluster_name:
            log.warning("cluster: %s is for cluster %r, this node is in %r: not rejoining",
                        self.path, data.get("cluster"), self.cluster_name)
            return
        self.members = dict(data.get("members") or {})
        self.removed = set(data.get("removed") or ())
        self.cluster_id = str(data.get("id") or "")

    def save(self) -> None:
        if not self.members:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"cluster": self.cluster_name, "id": self.cluster_id,
                                   "members": self.members,
                                   "removed": sorted(self.removed)}, indent=1))
        os.replace(tmp, self.path)

    # -- start / stop ----------------------------------------------------------------------
    async def start(self) -> None:
        self.broker.cluster_membership = self
        self.load()
        from emqpy.cluster import workers
        if self.seeds or set(self.members) - {self.node} or workers.count(self.broker.config) > 1:
            await self._connect()  # (the main of node.process_workers: its siblings' NATS)
        if self.broker.config.cluster.discovery_strategy in ("manual", "static"):
            await self._listen()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for inv in self.invitations.values():
            inv["task"].cancel()
        self._stop_watch()

    async def _listen(self) -> None:
        host, port = self.join_addr
        try:
            self.server = await asyncio.start_server(
                self._serve, host, port, ssl=self.tls_server,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT if self.tls_server else None)
        except OSError as e:  # another node on this host has it: this one cannot be invited
            # (info, not a warning: brokers with the default name in one test run share it)
            log.info("cluster: cannot listen for invitations on %s:%d (%s); set "
                        "cluster.join_port to invite %s", host, port, e.strerror, self.node)

    async def _connect(self) -> None:
        """Start NATS and the link, routed to the members and seeds."""
        routes = [e["route"] for n, e in self.members.items() if n != self.node]
        routes += [natsd.route_url(s) for s in self.seeds if s != self.node]
        nats_cluster = f"{self.cluster_name}-{self.cluster_id}" if self.cluster_id else ""
        await _start(self.broker, sorted(set(routes)), nats_cluster)
        link = self.broker.cluster
        link.admit = self.admits
        link.register("cluster_membership", self._membership)
        await link.nc.subscribe(f"{link.prefix}.members", cb=self._on_change)
        self._checked = False
        self._watch = asyncio.get_running_loop().create_task(self._watch_nats())

    async def _disconnect(self) -> None:
        self._stop_watch()
        await _stop(self.broker)

    def _stop_watch(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        alarms = self.broker.alarms
        if alarms is not None:
            alarms.deactivate(NATS_ALARM)

    # -- what the API and ctl call ---------------------------------------------------------
    def running_nodes(self) -> list[str]:
        link = self.broker.cluster
        return link.running_nodes() if link is not None else [self.node]

    def stopped_nodes(self) -> list[str]:
        link = self.broker.cluster
        return link.stopped_nodes() if link is not None else []

    def in_cluster(self, node: str) -> bool:
        link = self.broker.cluster
        return link is not None and (node in self.members or node in link.peers
                                     or node in self.seeds) and node not in self.removed

    async def invite(self, node: str, timeout: float = DEFAULT_INVITE_TIMEOUT) -> None:
        """Make `node` join this node's cluster (EMQX's invite_node: the invited node joins)."""
        if node == self.node:
            raise Ignored()
        async with self.lock:
            if node in self.running_nodes():
                raise JoinError(f"{{already_in_cluster,{atom(self.node)}}}")
            started = self.broker.cluster is None
            if started:  # the first node of a new cluster: NATS starts once it has a route
                self.members = {self.node: self.own_entry()}
                self.removed.discard(self.node)
                self.cluster_id = secrets.token_hex(4)
            self.removed.discard(node)
            try:
                entry = await request(node, self.address_of(node), self.cookie, {
                    "op": "join", "cluster": self.cluster_name, "id": self.cluster_id,
                    "inviter": self.node, "members": self.members}, timeout, self.tls_client)
                if not (isinstance(entry, dict) and "route" in entry and "join" in entry):
                    raise JoinError(f"bad answer from {node}: {entry!r}")
            except BaseException:
                if started:  # still standalone, as before the invitation
                    self.members = {}
                    self.cluster_id = ""
                raise
            self.members[node] = entry
            self.save()
            if started:
                await self._connect()
            self._announce("add", node, entry)
            log.info("cluster: %s joined the cluster through %s", node, self.node)
        await self.wait_running(node, min(timeout, 5.0))

    async def wait_running(self, node: str, timeout: float) -> bool:
        """Wait (a few heartbeats at most) until `node` shows as running here."""
        deadline = time.monotonic() + timeout
        while node not in self.running_nodes():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def join(self, node: str, timeout: float = DEFAULT_INVITE_TIMEOUT) -> None:
        """`emqpy ctl cluster join <node>`: ask `node` to invite this one."""
        if node == self.node:
            raise Ignored()
        await request(node, join_address(node), self.cookie,
                      {"op": "invite", "node": self.node}, timeout + 5, self.tls_client)
        await self.wait_running(node, 5.0)

    async def leave(self) -> None:
        """This node leaves its cluster and becomes standalone (NATS stopped, nothing kept)."""
        async with self.lock:
            if self.broker.cluster is None:
                raise JoinError("node_not_in_cluster")
            await self._announce_leaving()
            await self._forget_cluster()

    async def force_leave(self, node: str) -> None:
        """Remove `node` from the cluster; it leaves on its own if it is running."""
        if node == self.node:
            raise Ignored()
        async with self.lock:
            if not self.in_cluster(node):
                raise JoinError("node_not_in_cluster")
            self._remove(node)
            self._announce("remove", node, None)

    def invite_async(self, node: str) -> None:
        if node == self.node:
            raise Ignored()
        if node in self.invitations:
            raise JoinError("The invitation task already created for this node")
        self.finished.pop(node, None)
        started = time.time()

        async def run():
            reason = None
            try:
                await self.invite(node, timeout=60)
            except JoinError as e:
                if not str(e).startswith("{already_in_cluster"):
                    reason = str(e)
            except Exception as e:
                reason = f"{type(e).__name__}: {e}"
            self.invitations.pop(node, None)
            self.finished[node] = {"started_at": started, "finished_at": time.time(),
                                   "reason": reason}
        self.invitations[node] = {"started_at": started,
                                  "task": asyncio.get_running_loop().create_task(run())}

    # -- changes -----------------------------------------------------------------------------
    async def _forget_cluster(self) -> None:
        self.members = {}
        self.removed = set()
        self.cluster_id = ""
        self.save()
        await self._disconnect()
        log.info("cluster: %s left its cluster", self.node)

    def _remove(self, node: str) -> None:
        self.members.pop(node, None)
        self.removed.add(node)
        self.save()
        if self.broker.cluster is not None:
            self.broker.cluster.forget(node)

    async def _announce_leaving(self) -> None:
        """Tell the others this node leaves, before its NATS connection goes."""
        link = self.broker.cluster
        if link is not None and link.nc is not None and link.nc.is_connected:
            try:
                await link.nc.publish(f"{link.prefix}.members",
                                      msgpack.packb([self.node, "leave", self.node, None]))
                await link.nc.flush(timeout=2)
            except Exception as e:  # the others will see it stopped instead
                log.warning("cluster: could not announce the leave: %s", e)

    def _announce(self, op: str, node: str, entry) -> None:
        link = self.broker.cluster
        if link is not None and link.nc is not None:
            self._spawn(link.nc.publish(
                f"{link.prefix}.members", msgpack.packb([self.node, op, node, entry])))

    async def _on_change(self, m) -> None:
        sender, op, node, entry = msgpack.unpackb(m.data, raw=False)
        if sender == self.node:
            return
        if op == "add":
            self.removed.discard(node)
            if node != self.node:
                self.members[node] = entry
            self.save()
        elif node == self.node:  # this node was removed
            log.warning("cluster: %s removed this node from the cluster", sender)
            self._spawn(self._leave_removed())
        else:
            self._remove(node)

    async def _leave_removed(self) -> None:
        async with self.lock:
            if self.broker.cluster is not None:
                await self._forget_cluster()

    def _membership(self) -> dict:
        return {"members": self.members, "removed": sorted(self.removed)}

    async def _check_membership(self, peer: str) -> None:
        """Once per connection: ask a running member whether this node is still one of its
        members (it may have been removed while this node was down), and learn what it knows."""
        link = self.broker.cluster
        try:
            answer = await link.call(peer, "cluster_membership")
        except Exception:
            return
        self._checked = True
        if self.node in answer["removed"]:
            log.warning("cluster: %s says this node was removed from the cluster", peer)
            # in a task of its own: leaving cancels this watch task
            self._spawn(self._leave_removed())
            return
        changed = False
        for node, entry in answer["members"].items():
            if node not in self.members and node not in self.removed:
                self.members[node] = entry
                changed = True
        if changed:
            self.save()

    # -- NATS health -----------------------------------------------------------------------
    async def _watch_nats(self) -> None:
        """Restart the embedded nats-server when it dies; alarm while this node has no NATS
        (it keeps serving its own clients; routing to the others resumes when NATS is back)."""
        broker = self.broker
        rounds = 0
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            rounds += 1
            try:
                link, server = broker.cluster, broker.cluster_nats
                if link is None:
                    return
                if server is not None and not server.alive():
                    self._alarm(True, "the embedded nats-server exited")
                    log.warning("cluster: the nats-server of %s exited; restarting it", self.node)
                    await asyncio.to_thread(server.stop)
                    try:
                        await asyncio.to_thread(server.start)
                    except RuntimeError as e:
                        log.error("cluster: %s", e)
                        continue
                connected = link.nc is not None and link.nc.is_connected
                self._alarm(not connected, "no connection to NATS")
                if (server is not None and rounds % ROUTE_CHECK_EVERY == 1
                        and not self._route_check_running):
                    self._spawn(self._check_route_tls(link))  # (seconds: not in this loop)
                if connected and not self._checked and self.members:
                    peers = [n for n in link.running_nodes() if n != self.node]
                    if peers:
                        await self._check_membership(peers[0])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cluster: NATS watch failed")

    async def _check_route_tls(self, link) -> None:
        """Say in the log why a member that is not running here cannot be routed to when TLS
        is the reason (TLS on one side only, a certificate of another CA): the NATS servers
        refuse each other's routes, and without this only their own logs would tell."""
        self._route_check_running = True
        try:
            await self._check_routes(link)
        finally:
            self._route_check_running = False

    async def _check_routes(self, link) -> None:
        running = set(link.running_nodes())
        routes = {n: e["route"] for n, e in self.members.items() if n != self.node}
        routes.update({s: natsd.route_url(s) for s in self.seeds if s != self.node})
        for node, url in routes.items():
            if node in running or node in self.removed:
                continue
            problem = await asyncio.to_thread(tls.route_problem, url, self.tls_client)
            if problem is None:
                self._route_tls_reported.pop(url, None)
            elif self._route_tls_reported.get(url) != problem:
                self._route_tls_reported[url] = problem
                log.error("cluster: cannot route to %s: its NATS route port %s %s; every node "
                          "needs the same rpc.protocol and, with ssl, a certificate of the "
                          "same CA (rpc.cacertfile) naming its host", node, url, problem)

    def _alarm(self, down: bool, why: str) -> None:
        alarms = self.broker.alarms
        if alarms is None:
            return
        if down:
            alarms.activate(NATS_ALARM, {"node": self.node, "reason": why},
                            f"NATS unavailable on {self.node}: {why}; messages are not "
                            "routed to the other nodes")
        else:
            alarms.deactivate(NATS_ALARM)

    # -- the join listener -----------------------------------------------------------------
    async def _serve(self, reader, writer) -> None:
        mine = secrets.token_hex(16)
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                theirs = str((await _recv(reader))["nonce"])
                await _send(writer, {"node": self.node, "nonce": mine})
                req = await _recv(reader)
            body = req["body"]
            if not hmac.compare_digest(str(req.get("proof")),
                                       _proof(self.cookie, "req", mine, theirs, _canon(body))):
                log.warning("cluster: refused a join request with a wrong cookie from %s",
                            writer.get_extra_info("peername"))
                await _send(writer, {"ok": False, "reason": "bad_cookie"})
                return
            try:
                reply = {"ok": True, "result": await self._handle(body)}
            except Ignored:
                reply = {"ok": False, "reason": "ignore"}
            except JoinError as e:
                reply = {"ok": False, "reason": str(e)}
            reply["proof"] = _proof(self.cookie, "rep", theirs, mine, _canon(reply))
            await _send(writer, reply)
        except TlsMismatch:
            log.warning("cluster: refused a TLS connection to the join port from %s: this "
                        "node has rpc.protocol = tcp (every node needs the same)",
                        writer.get_extra_info("peername"))
        except (OSError, asyncio.IncompleteReadError, ValueError, KeyError, TypeError,
                TimeoutError) as e:
            log.info("cluster: dropped a join connection: %s", type(e).__name__)
        except Exception:
            log.exception("cluster: join request failed")
        finally:
            writer.close()

    async def _handle(self, body: dict):
        op = body.get("op")
        if op == "join":
            return await self._joined(str(body["inviter"]), str(body["cluster"]),
                                      str(body.get("id") or ""), dict(body["members"]))
        if op == "invite":
            await self.invite(str(body["node"]))
            return None
        raise JoinError(f"unknown request {op!r}")

    async def _joined(self, inviter: str, cluster: str, cluster_id: str, members: dict) -> dict:
        """`inviter` asks this node into its cluster (EMQX's join, run on the invited node)."""
        if cluster != self.cluster_name:
            raise JoinError(f"{{cluster_name_mismatch,{cluster},{self.cluster_name}}}")
        async with self.lock:
            if self.broker.cluster is not None:
                if inviter in self.running_nodes():
                    raise JoinError(f"{{already_in_cluster,{atom(inviter)}}}")
                await self._announce_leaving()  # leave the cluster it was in
                await self._forget_cluster()
            self.members = {n: e for n, e in members.items() if n != self.node}
            self.members[self.node] = self.own_entry()
            self.removed = set()
            self.cluster_id = cluster_id
            self.save()
            await self._connect()
            log.info("cluster: %s joined the cluster of %s", self.node, inviter)
            return self.own_entry()
