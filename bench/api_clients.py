"""How fast the management API lists clients when many are connected.

    python bench/api_clients.py [--clients 10000] [--repeat 20]

Starts `python -m emqpy start` in a subprocess (loopback, free ports, a temporary data dir),
connects N idle MQTT 3.1.1 clients over raw sockets (a bounded number of handshakes at a time),
then times GET /api/v5/clients?limit=100 (first page, a middle page, a like_clientid search),
GET /api/v5/subscriptions?limit=100 and GET /api/v5/stats (when the broker has it). Prints
median / p95 / max per request. Everything stops by itself.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect_packet(clientid: str) -> bytes:
    cid = clientid.encode()
    # protocol name "MQTT", level 4, flags: clean session, keepalive 0 (idle forever)
    var = b"\x00\x04MQTT\x04\x02\x00\x00" + len(cid).to_bytes(2, "big") + cid
    n, rl = len(var), bytearray()
    while True:
        b, n = n % 128, n // 128
        rl.append(b | (0x80 if n else 0))
        if not n:
            break
    return b"\x10" + bytes(rl) + var


async def connect_all(port: int, n: int, concurrency: int) -> list:
    sem = asyncio.Semaphore(concurrency)
    writers: list = []

    async def one(i: int) -> None:
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(connect_packet(f"bench-client-{i:06d}"))
            connack = await reader.readexactly(4)
            if connack[0] != 0x20 or connack[3] != 0:
                raise RuntimeError(f"client {i} refused: {connack!r}")
            writers.append(writer)
            # each idle client subscribes once, so /subscriptions has N rows too
            topic = f"bench/{i}".encode()
            writer.write(b"\x82" + bytes([2 + 2 + len(topic) + 1]) + b"\x00\x01"
                         + len(topic).to_bytes(2, "big") + topic + b"\x00")
            suback = await reader.readexactly(5)
            if suback[0] != 0x90:
                raise RuntimeError(f"client {i}: no SUBACK")

    await asyncio.gather(*(one(i) for i in range(n)))
    return writers


def wait_http(base: str, proc, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"broker exited during start:\n{err}")
        try:
            if httpx.get(base + "/status", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("broker HTTP API did not come up")


def timed(client: httpx.Client, path: str, params: dict, repeat: int) -> tuple[list, dict]:
    r = client.get(path, params=params)  # warm-up (and the result shape)
    r.raise_for_status()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(path, params=params)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return times, r.json()


def report(name: str, times: list, body) -> None:
    times = sorted(times)
    p95 = times[max(0, int(len(times) * 0.95) - 1)]
    extra = ""
    if isinstance(body, dict) and "meta" in body:
        extra = f"  rows={len(body['data'])} meta={body['meta']}"
    print(f"{name:<42} median {statistics.median(times):7.2f} ms  p95 {p95:7.2f} ms  "
          f"max {times[-1]:7.2f} ms{extra}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.clients + 1000
    if soft < need:  # the broker (our child) inherits the raised limit
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, need), hard))

    mqtt_port, http_port = free_port(), free_port()
    data_dir = tempfile.mkdtemp(prefix="emqpy-bench-api-")
    env = dict(os.environ,
               EMQX_LISTENERS__TCP__DEFAULT__BIND=f"127.0.0.1:{mqtt_port}",
               EMQX_DASHBOARD__LISTENERS__HTTP__BIND=f"127.0.0.1:{http_port}",
               # only the TCP listener: the others' default ports may be taken on this machine
               EMQX_LISTENERS__SSL__DEFAULT__ENABLE="false",
               EMQX_LISTENERS__WS__DEFAULT__ENABLE="false",
               EMQX_LISTENERS__WSS__DEFAULT__ENABLE="false")
    proc = subprocess.Popen([sys.executable, "-m", "emqpy", "start", "--data-dir", data_dir],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{http_port}/api/v5"
    loop = asyncio.new_event_loop()
    writers: list = []
    try:
        wait_http(base, proc)
        t0 = time.perf_counter()
        writers = loop.run_until_complete(
            connect_all(mqtt_port, args.clients, args.concurrency))
        print(f"connected and subscribed {len(writers)} clients in "
              f"{time.perf_counter() - t0:.1f} s")
        with httpx.Client(base_url=base, timeout=60) as c:
            token = c.post("/login", json={"username": "admin", "password": "public"})
            token.raise_for_status()
            c.headers["Authorization"] = "Bearer " + token.json()["token"]
            mid = max(1, args.clients // 100 // 2)
            cases = [
                ("GET /clients?limit=100 (page 1)", "/clients", {"limit": 100}),
                (f"GET /clients?limit=100&page={mid}", "/clients", {"limit": 100, "page": mid}),
                ("GET /clients?like_clientid=client-0001", "/clients",
                 {"limit": 100, "like_clientid": "client-0001"}),
                ("GET /clients?clientid=<one>", "/clients",
                 {"clientid": f"bench-client-{args.clients // 2:06d}"}),
                ("GET /subscriptions?limit=100 (page 1)", "/subscriptions", {"limit": 100}),
                (f"GET /subscriptions?limit=100&page={mid}", "/subscriptions",
                 {"limit": 100, "page": mid}),
                ("GET /subscriptions?topic=bench/7", "/subscriptions", {"topic": "bench/7"}),
            ]
            for name, path, params in cases:
                times, body = timed(c, path, params, args.repeat)
                report(name, times, body)
            if c.get("/stats").status_code == 200:
                times, body = timed(c, "/stats", {}, args.repeat)
                report("GET /stats", times, body)
            else:
                print("GET /stats: not available on this build (skipped)")
    finally:
        for w in writers:
            w.close()
        loop.close()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
