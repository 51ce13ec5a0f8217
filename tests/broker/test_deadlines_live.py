"""Connections and the deadline wheel on a running broker: filed while they wait for CONNECT or
keep alive, gone from it once they close."""
import asyncio
import socket
import time

from tests.protocol import rawmqtt as R
from tests.protocol.mqttclient import uid


def _filed(b) -> int:
    async def count():
        return len(b.broker.deadlines)
    return asyncio.run_coroutine_threadsafe(count(), b.broker.loop).result(5)


def _wait(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_closed_connections_leave_the_wheel(make_broker):
    b = make_broker({"mqtt": {"idle_timeout": "30s"}})
    silent = socket.create_connection(("127.0.0.1", b.port))  # no CONNECT yet: idle deadline
    assert _wait(lambda: _filed(b) == 1)
    clients = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", b.port))
        s.sendall(R.connect_packet(uid("ka"), version=4, keepalive=300))
        assert s.recv(4)[:1] == b"\x20"
        clients.append(s)
    assert _wait(lambda: _filed(b) == 4)  # 1 idle + 3 keep-alive deadlines
    for s in clients + [silent]:
        s.close()
    assert _wait(lambda: _filed(b) == 0)  # minutes before any of them was due
