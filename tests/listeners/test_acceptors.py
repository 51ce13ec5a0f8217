"""`acceptors`: a plain listener watches its socket that many times (duplicated descriptors),
so that a burst of connections is accepted several per event-loop iteration; all of them are
released when the listener stops."""
from __future__ import annotations

import socket

import pytest

from emqpy.listeners import restart_listener, stop_listener

from support.rawmqtt import connect_packet
from support.waiting import WAIT

from .helpers import recv_exactly

CONNACK_OK = b"\x20\x02\x00\x00"


def _burst(port: int, n: int) -> list[bytes]:
    socks = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(n)]
    try:
        for i, s in enumerate(socks):
            s.sendall(connect_packet(f"burst-{i}", version=4))
        return [recv_exactly(s, 4) for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("acceptors", [1, 4])
def test_a_burst_of_connections_is_served(make_broker, acceptors):
    h = make_broker({"listeners": {"tcp": {"default": {"acceptors": acceptors}}}})
    lst = h.broker.listeners["tcp:default"]
    assert len(lst._more_servers) == acceptors - 1
    assert _burst(h.port, 200) == [CONNACK_OK] * 200


def test_stopping_closes_every_watcher(make_broker):
    h = make_broker({"listeners": {"tcp": {"default": {"acceptors": 8}}}})
    port = h.port
    assert _burst(port, 20) == [CONNACK_OK] * 20
    h.call(stop_listener, h.broker, "tcp:default")
    with pytest.raises(OSError):  # no duplicate of the listening socket is left listening
        socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))  # the port is free again
    s.close()
    h.call(restart_listener, h.broker, "tcp:default")
    assert _burst(h.broker.listeners["tcp:default"].port, 20) == [CONNACK_OK] * 20
