"""A node's link to the others over NATS: who is up, which topic filters each node has
subscribers for, and the messages forwarded to them.

Subjects (``<p>`` is ``emqpy.<cluster name>``):
- ``<p>.hb``: every second each node says it is up, with the version of its route table;
- ``<p>.routes``: the changes of a node's route table (filters added/removed), batched per
  event-loop iteration and numbered; a node that sees a gap (or a version it does not have
  in a heartbeat) asks the owner for the whole table on ``<p>.dump.<node>``;
- ``<p>.fwd.<node>``: messages for a node, batched per loop iteration, each with the filter it
  matched there (the receiver delivers to that filter's subscribers only, as EMQX does);
- ``<p>.ack.<node>``: how far a receiver has processed the batches a node sent it, which
  bounds the bytes in flight towards each node (`window_limit`, see `Window`);
- ``<p>.rpc.<node>``: requests to a node's registered functions (`call`/`register`), which the
  management API uses to answer for the whole cluster.

Remote nodes' filters live in a Router of their own (``remote``), so a single node pays
nothing and a clustered one pays one match per publish for the forwarding.
"""
from __future__ import annotations

import asyncio
import logging
import math
import random
import ssl
import time
import zlib

import msgpack

from emqpy.broker.message import Message
from emqpy.broker.output import Backpressure
from emqpy.broker.overlap import merged_subscriptions, same_message_runs
from emqpy.broker.router import Router
from emqpy.cluster.records import (QOS0_HEADERS, RUN_RECORD, Batch, Run, message_fields,
                                   message_from_raw_record, message_from_record, raw_fields,
                                   run_messages, unpack_message)
from emqpy.mqtt.packets import fixed_header

log = logging.getLogger("emqpy.cluster")

HEARTBEAT = 1.0  # seconds between heartbeats
# A node silent this long is asked whether it is still there: when NATS has nobody on its
# subject ("no responders": its process or its NATS died, or the network to it is cut), it
# is stopped at once instead of after `cluster.down_after` (ClusterLink.down_after).
PROBE_AFTER = 2.5 * HEARTBEAT
PING = "cluster.ping"  # the call a probe makes (any answer, even an error, means alive)
# The format of forwarded batches and their acks. Nodes say theirs in each heartbeat (header
# PROTOCOL_HEADER; a node of a version before that says nothing: 0) and route only between
# nodes of the same one: a node of another never gets this node's route table, nor this node
# its, so neither forwards to the other a batch it would misread (log line and alarm instead).
# Bump it with any change of what `_send_batch`/`_on_forward`/`_on_ack` exchange.
FORWARD_PROTOCOL = 4
PROTOCOL_HEADER = "Emqpy-Forward-Protocol"
PROTOCOL_ALARM = "cluster_protocol_mismatch/"  # + the node's name
# EMQX's alarm of a partition: raised when a stopped node comes back without having restarted
# (it ran, unreachable: a partition, or a NATS outage on one side), cleared once its route
# table is fetched again.
PARTITION_ALARM = "partition"
FORWARD_BATCH = 64 * 1024  # bytes: a batch of forwarded messages goes out at this size
# Bytes sent to a node and not yet acknowledged: over it, hold back the publishers until half
# of it is left in flight. A node saturated by its own clients reads its NATS socket once
# per loop iteration and acks a few iterations later: the window is what reaches it per ack
# round trip, so its share of the node's work (bench/README.md, fan-in: 4 MiB 1.15x, 16 MiB
# 1.33x the one-node figure).
FORWARD_WINDOW = 16 << 20
# ... and what all the nodes forwarding to one node may have in flight together (each gets
# its share of it when there are more than three): NATS cuts off a client it holds more
# than 64 MB for (its default max_pending) as a slow consumer.
FORWARD_WINDOWS_TOTAL = 48 << 20
CONNECT_WAIT = 30.0  # seconds a node's first connection to NATS may take (see start)
READ_BUFFER = 8 << 20  # bytes nats-py reads at once (see ClusterLink.start)
ACK_TIMEOUT = 3.0  # seconds without an ack while over the window: assume it lost, reopen


class Window(Backpressure):
    """Flow control towards one node. Forwarded batches carry the running total of bytes
    sent to that node; the node acknowledges the total it has processed. Over the window
    (`ClusterLink.window_limit`) the publishers whose messages go to that node stop reading
    (as for a slow subscriber), and read again when acks bring it under half: a node busy
    with its own clients, which reads its NATS socket seldom, slows the publishers feeding it
    instead of letting NATS buffer without bound (and cut it off as a slow consumer)."""
    __slots__ = ("sent", "acked", "acked_at")

    def __init__(self):
        super().__init__()
        self.sent = 0
        self.acked = 0
        self.acked_at = time.monotonic()

    def reopen(self) -> None:
        """Forget what is in flight (the node is gone, restarted, or its acks were lost)."""
        self.acked = self.sent
        self.acked_at = time.monotonic()
        self.decongest()


class Peer:
    __slots__ = ("name", "version", "last_seen", "filters", "up_since", "syncing", "probing",
                 "protocol", "routable")

    def __init__(self, name: str):
        self.name = name
        self.version = -1  # the route-table version we hold of it (-1: none yet)
        self.last_seen = 0.0
        self.filters: set[str] = set()
        self.up_since = 0
        self.syncing = False
        self.probing = False
        self.protocol: int | None = None  # its forwarding protocol (None: not heard yet)
        self.routable = False  # its protocol is ours: routes are exchanged with it


def _split(key: str) -> tuple[str | None, str]:
    """``$share/g/flt`` -> (g, flt); a plain filter -> (None, flt)."""
    if key.startswith("$share/"):
        _, group, flt = key.split("/", 2)
        return group, flt
    return None, key


class ClusterLink:
    def __init__(self, broker, servers: list[str], cluster_name: str, **connect_options):
        self.broker = broker
        self.node = broker.node_name
        self.servers = servers
        self.connect_options = connect_options  # nats-py's TLS options (emqpy/cluster/tls.py)
        self.prefix = f"emqpy.{cluster_name}"
        self.nc = None
        self.peers: dict[str, Peer] = {}
        self.remote = Router()  # remote nodes' filters; a route's subs: node name -> node name
        self.version = 0  # our route table's version: +1 per published batch of changes
        self._changes: list[tuple[str, int]] = []
        self._out: dict[str, Batch] = {}  # node -> the batch it gets (see _queue)
        self._windows: dict[str, Window] = {}  # node -> flow control towards it
        self._acks: dict[str, int] = {}  # sender -> bytes of its batches processed (unsent)
        self._packer = msgpack.Packer()
        self._tails: dict[str, bytes] = {}  # filter -> its record's encoded tail
        self._forwarded = 0  # messages queued since the last flush (stats["forwarded"])
        self._flush_scheduled = False
        self._tasks: list[asyncio.Task] = []
        self.started_at = int(time.time() * 1000)
        # window_full: times a node's window filled and publishers feeding it were held back
        self.stats = {"forwarded": 0, "received": 0, "window_full": 0}
        self.stopping = False
        self._rr: dict = {}  # (group, filter) -> round-robin position over nodes
        self._sticky: dict = {}  # (group, filter) -> the node a sticky group sticks to
        # fn(publish) called at each flush by parts that batch their own subjects
        self.flushers: list = []
        self.rpcs: dict = {}  # name -> fn(*args) (or coroutine function) other nodes may call
        self.admit = None  # fn(node) -> bool: whether a node is one of ours (membership.py)
        # fn(node) called when a stopped node comes back without a restart (a partition
        # healed; sessions.py reconciles the clients both sides took meanwhile)
        self.on_back: list = []
        self.register(PING, lambda: True)
        self.protocol = FORWARD_PROTOCOL  # (tests play a node of another version with it)
        # a node silent this long is stopped: its routes are dropped (cluster.down_after)
        self.down_after = broker.config.cluster.down_after
        self._connecting = None  # the first connection to NATS, while it is being made
        self._connect_error = None  # ... the last error it met
        self._refused = False  # ... whether that was a TLS handshake that failed

    # -- start / stop ----------------------------------------------------------------------
    async def start(self) -> None:
        import nats
        import nats.aio.client
        # nats-py stops reading its socket while it holds twice this much unparsed (its read
        # size, 32 KiB by default): forwarded batches then wait in the kernel while the node
        # reads its own publishers' sockets whole each loop iteration, and the node that
        # forwards to it idles on its window. (nats-py has no option for it; it reads the
        # module's value at connect time.)
        nats.aio.client.DEFAULT_BUFFER_SIZE = READ_BUFFER
        # nats-py retries a first connection as long as later ones (for ever): a refused
        # certificate ends it at once (`_error`), anything else after CONNECT_WAIT
        self._connecting = asyncio.ensure_future(nats.connect(
            self.servers, name=self.node, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
            allow_reconnect=True, error_cb=self._error, disconnected_cb=self._disconnected,
            reconnected_cb=self._reconnected, **self.connect_options))
        try:
            self.nc = await asyncio.wait_for(self._connecting, CONNECT_WAIT)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            refused, error = self._refused, self._connect_error
            if error is None and not refused:
                raise  # (cancelled from outside)
            raise RuntimeError(
                f"cluster: cannot connect to NATS at {', '.join(self.servers)}"
                + (": its TLS handshake failed" if refused else f" within {CONNECT_WAIT:.0f} s")
                + f" ({error})") from None
        finally:
            self._connecting = None
        p = self.prefix
        await self.nc.subscribe(f"{p}.hb", cb=self._on_heartbeat)
        await self.nc.subscribe(f"{p}.routes", cb=self._on_routes)
        await self.nc.subscribe(f"{p}.dump.{self.node}", cb=self._on_dump_request)
        await self.nc.subscribe(f"{p}.fwd.{self.node}", cb=self._on_forward)
        await self.nc.subscribe(f"{p}.ack.{self.node}", cb=self._on_ack)
        await self.nc.subscribe(f"{p}.rpc.{self.node}", cb=self._on_rpc)
        self.add_task(self._heartbeats())

    def add_task(self, coro) -> None:
        """Run `coro` while the link runs (cancelled when it stops)."""
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.get_running_loop().create_task(coro))

    async def stop(self) -> None:
        self.stopping = True
        for t in self._tasks:
            t.cancel()
        if self.nc is not None:
            try:
                await self.nc.drain()
            except Exception:  # already closed / server gone: nothing left to flush
                pass
            self.nc = None

    async def _error(self, e) -> None:
        log.warning("cluster: NATS error: %s", e)
        connecting = self._connecting
        if connecting is not None:  # the first connection
            self._connect_error = e
            if isinstance(e, ssl.SSLError):  # a certificate refused: retrying will not help
                self._refused = True
                connecting.cancel()

    async def _disconnected(self) -> None:
        if not self.stopping:
            log.warning("cluster: lost the NATS connection; reconnecting")

    async def _reconnected(self) -> None:
        log.info("cluster: NATS connection back")

    # -- membership ------------------------------------------------------------------------
    async def _heartbeats(self) -> None:
        while True:
            try:
                await self._beat()
                self._expire_peers()
            except Exception:
                log.exception("cluster: heartbeat failed")
            await asyncio.sleep(HEARTBEAT)

    async def _beat(self) -> None:
        if self.nc is not None and self.nc.is_connected:
            await self.nc.publish(f"{self.prefix}.hb", msgpack.packb(
                [self.node, self.version, self.started_at]),
                headers={PROTOCOL_HEADER: str(self.protocol)})

    def _expire_peers(self) -> None:
        now = time.monotonic()
        for peer in list(self.peers.values()):
            silent = now - peer.last_seen
            if silent > self.down_after:
                if peer.version >= 0:  # (once)
                    self._node_down(peer, "silent for %.0f s" % silent)
            elif silent > PROBE_AFTER and not peer.probing:
                peer.probing = True
                self.add_task(self._probe(peer))
        for node, window in self._windows.items():
            if window.congested and now - window.acked_at > ACK_TIMEOUT:
                log.warning("cluster: no forwarding ack from %s for %.0f s: resuming", node,
                            now - window.acked_at)
                window.reopen()

    async def _probe(self, peer: Peer) -> None:
        try:
            await self.call(peer.name, PING, timeout=max(1.0, self.down_after - PROBE_AFTER))
        except NodeDown:
            pass  # (marked stopped by `call`)
        except RpcError as e:  # no answer in time: left to down_after
            log.info("cluster: %s silent: %s", peer.name, e)
        finally:
            peer.probing = False

    def _node_down(self, peer: Peer, why: str) -> None:
        """`peer` is stopped from now until its next heartbeat: its routes are dropped and
        what was in flight to it forgotten."""
        log.warning("cluster: %s is down (%s)", peer.name, why)
        self._set_filters(peer, set())
        peer.version = -1
        peer.last_seen = -math.inf  # stopped: running_nodes leaves it out
        peer.protocol = None  # (told again by its next heartbeat)
        peer.routable = False
        self._protocol_alarm(peer.name, None)
        self._reopen(peer.name)

    def forget(self, name: str) -> None:
        """A node left the cluster: drop it and its filters."""
        peer = self.peers.pop(name, None)
        if peer is not None:
            self._set_filters(peer, set())
        self._protocol_alarm(name, None)
        self._reopen(name)

    def running_nodes(self) -> list[str]:
        now = time.monotonic()
        return sorted([self.node] + [p.name for p in self.peers.values()
                                     if now - p.last_seen <= self.down_after])

    def stopped_nodes(self) -> list[str]:
        now = time.monotonic()
        return sorted(p.name for p in self.peers.values() if now - p.last_seen > self.down_after)

    async def _on_heartbeat(self, m) -> None:
        name, version, up_since = msgpack.unpackb(m.data)
        if name == self.node or (self.admit is not None and not self.admit(name)):
            return
        peer = self.peers.get(name)
        if peer is None:
            peer = self.peers[name] = Peer(name)
            log.info("cluster: %s joined", name)
        now = time.monotonic()
        new = up_since != peer.up_since
        if new:  # a new incarnation: its old table is gone
            peer.up_since = up_since
            peer.version = -1
            self._reopen(name)  # (and what was in flight to the old one)
        elif now - peer.last_seen > self.down_after:
            self._partition_alarm(name, True)
            for fn in self.on_back:
                fn(name)
        peer.last_seen = now
        try:
            protocol = int((m.headers or {}).get(PROTOCOL_HEADER, 0))
        except ValueError:
            protocol = -1
        routable = protocol == self.protocol
        if protocol != peer.protocol or routable != peer.routable:
            peer.protocol, peer.routable = protocol, routable
            if not routable:  # no routes to it, none from it
                self._set_filters(peer, set())
                peer.version = -1
                self._reopen(name)
            self._protocol_alarm(name, protocol)
        if routable and peer.version != version:
            self._sync(peer)
        if new:  # it may have started after our last beat: it hears us now, not in a second
            await self._beat()

    def _protocol_alarm(self, node: str, protocol: int | None) -> None:
        """Raise (another protocol) or clear (ours, or None: the node is gone) the alarm of
        a node this node cannot exchange forwarded messages with."""
        alarms = self.broker.alarms
        name = PROTOCOL_ALARM + node
        if protocol is None or protocol == self.protocol:
            if alarms is not None and alarms.deactivate(name):
                log.info("cluster: %s is gone or speaks forwarding protocol %s again", node,
                         self.protocol)
            return
        log.error("cluster: %s speaks forwarding protocol %s, this node %s (another emqpy "
                  "version): no messages are routed between them", node, protocol or "unknown",
                  self.protocol)
        if alarms is not None:
            alarms.activate(name, {"node": node, "protocol": protocol,
                                   "this_node_protocol": self.protocol},
                            f"{node} runs an emqpy version whose cluster forwarding this node "
                            f"cannot read: messages are not routed between {node} and "
                            f"{self.node}")

    def _partition_alarm(self, node: str, occurred: bool) -> None:
        alarms = self.broker.alarms
        if alarms is None:
            return
        if occurred:
            log.warning("cluster: %s is back without a restart: a partition healed", node)
            alarms.activate(PARTITION_ALARM, {"occurred": node},
                            f"Partition occurs at node {node}")
        elif PARTITION_ALARM in alarms.active \
                and alarms.active[PARTITION_ALARM].details.get("occurred") == node:
            alarms.deactivate(PARTITION_ALARM, {"healed": node},
                              f"Partition healed at node {node}")

    # -- route tables ----------------------------------------------------------------------
    def local_route_changed(self, key: str, added: bool) -> None:
        """The broker says a filter got its first (or lost its last) plain subscriber here
        (`key` the filter), or a shared group appeared or went (`key` ``$share/g/filter``)."""
        self._changes.append((key, 1 if added else 0))
        self._schedule()

    def local_filters(self) -> list[str]:
        keys = []
        for flt, route in self.broker.router.routes.items():
            if route.subs:
                keys.append(flt)
            keys.extend(f"$share/{g}/{flt}" for g in route.groups)
        return keys

    async def _on_dump_request(self, m) -> None:
        try:
            _, protocol = msgpack.unpackb(m.data)
        except (ValueError, TypeError):  # a node before protocol versions (empty request)
            protocol = 0
        if protocol != self.protocol:  # it would forward us batches we cannot read
            return
        await m.respond(msgpack.packb([self.version, self.local_filters()]))

    def _sync(self, peer: Peer) -> None:
        if peer.syncing or self.nc is None:
            return
        peer.syncing = True

        async def fetch():
            try:
                answer = await self.nc.request(f"{self.prefix}.dump.{peer.name}",
                                               msgpack.packb([self.node, self.protocol]),
                                               timeout=5)
                version, filters = msgpack.unpackb(answer.data)
                if not peer.routable:  # found another protocol (or down) meanwhile
                    return
                self._set_filters(peer, set(filters))
                peer.version = version
                self._partition_alarm(peer.name, False)
            except Exception as e:
                log.warning("cluster: could not fetch the routes of %s: %s", peer.name, e)
            finally:
                peer.syncing = False
        self.add_task(fetch())

    def _set_filters(self, peer: Peer, filters: set[str]) -> None:
        for flt in peer.filters - filters:
            self._remote_del(peer.name, flt)
        for flt in filters - peer.filters:
            self._remote_add(peer.name, flt)
        peer.filters = filters

    # In `remote`, a route's subs are the nodes with plain subscribers of its filter, and its
    # groups map a group name to the set of nodes with members of that group.
    def _remote_add(self, node: str, key: str) -> None:
        group, flt = _split(key)
        route = self.remote.route_for(flt)
        if group is None:
            route.subs[node] = node
        else:
            route.groups.setdefault(group, set()).add(node)

    def _remote_del(self, node: str, key: str) -> None:
        group, flt = _split(key)
        route = self.remote.route_for(flt, create=False)
        if route is None:
            return
        if group is None:
            route.subs.pop(node, None)
        else:
            nodes = route.groups.get(group)
            if nodes is not None:
                nodes.discard(node)
                if not nodes:
                    del route.groups[group]
        self.remote.drop_if_empty(route)

    async def _on_routes(self, m) -> None:
        name, base, version, changes = msgpack.unpackb(m.data)
        if name == self.node or (self.admit is not None and not self.admit(name)):
            return
        peer = self.peers.get(name)
        if peer is None:
            peer = self.peers[name] = Peer(name)
        if not peer.routable:  # another protocol, stopped, or not known until its heartbeat
            return
        peer.last_seen = time.monotonic()
        if peer.version != base:  # missed something (or never synced): take the whole table
            self._sync(peer)
            return
        for flt, added in changes:
            if added:
                if flt not in peer.filters:
                    peer.filters.add(flt)
                    self._remote_add(name, flt)
            elif flt in peer.filters:
                peer.filters.discard(flt)
                self._remote_del(name, flt)
        peer.version = version

    # -- forwarding ------------------------------------------------------------------------
    def forward(self, msg: Message, publisher=None, routes: tuple | None = None) -> int:
        """After local routing: queue `msg` for every node with plain subscribers of a matching
        filter (once per node and filter), and for shared groups that have no member here
        (those with members here went through `dispatch_groups`); returns forwards queued.
        `publisher`: the Channel it came from (held back while a node's window is full);
        `routes`: what `remote.match` returns for its topic, if the caller has it."""
        if routes is None:
            routes = self.remote.match(msg.topic)
            if not routes:
                return 0
        raw = msg.raw_body
        # a QoS 0 message that kept its PUBLISH packet, for one filter only (where several
        # match, `_deliver_merged` needs its records side by side), goes in a run
        if raw is not None and len(routes) == 1 and not msg.qos and not msg.retain \
                and msg.expire_at is None:  # (raw_fields' conditions, without its list)
            route = routes[0]
            if not route.groups:
                for node in route.subs:
                    self._queue_in_run(node, route.filter, msg, raw, publisher)
                self._forwarded += len(route.subs)
                return len(route.subs)
        n = 0
        body = None  # the message encoded once, whatever the number of nodes and filters
        local = self.broker.router.routes
        for route in routes:
            for node in route.subs:
                if body is None:
                    body = self._body(msg)
                self._queue(node, route.filter, None, body, publisher)
                n += 1
            if route.groups:
                here = local.get(route.filter)
                for group, nodes in route.groups.items():
                    if here is not None and group in here.groups:
                        continue
                    if body is None:
                        body = self._body(msg)
                    self._queue(self._pick(group, route.filter, sorted(nodes), msg),
                                route.filter, group, body, publisher)
                    n += 1
        return n

    def dispatch_groups(self, route, msg: Message, publisher) -> int:
        """A local route's shared groups: each message to one member of all the cluster's
        members of a group, choosing the node first (EMQX's strategies where they name a
        node: `local` prefers this one), then the member there."""
        n = 0
        remote = self.remote.routes.get(route.filter)
        for name, group in route.groups.items():
            nodes = remote.groups.get(name) if remote is not None else None
            if not nodes or group.strategy == "local":
                n += group.dispatch(msg, None, publisher)
                continue
            node = self._pick(name, route.filter, sorted(nodes | {self.node}), msg)
            if node == self.node:
                n += group.dispatch(msg, None, publisher)
            else:
                self._queue(node, route.filter, name, self._body(msg), publisher)
                n += 1
        return n

    def _pick(self, group: str, flt: str, nodes: list[str], msg: Message) -> str:
        if len(nodes) == 1:
            return nodes[0]
        strategy = self.broker.config.mqtt.shared_subscription_strategy
        if strategy == "hash_topic":
            return nodes[zlib.crc32(msg.topic.encode()) % len(nodes)]
        if strategy == "hash_clientid":
            return nodes[zlib.crc32(msg.sender.encode()) % len(nodes)]
        if strategy in ("round_robin", "round_robin_per_group"):
            key = (group, flt)
            i = self._rr[key] = self._rr.get(key, -1) + 1
            return nodes[i % len(nodes)]
        if strategy == "sticky":
            key = (group, flt)
            cur = self._sticky.get(key)
            if cur not in nodes:
                cur = self._sticky[key] = random.choice(nodes)
            return cur
        return random.choice(nodes)

    # A batch's records (emqpy/cluster/records.py) are written as they come: a message
    # record as the message's fields (encoded once in `forward`, whatever the number of nodes
    # and filters, its array header counting two more) and its tail (filter, group: encoded
    # once per plain filter); a run as it closes (another record comes, or the batch goes).
    # The batch's array header, which needs the count, is written when it goes out: at the
    # end of the loop iteration, or as soon as it reaches FORWARD_BATCH bytes (NATS refuses
    # messages over its max_payload, 1 MB by default). The receiver decodes a batch in one
    # call and delivers QoS 0 records as the broker's inline fan-out does (`_on_forward`).
    def _body(self, msg: Message) -> bytes:
        """The message's fields encoded (`raw_fields`, else `message_fields`) as an array
        (of under 16 items: its header is one byte, 0x90 + its length)."""
        fields = raw_fields(msg)
        if fields is None:
            fields = message_fields(msg)
        return self._packer.pack(fields)

    def _batch(self, node: str, publisher) -> Batch:
        """The batch for `node`, holding `publisher` back while the node's window is full."""
        batch = self._out.get(node)
        if batch is None:
            batch = self._out[node] = Batch()
            self._schedule()
            window = self._windows.get(node)
            if window is None:
                window = self._windows[node] = Window()
            if window.congested:
                window.throttle(publisher)
        elif publisher is not None:
            window = self._windows[node]
            if window.congested:
                window.throttle(publisher)
        return batch

    def _queue_in_run(self, node: str, flt: str, msg: Message, raw: bytes,
                      publisher) -> None:
        """Add `msg`, kept as the PUBLISH body `raw`, to the run for (flt, publisher) that the
        node's batch ends with, or to a new one."""
        batch = self._out.get(node)
        run = batch.run if batch is not None else None
        # (the common case: the publisher's next message for the same filter. A publisher
        # already in the batch was held back then if the window was full, and the window
        # fills only when a batch goes out, which ends it: no check to repeat)
        if run is None or run.publisher is not publisher or publisher is None \
                or run.flt != flt or run.msg.flags != msg.flags:
            batch = self._batch(node, publisher)
            run = batch.run
            if run is None or not run.takes(flt, msg, publisher):
                if run is not None:
                    self._close_run(batch)
                run = batch.run = Run(flt, msg, publisher)
        frames = run.frames
        size = len(raw)
        frames += QOS0_HEADERS[size] if size < 128 else fixed_header(0x30, size)
        frames += raw
        run.stamps.append(msg.timestamp)
        if size > run.largest:
            run.largest = size
        if len(frames) + len(batch.data) >= FORWARD_BATCH:
            del self._out[node]
            self._send_batch(node, batch)

    def _close_run(self, batch: Batch) -> None:
        run, batch.run = batch.run, None
        batch.data += self._packer.pack(run.record())
        batch.count += 1

    def _queue(self, node: str, flt: str, group: str | None, body: bytes,
               publisher=None) -> None:
        batch = self._batch(node, publisher)
        if batch.run is not None:
            self._close_run(batch)
        tail = self._tails.get(flt) if group is None else None
        if tail is None:
            tail = self._packer.pack(flt) + self._packer.pack(group)
            if group is None:
                if len(self._tails) >= 10_000:  # filters come and go: keep it bounded
                    self._tails.clear()
                self._tails[flt] = tail
        data = batch.data
        start = len(data)
        data += body
        data[start] += 2  # the array header (0x90 + length): the tail adds two items
        data += tail
        batch.count += 1
        self._forwarded += 1
        if len(data) >= FORWARD_BATCH:
            del self._out[node]
            self._send_batch(node, batch)

    def _send_batch(self, node: str, batch: Batch) -> None:
        if batch.run is not None:
            self._close_run(batch)
        window = self._windows[node]
        window.sent += len(batch.data)
        if window.sent - window.acked > self.window_limit() and not window.congested:
            window.congested = True  # the publishers are held back as they queue more
            self.stats["window_full"] += 1
        pack = self._packer.pack
        self._send(f"{self.prefix}.fwd.{node}", b"\xdd" + (batch.count + 2).to_bytes(4, "big")
                   + pack(self.node) + pack(window.sent) + batch.data)

    def window_limit(self) -> int:
        """The bytes this node may have in flight towards another (see FORWARD_WINDOW)."""
        return min(FORWARD_WINDOW, FORWARD_WINDOWS_TOTAL // max(1, len(self.peers)))

    def _reopen(self, node: str) -> None:
        window = self._windows.get(node)
        if window is not None:
            window.reopen()

    async def _on_ack(self, m) -> None:
        node, total = msgpack.unpackb(m.data)
        window = self._windows.get(node)
        if window is None or total <= window.acked:
            return
        window.acked = min(total, window.sent)  # (a late ack from before a reopen: capped)
        window.acked_at = time.monotonic()
        if window.congested and window.sent - window.acked <= self.window_limit() // 2:
            window.decongest()

    def _send(self, subject: str, data: bytes) -> None:
        if self.nc is None:
            return
        task = asyncio.ensure_future(self.nc.publish(subject, data))
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("cluster: forwarding failed: %r", task.exception())

    def _schedule(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.broker.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        nc = self.nc
        if nc is None:
            self._out.clear()
            self._acks.clear()
            return
        if self._changes:
            base = self.version
            self.version += 1
            data = msgpack.packb([self.node, base, self.version, self._changes])
            self._changes = []
            asyncio.ensure_future(nc.publish(f"{self.prefix}.routes", data))
        for flush in self.flushers:
            flush(lambda subject, data: asyncio.ensure_future(nc.publish(subject, data)))
        if self._out:
            out, self._out = self._out, {}
            for node, batch in out.items():
                self._send_batch(node, batch)
        if self._acks:
            acks, self._acks = self._acks, {}
            for sender, total in acks.items():
                asyncio.ensure_future(nc.publish(f"{self.prefix}.ack.{sender}",
                                                 msgpack.packb((self.node, total))))
        if self._forwarded:
            self.stats["forwarded"] += self._forwarded
            self._forwarded = 0

    async def _on_forward(self, m) -> None:
        broker = self.broker
        routes = broker.router.routes
        batch = msgpack.unpackb(m.data, raw=False)
        sender, total = batch[0], batch[1]
        self._schedule()
        self._acks[sender] = total  # acknowledged at the end of this loop iteration
        received = len(batch) - 2
        if broker.overlap_single:
            self.stats["received"] += received + self._deliver_merged(batch[2:])
            return
        inline = broker.qos0_inline
        for i in range(2, len(batch)):
            rec = batch[i]
            route = routes.get(rec[-2])
            if len(rec) == RUN_RECORD:
                received += rec[2] - 1
                if route is not None:
                    self._deliver_run(route, rec)
                continue
            if route is None:  # unsubscribed meanwhile
                continue
            msg = message_from_raw_record(rec) if len(rec) == 9 else message_from_record(rec)
            if rec[-1] is None and inline and msg.qos == 0 and msg.expire_at is None:
                broker.fanout_qos0(msg, route.subs, None)  # (as a local QoS 0 publish)
            else:
                self._deliver(route, rec[-1], msg)
        self.stats["received"] += received

    @staticmethod
    def _deliver(route, group: str | None, msg: Message) -> None:
        if group is None:
            for sub in list(route.subs.values()):
                sub.session.deliver(msg, sub, None, False, None)
        else:
            g = route.groups.get(group)
            if g is not None:
                g.dispatch(msg, None, None)

    def _deliver_run(self, route, rec: list) -> None:
        frames, _, count, largest, v5, sender = rec[:6]
        broker = self.broker
        if broker.fanout_qos0_frames(frames, count, largest, v5, sender, route.subs):
            return
        for msg in run_messages(rec):
            if broker.qos0_inline:
                broker.fanout_qos0(msg, route.subs, None)
            else:
                self._deliver(route, None, msg)

    def _deliver_merged(self, recs: list) -> int:
        """mqtt.overlapping_subscriptions = single: the records of one message for several
        filters here (queued back to back by the sender) make one copy per client (a run's
        messages match one filter each: as they are). Returns the records' messages beyond
        one per record."""
        more = 0
        records: list = []  # message records up to the next run
        for rec in recs:
            if len(rec) != RUN_RECORD:
                records.append(rec)
                continue
            if records:
                self._deliver_records_merged(records)
                records = []
            more += rec[2] - 1
            route = self.broker.router.routes.get(rec[-2])
            if route is not None:
                self._deliver_run(route, rec)
        if records:
            self._deliver_records_merged(records)
        return more

    def _deliver_records_merged(self, recs: list) -> None:
        routes = self.broker.router.routes
        for run in same_message_runs(recs):
            flt, group, msg = unpack_message(run[0])
            if len(run) > 1:
                found = [r for r in (routes.get(rec[-2]) for rec in run) if r]
                for sub in merged_subscriptions(found, msg).values():
                    sub.session.deliver(msg, sub, None, False, None)
                continue
            route = routes.get(flt)
            if route is not None:
                self._deliver(route, group, msg)

    # -- calls between nodes ---------------------------------------------------------------
    def register(self, name: str, fn) -> None:
        """Let other nodes call `fn(*args)` as `name` (its result must be msgpack-able)."""
        self.rpcs[name] = fn

    async def call(self, node: str, name: str, *args, timeout: float = 5.0):
        """`name(*args)` on `node`; raises RpcError when the node does not answer or fails,
        NodeDown (and marks it stopped) when NATS has nobody on its subject: it is gone."""
        if self.nc is None:
            raise RpcError(f"{node}: not connected to the cluster")
        from nats.errors import NoRespondersError
        try:
            answer = await self.nc.request(f"{self.prefix}.rpc.{node}",
                                           msgpack.packb([name, list(args)]), timeout=timeout)
        except NoRespondersError:
            peer = self.peers.get(node)
            if peer is not None and time.monotonic() - peer.last_seen <= self.down_after:
                self._node_down(peer, "no responders on its NATS subject")
            raise NodeDown(f"{node} is down (no responders to {name})") from None
        except Exception as e:
            raise RpcError(f"{node} did not answer {name}: {type(e).__name__}") from None
        ok, result = msgpack.unpackb(answer.data, raw=False)
        if not ok:
            raise RpcError(f"{node}: {name} failed: {result}")
        return result

    async def call_all(self, name: str, *args, timeout: float = 5.0,
                       include_self: bool = True) -> dict:
        """`name(*args)` on every running node at once (this one directly, unless not
        `include_self`): {node: result}; a node that does not answer in `timeout` or fails
        is left out (logged), as EMQX skips a node whose RPC fails."""
        nodes = [n for n in self.running_nodes() if n != self.node]

        async def one(node):
            try:
                return node, await self.call(node, name, *args, timeout=timeout)
            except RpcError as e:
                log.warning("cluster: %s", e)
                return node, e
        answers = await asyncio.gather(*(one(n) for n in nodes))
        out = {n: r for n, r in answers if not isinstance(r, RpcError)}
        if include_self:
            result = self.rpcs[name](*args)
            if asyncio.iscoroutine(result):
                result = await result
            out[self.node] = result
        return dict(sorted(out.items()))

    async def _on_rpc(self, m) -> None:
        try:
            name, args = msgpack.unpackb(m.data, raw=False)
            fn = self.rpcs.get(name)
            if fn is None:
                raise LookupError(f"no such call {name!r}")
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            reply = [True, result]
        except Exception as e:
            reply = [False, f"{type(e).__name__}: {e}"]
        await m.respond(msgpack.packb(reply, use_bin_type=True))


class RpcError(Exception):
    pass


class NodeDown(RpcError):
    """The node is not on NATS at all (as EMQX's ``badnode``): stopped, not merely slow."""
