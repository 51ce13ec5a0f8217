"""What a bench run does: connection settings plus groups of clients (conn, sub, pub)."""
from __future__ import annotations

from dataclasses import dataclass

# Per-worker counters in shared memory (one int64 slot each).
(CONNECTED, CONNACKS, CONN_FAIL, STARTED, SUBSCRIBED, SUB_FAIL, SENT, ACKED, RECV, ERRORS,
 PUB_DONE, PUB_ERRORS, FIRST_CONN_US, LAST_CONNACK_US, READY) = range(15)
NFIELDS = 15
FIELD_NAMES = ["connected", "connacks", "conn_fail", "started", "subscribed", "sub_fail", "sent",
               "acked", "received", "errors", "pub_done", "pub_errors", "first_conn_us",
               "last_connack_us", "ready"]
# Control slots shared by all workers.
GO, STOP = 0, 1


@dataclass
class Group:
    role: str                      # "conn" | "sub" | "pub"
    count: int
    topic: str = "bench/%i"        # %i client sequence number, %c client id, %m cycle index
    qos: int = 0
    size: int = 256                # payload bytes (>= 8 carries a send timestamp)
    interval_ms: float = 0.0       # pub: per-client interval between messages; 0 = no pacing
    limit: int = 0                 # pub: messages per client, 0 = until the run stops
    inflight: int = 1              # pub QoS 1/2: unacknowledged messages per client
    retain: bool = False
    topic_cycle: int = 0           # pub: >0 cycles N topics, one per message
    latency: bool = False          # sub: read timestamps from payloads
    prefix: str = "bench"
    start_number: int = 0
    topics: list[str] | None = None  # explicit topics instead of `topic` (sub only)
    payload: bytes | None = None   # pub: this payload instead of `size` bytes (no timestamp)

    def __post_init__(self):
        if self.role not in ("conn", "sub", "pub"):
            raise ValueError(f"bad role {self.role!r}")
        if self.qos not in (0, 1, 2):
            raise ValueError("qos must be 0, 1 or 2")
        if self.count < 0 or self.size < 0 or self.interval_ms < 0 or self.limit < 0:
            raise ValueError("count/size/interval/limit must not be negative")
        if self.inflight < 1:
            raise ValueError("inflight must be >= 1")


@dataclass
class Spec:
    groups: list[Group]
    host: str = "127.0.0.1"
    port: int = 1883
    version: int = 5
    keepalive: int = 300
    clean: bool = True
    username: str | None = None
    password: str | None = None
    workers: int = 1
    conn_interval_ms: float = 0.0  # between connection starts, over all workers
    conn_concurrency: int = 200    # TCP/MQTT handshakes in progress per worker
    connect_timeout: float = 15.0
    ssl: bool = False
    cacertfile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False
    ws: bool = False
    ws_path: str = "/mqtt"
    # Closed loop: QoS 0 publishers pause while sent * fanout - received > window (0 = open loop).
    window: int = 0
    fanout: int = 1

    def __post_init__(self):
        if self.version not in (3, 4, 5):
            raise ValueError("MQTT version must be 3, 4 or 5")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")

    def clients(self):
        """(global index, group, sequence number) for every client; subscribers come first so
        that they are connected and subscribed before anybody publishes."""
        order = sorted(self.groups, key=lambda g: {"sub": 0, "conn": 1, "pub": 2}[g.role])
        k = 0
        for g in order:
            for n in range(g.count):
                yield k, g, g.start_number + n
                k += 1

    @property
    def total_clients(self) -> int:
        return sum(g.count for g in self.groups)

    def count(self, role: str) -> int:
        return sum(g.count for g in self.groups if g.role == role)
