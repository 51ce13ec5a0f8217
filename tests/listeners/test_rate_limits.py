"""A listener's `messages_rate` and `bytes_rate` (EMQX's per-connection receive limits): a
publisher flooding a limited listener is read no faster than the rate, over every listener type,
and nothing it sent is lost; the limits change at run time for connected clients too."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from emqpy.listeners.limiter import Bucket, wire_size

from support.rawmqtt import connect_packet, publish_packet
from support.waiting import WAIT, wait_until

from .helpers import recv_exactly


class Arrivals:
    """A subscriber's view: the payloads in order and when each arrived."""

    def __init__(self, client):
        self.items: list[tuple[float, bytes]] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.expected = float("inf")
        client.c.on_message = self._on_message

    def _on_message(self, c, ud, msg):
        with self.lock:
            self.items.append((time.monotonic(), msg.payload))
            if len(self.items) >= self.expected:
                self.done.set()

    def wait(self, n: int, timeout: float) -> list[tuple[float, bytes]]:
        with self.lock:
            self.expected = n
            if len(self.items) >= n:
                self.done.set()
            else:
                self.done.clear()
        assert self.done.wait(timeout), f"{len(self.items)} of {n} arrived"
        return self.items

    def most_in_a_second(self) -> int:
        times = [t for t, _ in self.items]
        best, j = 0, 0
        for i, t in enumerate(times):
            while times[j] < t - 1.0:
                j += 1
            best = max(best, i - j + 1)
        return best


def _subscriber(node, topic: str) -> Arrivals:
    sub = node.mqtt()
    arrivals = Arrivals(sub)
    sub.subscribe(topic, 0)
    return arrivals


def _flood(port: int, topic: str, payloads: list[bytes]) -> socket.socket:
    """A raw MQTT 3.1.1 client that writes every PUBLISH at once (one sendall)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    s.sendall(connect_packet("flood-" + topic.replace("/", "-"), version=4))
    assert recv_exactly(s, 4) == b"\x20\x02\x00\x00"
    s.sendall(b"".join(publish_packet(topic, p, version=4) for p in payloads))
    return s


def test_bucket_follows_emqx_token_rules():
    """A tenth of a second's worth to start with, refilled at the rate up to one second's
    worth; an overdraft is paid back before the bucket has tokens again."""
    b = Bucket(100.0, now=0.0)
    assert b.tokens == 10.0 and b.capacity == 100.0
    b.refill(0.05)
    assert b.tokens == pytest.approx(15.0)
    b.refill(10.0)
    assert b.tokens == 100.0  # capped at one second's worth
    b.tokens -= 130
    assert b.wait() == pytest.approx(0.3)
    b.refill(10.2)
    assert b.tokens == pytest.approx(-10.0)
    b.retune(50.0, 10.4)  # a lower rate: the debt stays, paid at the new pace
    assert b.tokens == pytest.approx(10.0) and b.capacity == 50.0
    assert [wire_size(n) for n in (0, 127, 128, 16_383, 16_384)] == [2, 129, 131, 16_386,
                                                                     16_388]


def test_messages_rate_holds_a_flood_to_the_rate(make_broker):
    node = make_broker({"listeners": {"tcp": {"default": {"messages_rate": "200/s"}}}})
    arrivals = _subscriber(node, "flood/msgs")
    n = 600
    start = time.monotonic()
    s = _flood(node.port, "flood/msgs", [b"%d" % i for i in range(n)])
    try:
        items = arrivals.wait(n, timeout=30)
        # (while the flood's connection is still open: closed, its channel goes at once)
        ch = next(c for c in node.broker.channels.values() if c.clientid == "flood-flood-msgs")
        pauses = ch.limiter.pauses
    finally:
        s.close()
    # Nothing lost, nothing reordered.
    assert [p for _, p in items] == [b"%d" % i for i in range(n)]
    took = items[-1][0] - start
    # 600 packets at 200/s after a start of 20 tokens: about 2.9 s.
    assert 2.4 < took < 8, took
    # At most 200 a second and the 20 to start with (slack for a late subscriber thread;
    # unlimited, all 600 arrive within a fraction of a second).
    assert arrivals.most_in_a_second() <= 300
    assert pauses >= 1


def test_bytes_rate_holds_a_flood_to_the_rate(make_broker):
    node = make_broker({"listeners": {"tcp": {"default": {"bytes_rate": "20KB/s"}}}})
    arrivals = _subscriber(node, "flood/bytes")
    payloads = [b"%04d" % i + b"x" * 1020 for i in range(60)]  # 60 KB and a bit
    start = time.monotonic()
    s = _flood(node.port, "flood/bytes", payloads)
    try:
        items = arrivals.wait(len(payloads), timeout=30)
    finally:
        s.close()
    assert [p for _, p in items] == payloads
    took = items[-1][0] - start
    # ~62 KB at 20 KB/s after a start of 2 KB: about 3 s.
    assert 2.4 < took < 8, took
    assert arrivals.most_in_a_second() <= 30  # 20 KB/s of ~1 KB packets, a start, slack


@pytest.mark.parametrize("ltype", ["tcp", "ssl", "ws", "wss"])
def test_every_listener_type_is_limited(make_broker, clients, ltype):
    node = make_broker({"listeners": {ltype: {"default": {"messages_rate": "100/s"}}}})
    arrivals = _subscriber(node, f"flood/{ltype}")
    lst = node.broker.listeners[f"{ltype}:default"]
    kw = {}
    if ltype in ("ws", "wss"):
        kw["transport"] = "websockets"
    if lst.tls:
        kw["ca"] = node.broker.data_dir / "certs" / "cacert.pem"
    pub = clients(lst.port, **kw)
    pub.connect()
    n = 200
    start = time.monotonic()
    for i in range(n):
        pub.c.publish(f"flood/{ltype}", b"%d" % i)
    items = arrivals.wait(n, timeout=30)
    assert [p for _, p in items] == [b"%d" % i for i in range(n)]
    took = items[-1][0] - start
    assert 1.4 < took < 8, took  # 200 at 100/s after ~10 tokens: about 1.9 s


def test_limits_change_at_run_time_for_connected_clients(make_broker):
    node = make_broker()
    arrivals = _subscriber(node, "flood/live")
    s = socket.create_connection(("127.0.0.1", node.port), timeout=WAIT)
    s.sendall(connect_packet("live-pub", version=4))
    assert recv_exactly(s, 4) == b"\x20\x02\x00\x00"
    try:
        body = node.ok("PUT", "/listeners/tcp:default",
                       json={"type": "tcp", "messages_rate": "50/s", "bytes_rate": "1MB/s"})
        assert body["messages_rate"] == "50/s" and body["bytes_rate"] == "1MB/s"
        view = node.get("/listeners/tcp:default")
        assert view["messages_rate"] == "50/s" and view["bytes_rate"] == "1MB/s"
        # The client connected before the change is held to it.
        start = time.monotonic()
        s.sendall(b"".join(publish_packet("flood/live", b"%d" % i, version=4) for i in range(100)))
        arrivals.wait(30, timeout=10)
        assert len(arrivals.items) < 100
        assert time.monotonic() - start > 0.3
        # Lifting the limit lets what waits through at once, nothing lost.
        node.ok("PUT", "/listeners/tcp:default",
                json={"type": "tcp", "messages_rate": "infinity", "bytes_rate": "infinity"})
        lifted = time.monotonic()
        items = arrivals.wait(100, timeout=10)
        assert items[-1][0] - lifted < 0.5
        assert [p for _, p in items] == [b"%d" % i for i in range(100)]
        ch = node.broker.channels["live-pub"]
        assert ch.limiter is None
    finally:
        s.close()
    # A bad rate is refused with the key named, the running limits unchanged.
    r = node.api.put("/listeners/tcp:default", json={"type": "tcp", "messages_rate": "fast"})
    assert r.status_code == 400 and "messages_rate" in r.text
    wait_until(lambda: node.broker.listeners["tcp:default"].limits is None)


def test_a_client_held_back_by_its_rate_keeps_its_keep_alive(make_broker):
    """What the broker holds counts as heard: a 1 s keep alive (expiring after 1.5 s without
    packets) outlives the ~5 s it takes to read its backlog at 4 messages a second."""
    node = make_broker({"listeners": {"tcp": {"default": {"messages_rate": "4/s"}}}})
    arrivals = _subscriber(node, "flood/ka")
    s = socket.create_connection(("127.0.0.1", node.port), timeout=WAIT)
    try:
        s.sendall(connect_packet("ka-pub", version=4, keepalive=1))
        assert recv_exactly(s, 4) == b"\x20\x02\x00\x00"
        s.sendall(b"".join(publish_packet("flood/ka", b"%d" % i, version=4)
                           for i in range(20)))
        items = arrivals.wait(20, timeout=20)
        assert [p for _, p in items] == [b"%d" % i for i in range(20)]
        assert items[-1][0] - items[0][0] > 3  # (held: it did take longer than 1.5 s)
        assert "ka-pub" in node.broker.channels
    finally:
        s.close()
