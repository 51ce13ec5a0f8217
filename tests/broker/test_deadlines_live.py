"""Connections and the deadline wheel on a running broker: filed while they wait for CONNECT or
keep alive, gone from it once they close."""
import socket
import threading
import time

from support import rawmqtt as R
from support.mqttclient import uid
from support.waiting import wait_until


def _filed(b) -> int:
    """How many deadlines the wheel holds (read in the broker's loop)."""
    return b.call(lambda: len(b.broker.deadlines), timeout=5)


def test_closed_connections_leave_the_wheel(make_broker):
    b = make_broker({"mqtt": {"idle_timeout": "30s"}})
    silent = socket.create_connection(("127.0.0.1", b.port))  # no CONNECT yet: idle deadline
    wait_until(lambda: _filed(b) == 1, timeout=5)
    clients = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", b.port))
        s.sendall(R.connect_packet(uid("ka"), version=4, keepalive=300))
        assert s.recv(4)[:1] == b"\x20"
        clients.append(s)
    wait_until(lambda: _filed(b) == 4, timeout=5)  # 1 idle + 3 keep-alive deadlines
    for s in clients + [silent]:
        s.close()
    wait_until(lambda: _filed(b) == 0, timeout=5)  # minutes before any of them was due


def test_handshake_deadline_stands_in_for_the_first_keepalive_check(make_broker):
    """idle_timeout 1 s, keep alive 2 s (checked every 3 s): the handshake deadline comes first
    and stays filed at CONNECT; when it comes it must file the check, not close the client."""
    b = make_broker({"mqtt": {"idle_timeout": "1s"}})
    silent = R.RawClient("127.0.0.1", b.port, 4)
    pinging = R.RawClient("127.0.0.1", b.port, 4)
    t0 = time.monotonic()
    silent.connect(uid("ka"), keepalive=2)
    pinging.connect(uid("ka"), keepalive=2)
    pongs = []

    def ping():  # 5 s of pings every second: each keep-alive check passes
        for _ in range(5):
            time.sleep(1.0)
            pinging.send(R.PINGREQ_PACKET)
            pongs.append(pinging.expect(R.PINGRESP).raw())

    t = threading.Thread(target=ping)
    t.start()
    silent.expect_close(timeout=6)
    waited = time.monotonic() - t0
    t.join()
    assert 3.0 <= waited < 5.5, f"silent client closed after {waited:.1f}s (keep alive x 1.5 = 3s)"
    assert pongs == [b"\xd0\x00"] * 5
    pinging.close()


def test_no_keepalive_outlives_the_handshake_deadline(make_broker):
    b = make_broker({"mqtt": {"idle_timeout": "1s"}})
    r = R.RawClient("127.0.0.1", b.port, 4)
    r.connect(uid("ka0"), keepalive=0)
    time.sleep(2.5)  # past the handshake deadline, which the connected client outlives
    r.send(R.PINGREQ_PACKET)
    assert r.expect(R.PINGRESP).raw() == b"\xd0\x00"
    assert _filed(b) == 0
    r.close()
