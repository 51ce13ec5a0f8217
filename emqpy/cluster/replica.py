"""Replicated state: what one node's management API changes applies on every node, and a node
that was down or is new catches up (issue 17; EMQX keeps this state in replicated Mnesia tables
and cluster-wide config).

Two JetStream objects, replicated on min(3, nodes) servers:

- the **change log**, a stream (``EMQPY_STATE_<cluster>``): every successful state-changing
  management request (POST/PUT/DELETE under /api/v5 — bans, API keys, dashboard users, authn
  and authz built-in data and config, rules, connectors/actions, listeners, ``/configs/...``)
  becomes one entry, and every other node replays it through its own API app, so it takes
  the same validation and the same owning feature's code path (which writes that node's
  SQLite and cluster.hocon: its local copy). A few results the origin generates (an API key's
  secret, a rule's id) are pinned so that the replay produces the same state, and requests
  carrying a password travel as the owning feature's hashed backup rows: see `AS_ROWS`. The
  stream's sequence is the clock: every node applies the entries in the same order, and
  records the last one it applied in its SQLite (``meta``), so a node that restarts or was
  down replays exactly what it missed. A node applies its own change at once
  (the API answers after it, as on a single node) and skips it in the log — unless another
  node's entry on the same resource came earlier in the log but reached it later, in which case
  it applies its own again after it, so all nodes end with the same last writer (the later
  sequence number).
- **retained messages**, a KV bucket (one key per topic, the last value only): the retainer's
  change hook puts or deletes the topic's message, every node's watcher stores it in its own
  retainer; a starting node's watcher first receives the whole bucket. A message with an
  expiry is put with that per-message TTL (NATS 2.11+), so the server drops it when it
  expires: a node starting later never restores it, and no node has to delete it.

Nothing here runs on a single node. Entries that cannot reach JetStream (no quorum: a two-node
cluster with a node down) wait in order in the node's SQLite and are retried.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
import time
import uuid
from datetime import datetime

import msgpack

from emqpy.store import register_migrations

log = logging.getLogger("emqpy.cluster.replica")

API_PREFIX = "/api/v5/"
MUTATING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
# First path segments under /api/v5 whose changes stay on the node they were made on: they act
# on its connections, files or traces (the management helper answers those for the cluster),
# or they test without changing anything. Retained messages go through the bucket.
LOCAL_ONLY = frozenset({
    "publish", "clients", "nodes", "cluster", "trace", "data/export", "data/files", "alarms",
    "subscriptions", "rule_test", "connectors_probe", "actions_probe", "sources_probe",
    "bridges_probe", "sso", "load_rebalance", "node_eviction", "mqtt/retainer/message",
    "mqtt/retainer/messages", "mqtt/delayed/messages", "rules/test",
})
# Requests whose result the origin generates at random (an API key's secret) or that carry a
# password (never written to the log in clear): the replicas get the origin's rows of the
# owning feature's backup table instead. (method, path pattern, table, key field of the rows);
# the key's value is the pattern's `key` group, or else the answer's field of that name.
AS_ROWS = [(m, re.compile(p), table, key) for m, p, table, key in (
    ("POST", r"/api/v5/api_key", "api_keys", "name"),
    ("POST", r"/api/v5/users", "dashboard_users", "username"),
    ("POST", r"/api/v5/users/(?P<key>[^/]+)/change_pwd", "dashboard_users", "username"),
    ("POST", r"/api/v5/authentication/[^/]+/users", "authn_users", "user_id"),
    ("PUT", r"/api/v5/authentication/[^/]+/users/(?P<key>[^/]+)", "authn_users", "user_id"),
    ("POST", r"/api/v5/authentication/(?P<key>[^/]+)/import_users", "authn_users", "grp"),
)]
# A login: the new token's row (its hash, never the token nor the password) goes to the other
# nodes, so the token works on all of them (EMQX keeps tokens in a replicated table); a logout
# is replayed with the token's id in its actor.
LOGIN = API_PREFIX + "login"
# A data import applies to the cluster, as in EMQX 5.8 (its tables and config are the
# cluster's): the backup's content goes to a JetStream object store and the other nodes import
# it from there, except the retained messages, which reach them through the retained bucket.
DATA_IMPORT = API_PREFIX + "data/import"
IMPORT_SKIPS = frozenset({"retained_messages"})
# The object store keeps the newest imports only (each is a whole backup, kept on up to three
# servers), and any stored in the last IMPORT_GRACE seconds, so that the running nodes fetch a
# burst of imports before it goes. A node that replays an older import's entry later (down
# across more newer imports, or joining afterwards) cannot import it, says so in its log, and
# goes on with the log. (Deleting once applied everywhere would not serve a node that joins
# later either, and would keep everything while a member is down for good.)
IMPORTS_KEPT = 3
IMPORT_GRACE = 60.0
# `emqpy ctl` runs its commands through one endpoint: only those changing replicated state go
# into the log (admins: the user's hashed row, or the deletion; data import: as above).
CTL = API_PREFIX + "emqpy/ctl"
# Creations whose id the origin picks when the body has none (the body may carry one).
PIN_ID = frozenset({"/api/v5/rules"})
META_KEY = "cluster.replica.applied"
# Entries made here and not yet in the log, kept until JetStream acknowledges them, so that a
# restart meanwhile does not lose them (a two-node cluster has no quorum with a node down).
# Registered when a clustered node starts its replica: a single node never has the table.
MIGRATIONS = [
    "CREATE TABLE replica_outbox (n INTEGER PRIMARY KEY AUTOINCREMENT, entry BLOB NOT NULL)",
]
RETRY = 1.0  # seconds between attempts while JetStream is unavailable
CONSUMER_HEARTBEAT = 1.0  # seconds; nats-py's default (5) leaves a node behind for 10 s
RETAINED_BATCH = 64  # retained changes sent to the bucket at once
# How long a starting node waits, before opening its MQTT listeners, to apply what the log has
# that it has not (EMQX waits for its tables to load). Not longer: a cluster that lost its
# quorum must not keep a node's clients out; it then catches up while serving.
CATCH_UP_WAIT = 15.0
# ... of which JetStream must answer within the first seconds: when it does not, it has no
# quorum (the first node of a new cluster, a cluster with too many nodes down) and there is
# nothing to catch up from for now.
REACH_WAIT = 3.0
# A JetStream request that reaches JetStream, or a stream, while it has no leader (its servers
# are still electing one: a new cluster, a node back after a restart) gets no answer at all,
# and one wait for it (5 s) would hold a node's start and catch-up long after the leader is
# there: the reads of the setup are asked again every PROBE_INTERVAL, each ask waiting up to
# 5 s, until one is answered (or PROBE_FOR passes: then the node logs it and starts over).
PROBE_INTERVAL = 0.25
PROBE_FOR = 10.0


def _replicated(method: str, path: str) -> bool:
    if method not in MUTATING or not path.startswith(API_PREFIX):
        return False
    rest = path[len(API_PREFIX):]
    parts = rest.split("/")
    for n in (1, 2, 3):
        if "/".join(parts[:n]) in LOCAL_ONLY:
            return False
    # tests and probes of one resource (POST /actions/{id}/test, /rules/{id}/test)
    return parts[-1] != "test"


def _resource(path: str) -> str:
    """What two entries must both touch to conflict: the path's first two segments (coarse on
    purpose: re-applying one's own later entry more often is harmless)."""
    return "/".join(path[len(API_PREFIX):].split("/")[:2])


def _retained_key(topic: str) -> str:
    return "t." + base64.urlsafe_b64encode(topic.encode()).decode()


def _retained_topic(key: str) -> str:
    return base64.urlsafe_b64decode(key[2:].encode()).decode()


class Replica:
    def __init__(self, link):
        self.link = link
        self.broker = link.broker
        self.node = link.node
        cluster = self.broker.config.cluster
        self.replicas = max(1, min(3, len(cluster.static.seeds) or 1))
        name = cluster.name.replace(".", "_").replace("-", "_")
        self.stream = f"EMQPY_STATE_{name}"
        self.subject = f"{link.prefix}.state"
        self.bucket = f"EMQPY_RETAINED_{name}"
        self.files_bucket = f"EMQPY_FILES_{name}"
        self.files = None
        self._ttl = False  # the bucket takes per-message TTLs
        self.js = None
        self.kv = None
        self.ready = asyncio.Event()
        self.caught_up = asyncio.Event()
        self.reached = asyncio.Event()  # JetStream answered: the log and bucket are set up
        self._outbox: asyncio.Queue = asyncio.Queue()
        self._retained_out: dict[str, object] = {}  # topic -> msg (None: delete), in order
        self._retained_wake = asyncio.Event()
        self._mine: dict[str, float] = {}  # id of our entries not yet seen in the log -> when
        self._foreign_at: dict[str, float] = {}  # resource -> when another node's entry applied
        self._applying_retained = False
        self._tasks: list[asyncio.Task] = []
        self._subs: list = []
        self._catch_up_to = 0
        self.applied = self._load_applied()
        for n, data in self._load_outbox():
            entry = msgpack.unpackb(data, raw=False)
            # applied here before this start: applied again if another node's change of the
            # resource gets applied here before it comes back through the log
            self._mine[entry["id"]] = 0.0
            self._outbox.put_nowait((n, entry["id"], data))

    # -- start / stop ----------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._run()))
        ret = self.broker.retainer
        if ret is not None:
            ret.on_change = self._retained_changed

    async def stop(self) -> None:
        ret = self.broker.retainer
        if ret is not None and getattr(ret, "on_change", None) == self._retained_changed:
            ret.on_change = None
        for t in self._tasks:
            t.cancel()
        await self._unsubscribe()

    async def _unsubscribe(self) -> None:
        subs, self._subs = self._subs, []
        for sub in subs:
            try:
                await sub.unsubscribe()
            except Exception:  # the connection is already gone
                pass

    async def _run(self) -> None:
        """Set up the stream and bucket, wait for the node to be up (replays go through its
        features and API), then follow both; all of it again, from the last applied entry,
        whenever JetStream fails (no quorum yet, a leader being elected)."""
        started = False
        while True:
            try:
                await self._setup()
                self.reached.set()
                while not (self.broker.running or self._api_ready()):
                    await asyncio.sleep(0.05)
                if not started:
                    started = True
                    self.ready.set()
                    loop = asyncio.get_running_loop()
                    self._tasks.append(loop.create_task(self._send_entries()))
                    self._tasks.append(loop.create_task(self._send_retained()))
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.info("cluster: replicated store not ready (%s: %s); retrying",
                         type(e).__name__, e)
                await self._unsubscribe()
                await asyncio.sleep(RETRY)

    def _api_ready(self) -> bool:
        api = getattr(self.broker, "api", None)
        return api is not None and api.app is not None

    async def wait_caught_up(self, timeout: float = CATCH_UP_WAIT,
                             reach: float = REACH_WAIT) -> bool:
        """Wait (at most `timeout` s) until this node applied the log as it was when it
        started following it; returns whether it did. Ends after `reach` s when JetStream
        has not answered by then (no quorum): nothing can be caught up from it now."""
        started = time.monotonic()
        try:
            await asyncio.wait_for(self.reached.wait(), min(reach, timeout))
            await asyncio.wait_for(self.caught_up.wait(),
                                   timeout - (time.monotonic() - started))
        except asyncio.TimeoutError:
            log.warning("cluster: accepting clients before this node caught up with the "
                        "replicated state (%s); it goes on catching up",
                        "not done in %.0f s" % timeout if self.reached.is_set() else
                        "JetStream not answering")
            return False
        log.info("cluster: caught up with the replicated state in %.1f s",
                 time.monotonic() - started)
        return True

    async def _setup(self) -> None:
        from nats.js.api import ObjectStoreConfig, StorageType, StreamConfig
        from nats.js.errors import BucketNotFoundError, NotFoundError
        js = self.link.nc.jetstream(timeout=5)
        await self._answer(js.account_info)
        try:
            await self._answer(lambda: js.stream_info(self.stream))
        except NotFoundError:
            await js.add_stream(StreamConfig(
                name=self.stream, subjects=[self.subject], num_replicas=self.replicas,
                storage=StorageType.FILE))
        try:
            self.kv = await self._answer(lambda: js.key_value(self.bucket))
        except BucketNotFoundError:
            self.kv = await js.create_key_value(bucket=self.bucket, history=1,
                                                replicas=self.replicas)
        kv_stream = await self._answer(lambda: js.stream_info(f"KV_{self.bucket}"))
        self._ttl = bool(kv_stream.config.allow_msg_ttl)
        if not self._ttl:  # a bucket made by an older nats-py, or a NATS before 2.11
            try:
                kv_stream.config.allow_msg_ttl = True
                await js.update_stream(kv_stream.config)
                self._ttl = True
            except Exception as e:
                log.warning("cluster: retained messages kept without their expiry in the "
                            "replicated bucket (per-message TTL needs NATS 2.11+): %s", e)
        try:
            self.files = await self._answer(lambda: js.object_store(self.files_bucket))
        except BucketNotFoundError:
            self.files = await js.create_object_store(
                self.files_bucket, config=ObjectStoreConfig(replicas=self.replicas))
        self.js = js
        try:
            await self.ensure_replicas(self.replicas)
        except Exception as e:  # too few servers yet: the streams work with the replicas they have
            log.warning("cluster: cannot keep the replicated store on %d servers yet: %s",
                        self.replicas, e)

    async def _answer(self, ask):
        """The first answer to `ask()`, a JetStream request (its result, or the API error it
        answered with), asking again every PROBE_INTERVAL while none came; raises the last
        failure when none came for PROBE_FOR seconds."""
        from nats.js.errors import APIError, ServiceUnavailableError
        asks: set[asyncio.Future] = set()
        error: BaseException = TimeoutError("JetStream did not answer")
        give_up = time.monotonic() + PROBE_FOR
        try:
            while time.monotonic() < give_up:
                asks.add(asyncio.ensure_future(ask()))
                done, asks = await asyncio.wait(asks, timeout=PROBE_INTERVAL,
                                                return_when=asyncio.FIRST_COMPLETED)
                outcomes = [(task, task.exception()) for task in done]  # (all retrieved)
                for task, e in outcomes:
                    if e is None or (isinstance(e, APIError)
                                     and not isinstance(e, ServiceUnavailableError)):
                        return task.result()  # (an API error, e.g. not found, is an answer)
                    error = e  # no answer in time (no leader), no responders, or 503 (no quorum)
                if done:  # the next ask after the interval
                    await asyncio.sleep(PROBE_INTERVAL)
            raise error
        finally:
            for task in asks:
                if not task.done():
                    task.cancel()
                elif not task.cancelled():
                    task.exception()  # (one that ended meanwhile: its error is not "lost")

    async def ensure_replicas(self, nodes: int) -> None:
        """Keep the log and the bucket on min(3, nodes) servers: a cluster formed by invites
        starts as one node, and the streams created then have one replica until it grows (the
        membership calls this when a node joins)."""
        self.replicas = want = max(1, min(3, nodes))
        for name in (self.stream, f"KV_{self.bucket}", f"OBJ_{self.files_bucket}"):
            info = await self.js.stream_info(name)
            if info.config.num_replicas < want:
                info.config.num_replicas = want
                await self.js.update_stream(info.config)
                log.info("cluster: %s now kept on %d servers", name, want)

    async def _follow(self) -> None:
        from nats.js.api import ConsumerConfig, DeliverPolicy
        info = await self._answer(lambda: self.js.stream_info(self.stream))
        last = info.state.last_seq
        if info.state.first_seq > self.applied + 1 and info.state.messages:
            log.error("cluster: the change log starts at %d but this node applied only up to %d:"
                      " the changes between are lost for it", info.state.first_seq, self.applied)
        if last <= self.applied:
            self.caught_up.set()
        self._catch_up_to = last
        self._subs.append(await self.js.subscribe(
            self.subject, stream=self.stream, cb=self._on_entry, ordered_consumer=True,
            # two missed heartbeats re-create the consumer (its server may be the one down)
            idle_heartbeat=CONSUMER_HEARTBEAT,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                  opt_start_seq=self.applied + 1)))
        watcher = await self.kv.watchall()
        self._subs.append(watcher._sub)
        seen: set | None = set()  # the bucket's keys, deleted ones included, at the start
        async for entry in watcher:
            if entry is None:  # the end of the bucket's current content
                if seen is not None:
                    self._push_unreplicated(seen)
                    seen = None
                continue
            if seen is not None:
                seen.add(entry.key)
            self._apply_retained(entry)

    # -- the change log: capture on the origin ---------------------------------------------
    def capture(self, method: str, path: str, raw_path: str, query: str, content_type: str,
                body: bytes, actor, status: int, response: bytes) -> None:
        """A management request succeeded here: queue it for the other nodes."""
        entry = self._entry_for(method, path, raw_path, query, content_type, body, actor,
                                response)
        if entry is None:
            return
        self._mine[entry["id"]] = time.monotonic()
        data = msgpack.packb(entry, use_bin_type=True)
        n = None
        store = self.broker.store
        if store is not None:
            with store.transaction() as conn:
                n = conn.execute("INSERT INTO replica_outbox(entry) VALUES (?)", (data,)).lastrowid
        self._outbox.put_nowait((n, entry["id"], data))

    def _entry_for(self, method, path, raw_path, query, content_type, body, actor, response):
        entry = {"id": uuid.uuid4().hex, "origin": self.node, "at": time.time(),
                 "resource": _resource(path)}
        if method == "POST" and path == LOGIN:
            from emqpy.dashboard import admin
            try:
                row = admin.token_row(self.broker.store, json.loads(response)["token"])
            except (ValueError, KeyError, TypeError):
                row = None
            if row is None:
                log.error("cluster: cannot replicate a login: no token in the answer")
                return None
            entry.update(kind="rows", table="dashboard_tokens", rows=[row])
            return entry
        if method == "POST" and path == DATA_IMPORT:
            try:
                filename = json.loads(body)["filename"]
            except (ValueError, KeyError, TypeError):
                return None
            return self._import_entry(entry, filename)
        if method == "POST" and path == CTL:
            return self._ctl_entry(entry, body, response, raw_path, actor)
        for rows_method, pattern, table, key in AS_ROWS:
            match = pattern.fullmatch(path) if rows_method == method else None
            if match is None:
                continue
            try:
                wanted = match.group("key") if "key" in pattern.groupindex else \
                    json.loads(response)[key]
            except (ValueError, KeyError, TypeError):
                log.error("cluster: cannot replicate %s %s: no %s in the answer", method, path,
                          key)
                return None
            rows = [r for r in _table(table).export(self.broker) if r.get(key) == wanted]
            entry.update(kind="rows", table=table, rows=rows)
            return entry
        if method == "POST" and path in PIN_ID:
            body = _pin_generated_id(body, response)
        entry.update(kind="request", method=method, path=path, raw_path=raw_path, query=query,
                     content_type=content_type, body=body,
                     actor=[actor.kind, actor.name, actor.token_jti] if actor is not None
                     else None)
        return entry

    def _import_entry(self, entry: dict, filename: str) -> dict | None:
        from emqpy.backup import archive
        try:
            path = archive.find_file(self.broker, filename)
            content = path.read_bytes()
        except (archive.NotFound, OSError) as e:  # deleted right after its import
            log.error("cluster: cannot replicate the import of %s: %s", filename, e)
            return None
        entry.update(kind="import", filename=path.name, archive=content)
        return entry

    def _ctl_entry(self, entry, body, response, raw_path, actor) -> dict | None:
        try:
            args = json.loads(body)["args"]
            done = json.loads(response)["status"] == 0
        except (ValueError, KeyError, TypeError):
            return None
        if not done or not isinstance(args, list) or len(args) < 3:
            return None
        entry["resource"] = "/".join(args[:2])
        if args[0] == "admins" and args[1] in ("add", "passwd"):
            rows = [r for r in _table("dashboard_users").export(self.broker)
                    if r["username"] == args[2]]
            entry.update(kind="rows", table="dashboard_users", rows=rows)
            return entry
        if args[:2] == ["admins", "del"]:
            entry.update(kind="request", method="POST", path=CTL, raw_path=raw_path, query="",
                         content_type="application/json", body=body,
                         actor=[actor.kind, actor.name, None] if actor is not None else None)
            return entry
        if args[:2] == ["data", "import"] and "Data has been imported" in \
                json.loads(response)["output"]:
            return self._import_entry(entry, args[2])
        return None

    async def _send_entries(self) -> None:
        while True:
            n, entry_id, data = await self._outbox.get()
            entry = msgpack.unpackb(data, raw=False)
            if "archive" in entry:  # a backup's content goes to the object store first
                content = entry.pop("archive")
                while True:
                    try:
                        await self.files.put(entry_id, content)
                        break
                    except asyncio.CancelledError:
                        raise
                    except Exception as e:
                        log.warning("cluster: imported backup not yet in the replicated store"
                                    " (%s); retrying", type(e).__name__)
                        await asyncio.sleep(RETRY)
                entry["object"] = entry_id
                data = msgpack.packb(entry, use_bin_type=True)
            while True:
                try:
                    # the id makes JetStream drop a retry of what it stored but did not confirm
                    await self.js.publish(self.subject, data, stream=self.stream,
                                          headers={"Nats-Msg-Id": entry_id})
                    store = self.broker.store
                    if n is not None and store is not None and not store.closed:
                        store.execute("DELETE FROM replica_outbox WHERE n=?", (n,))
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    log.warning("cluster: change not yet in the replicated log (%s); retrying",
                                type(e).__name__)
                    await asyncio.sleep(RETRY)
            if "object" in entry:  # (once its entry is in the log: never before it)
                await self._prune_imports()

    async def _prune_imports(self) -> None:
        """Delete all but the newest IMPORTS_KEPT imported backups from the object store."""
        from nats.js.errors import NotFoundError
        try:
            # in the order they were stored (the store's metadata stream, last per object)
            stored = await self.files.list(ignore_deletes=True)
        except NotFoundError:  # (nats-py's answer for an empty store)
            return
        except Exception as e:
            log.warning("cluster: cannot list the imported backups to prune them: %s", e)
            return
        for info in stored[:-IMPORTS_KEPT]:
            if _age(info) < IMPORT_GRACE:
                continue
            try:
                await self.files.delete(info.name)
            except NotFoundError:  # another node pruned it first
                pass
            except Exception as e:
                log.warning("cluster: cannot delete the imported backup %s (from %s) from the"
                            " replicated store: %s", info.name, info.mtime, e)

    # -- the change log: apply on every node -----------------------------------------------
    async def _on_entry(self, msg) -> None:
        seq = msg.metadata.sequence.stream
        if seq <= self.applied:
            return
        try:
            entry = msgpack.unpackb(msg.data, raw=False)
            mine_at = self._mine.pop(entry["id"], None)
            if mine_at is None:
                await self._apply(entry)
                self._foreign_at[entry["resource"]] = time.monotonic()
            elif self._foreign_at.get(entry["resource"], 0.0) > mine_at:
                # another node's change on this resource is earlier in the log but was applied
                # here after ours: ours is the last writer, so apply it again
                await self._apply(entry)
        except Exception:
            log.exception("cluster: could not apply change %d", seq)
        self.applied = seq
        self._save_applied(seq)
        if seq >= self._catch_up_to:
            self.caught_up.set()

    async def _apply(self, entry: dict) -> None:
        if entry["kind"] == "import":
            from nats.js.errors import ObjectNotFoundError
            from emqpy.backup import archive
            try:
                content = (await self.files.get(entry["object"])).data
            except ObjectNotFoundError:
                log.error("cluster: %s, imported on %s, is no longer in the replicated store "
                          "(it keeps the newest %d imports): not imported on this node",
                          entry["filename"], entry["origin"], IMPORTS_KEPT)
                return
            result = await archive.import_archive(self.broker, content, entry["filename"],
                                                  skip_tables=IMPORT_SKIPS)
            if not result.ok:
                log.warning("cluster: importing %s from %s: %s", entry["filename"],
                            entry["origin"], result.message())
            return
        if entry["kind"] == "rows":
            n = _table(entry["table"]).restore(self.broker, entry["rows"])
            if asyncio.iscoroutine(n):
                await n
            return
        status, answer = await self._replay(entry)
        if not 200 <= status < 300:
            # e.g. a 409 for what this node already had: the state is the same
            log.info("cluster: replaying %s %s from %s: %d %s", entry["method"],
                     entry["path"], entry["origin"], status, answer[:300])

    async def _replay(self, entry: dict) -> tuple[int, bytes]:
        """Run the request through this node's API app (in process: no socket, no
        credentials: the scope marks it as a replica, which the API's authentication trusts
        and which no network request can set)."""
        app = self._api_app()
        body = entry["body"] or b""
        headers = [(b"host", b"replica"), (b"content-length", str(len(body)).encode())]
        if entry["content_type"]:
            headers.append((b"content-type", entry["content_type"].encode()))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": entry["method"], "scheme": "http", "path": entry["path"],
                 "raw_path": entry["raw_path"].encode(), "root_path": "",
                 "query_string": entry["query"].encode(), "headers": headers,
                 "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0),
                 "emqpy.replica": entry["actor"] or ["user", entry["origin"]]}
        sent = False

        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # no disconnect while the handler runs

        status, chunks = 500, []

        async def send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
        await app(scope, receive, send)
        return status, b"".join(chunks)

    def _api_app(self):
        api = getattr(self.broker, "api", None)
        if api is None or api.app is None:  # installed without the API: nothing to replay with
            raise RuntimeError("this node has no management API to apply the change with")
        return api.app

    def _load_outbox(self) -> list:
        store = self.broker.store
        if store is None:
            return []
        register_migrations("cluster_replica", MIGRATIONS)
        store.migrate("cluster_replica")
        return [(r["n"], r["entry"]) for r in
                store.query("SELECT n, entry FROM replica_outbox ORDER BY n")]

    def _load_applied(self) -> int:
        store = self.broker.store
        row = store.query_one("SELECT value FROM meta WHERE key=?", (META_KEY,)) \
            if store is not None else None
        return int(row["value"]) if row else 0

    def _save_applied(self, seq: int) -> None:
        store = self.broker.store
        if store is not None and not store.closed:
            store.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) "
                          "DO UPDATE SET value=excluded.value", (META_KEY, str(seq)))

    # -- retained messages -----------------------------------------------------------------
    def _retained_changed(self, topic: str, msg) -> None:
        """The retainer stored (msg) or deleted (None) a topic's message."""
        if self._applying_retained:
            return
        self._retained_out.pop(topic, None)  # keep the order of the last change per topic
        self._retained_out[topic] = msg
        self._retained_wake.set()

    async def _send_retained(self) -> None:
        while True:
            await self._retained_wake.wait()
            self._retained_wake.clear()
            while self._retained_out:
                # up to BATCH topics at once (one change per topic in flight keeps its order)
                batch = list(self._retained_out.items())[:RETAINED_BATCH]
                results = await asyncio.gather(*(self._put_retained(t, m) for t, m in batch),
                                               return_exceptions=True)
                failed = False
                for (topic, msg), result in zip(batch, results):
                    if isinstance(result, BaseException):
                        failed = True
                    elif self._retained_out.get(topic, ...) is msg:
                        del self._retained_out[topic]
                if failed:
                    log.warning("cluster: retained messages not yet replicated; retrying")
                    await asyncio.sleep(RETRY)

    async def _put_retained(self, topic: str, msg) -> None:
        from emqpy.retainer import backup
        if msg is None:
            await self.kv.delete(_retained_key(topic))
            return
        row = backup.message_row(msg)
        ttl = None
        if row["expire_at"] is not None and self._ttl:  # whole seconds, at least one (NATS's TTL)
            ttl = max(1, math.ceil(row["expire_at"] - time.time()))
        # kv.put cannot give a TTL: the same message, published on the key's subject
        await self.js.publish(f"$KV.{self.bucket}.{_retained_key(topic)}",
                              json.dumps(row).encode(), msg_ttl=ttl)

    def _push_unreplicated(self, keys: set) -> None:
        """Retained messages stored here that the bucket never had (not even as deleted):
        published here while the change could not reach it, before a restart."""
        ret = self.broker.retainer
        if ret is None:
            return
        for msg in ret.all():
            if _retained_key(msg.topic) not in keys:
                self._retained_changed(msg.topic, msg)

    def _apply_retained(self, entry) -> None:
        ret = self.broker.retainer
        if ret is None:
            return
        from emqpy.retainer import backup
        self._applying_retained = True
        try:
            if entry.operation in ("DEL", "PURGE") or not entry.value:
                ret.delete(_retained_topic(entry.key))
            else:
                backup.restore(self.broker, [json.loads(entry.value)])
        except Exception:
            log.exception("cluster: bad retained message %s in the bucket", entry.key)
        finally:
            self._applying_retained = False


def _age(info) -> float:
    """Seconds since an object was stored (by its putter's clock; unknown: very old)."""
    try:
        return time.time() - datetime.fromisoformat(info.mtime).timestamp()
    except (TypeError, ValueError):
        return math.inf


def _table(name: str):
    from emqpy import features
    for feature in features.manifests():
        for table in feature.backup_tables + feature.cluster_tables:
            if table.name == name:
                return table
    raise LookupError(f"no backup table {name!r}")


def _pin_generated_id(body: bytes, response: bytes) -> bytes:
    """A POST that created something under an id the origin chose (a rule without one): the
    replicas create it under the same id."""
    try:
        sent, answer = json.loads(body or b"null"), json.loads(response or b"null")
    except ValueError:
        return body
    if isinstance(sent, dict) and isinstance(answer, dict) and "id" not in sent \
            and isinstance(answer.get("id"), str):
        return json.dumps({**sent, "id": answer["id"]}).encode()
    return body


class CaptureChanges:
    """ASGI middleware of the API app: hands each successful state-changing request to the
    cluster's replica. On a single node (no cluster) it only passes the request through."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in MUTATING \
                or "emqpy.replica" in scope:
            return await self.app(scope, receive, send)
        app = scope.get("app")
        ctx = getattr(getattr(app, "state", None), "ctx", None)
        cluster = getattr(getattr(ctx, "broker", None), "cluster", None)
        replica = getattr(cluster, "replica", None)
        path = scope["path"]
        if replica is None or not _replicated(scope["method"], path):
            return await self.app(scope, receive, send)
        body, answer, status = [], [], [0]
        state = scope.setdefault("state", {})  # shared with inner copies of the scope: the
        # authentication leaves the actor there

        async def recv():
            message = await receive()
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
            return message

        async def snd(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
            await send(message)
        await self.app(scope, recv, snd)
        if 200 <= status[0] < 300:
            headers = dict(scope.get("headers") or [])
            actor = state.get("actor")
            replica.capture(scope["method"], path,
                            (scope.get("raw_path") or path.encode()).decode("latin-1"),
                            scope.get("query_string", b"").decode("latin-1"),
                            headers.get(b"content-type", b"").decode("latin-1"),
                            b"".join(body), actor, status[0], b"".join(answer))
