"""The heaviest list requests against 10,000 connected clients: complete, correct, and MQTT
keeps flowing while they are being served (the API shares the broker's event loop).

Latency figures are bench/api_load.py's job; this checks behaviour only, with bounds loose
enough for a busy machine."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from mgmt.clients_support import uid, wait_until
from protocol.rawmqtt import PUBLISH, SUBACK, RawClient, publish_packet, subscribe_packet

N = 10000
pytestmark = pytest.mark.emqpy_only


@pytest.fixture(scope="module")
def loaded(broker):
    """The module's broker with N idle clients (emqpy's bench tool in a subprocess: the
    client ends of N sockets do not fit in this process next to the broker's), each
    subscribed to its own topic."""
    if not broker.is_emqpy:
        pytest.skip("HTTP API")
    proc = subprocess.Popen(
        [sys.executable, "-m", "emqpy.bench", "sub", "-h", "127.0.0.1", "-p", str(broker.port),
         "-c", str(N), "-i", "0", "-t", "load/%i", "--prefix", "load", "-V", "4",
         "--workers", "1", "--no-latency", "--quiet", "--duration", "300"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    http = httpx.Client(base_url=f"http://127.0.0.1:{broker.http_port}/api/v5",
                        auth=("admin", "public"), timeout=120)
    try:
        wait_until(lambda: sum(len(s.subscriptions) for s in list(broker.broker.sessions.values()))
                   >= N, timeout=120, what=f"{N} subscribed clients")
        yield broker, http
    finally:
        proc.terminate()
        proc.wait(30)
        http.close()


def test_ten_thousand_rows_complete_and_correct(loaded):
    broker, http = loaded
    expected = {f"load_sub_{i}" for i in range(N)}
    r = http.get("/clients", params={"limit": N})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    ids = [row["clientid"] for row in body["data"]]
    assert len(ids) == N and set(ids) == expected
    assert body["meta"] == {"page": 1, "limit": N, "count": N, "hasnext": False}
    one = http.get("/clients/load_sub_77").json()
    row = next(x for x in body["data"] if x["clientid"] == "load_sub_77")
    assert row.keys() == one.keys()
    assert all(x["connected"] and x["subscriptions_cnt"] == 1 for x in body["data"])
    # the same rows as ten pages of 1,000, in the same order
    paged = [x["clientid"] for p in range(1, 11)
             for x in http.get("/clients", params={"limit": 1000, "page": p}).json()["data"]]
    assert paged == ids

    subs = http.get("/subscriptions", params={"limit": N}).json()
    assert {(s["clientid"], s["topic"]) for s in subs["data"]} == {
        (f"load_sub_{i}", f"load/{i}") for i in range(N)}
    assert subs["meta"]["count"] == N and subs["meta"]["hasnext"] is False
    topics = http.get("/topics", params={"limit": N}).json()
    assert {t["topic"] for t in topics["data"]} == {f"load/{i}" for i in range(N)}


def test_mqtt_flows_while_a_big_page_is_built(loaded):
    """MQTT round trips keep completing while GET /clients?limit=10000 is being built: none
    waits for more than a fraction of the request (the whole page used to be built in one go,
    holding the event loop and every MQTT packet for its duration)."""
    broker, http = loaded
    topic = uid("live/rt")
    # raw blocking sockets: paho's select() cannot take this process's fd numbers (> 10,000)
    c = RawClient(broker.host, broker.port, timeout=30)  # generous: slow is not a failure
    c.connect(uid("live"))
    # Connecting 10,000 clients left a full collection pending (~0.1 s here, for the whole
    # process); have it now rather than during the measurement.
    gc.collect()
    try:
        c.send(subscribe_packet(1, [(topic, 0)]))
        c.expect(SUBACK)
        # Best of three requests, so that one hiccup of a busy machine is not a failure;
        # before, every request held MQTT for almost all of its time.
        ratios = [_longest_stall(http, c, topic) for _ in range(3)]
        assert min(ratios) < 0.25, ratios
    finally:
        c.close()


def _longest_stall(http, c, topic) -> float:
    """The longest MQTT round trip during one GET /clients?limit=10000, as a fraction of the
    time between sending it and receiving its headers (when the page has been built)."""
    marks: dict[str, float] = {}
    body: dict = {}

    def big_request():
        marks["sent"] = time.monotonic()
        with http.stream("GET", "/clients", params={"limit": N}) as r:
            marks["headers"] = time.monotonic()
            body["status"], body["bytes"] = r.status_code, r.read()

    trips: list[tuple[float, float]] = []
    t = threading.Thread(target=big_request)
    t.start()
    while t.is_alive():
        t0 = time.monotonic()
        c.send(publish_packet(topic, b"ping"))
        c.expect(PUBLISH)
        trips.append((t0, time.monotonic()))
    t.join()
    assert body["status"] == 200 and body["bytes"].count(b'"clientid"') == N
    building = marks["headers"] - marks["sent"]
    during = [b - a for a, b in trips if b > marks["sent"] and a < marks["headers"]]
    assert during
    return max(during) / building
