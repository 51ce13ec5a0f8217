"""A subscriber that stops reading must not grow the broker's memory or stall other clients.

The broker counts the bytes it has queued for each connection; past the high-water mark it stops
reading from the publishers that feed that subscriber, until the subscriber drains or is closed
after `send_timeout`.
"""
import socket
import time

from support import rawmqtt as R
from support.mqttclient import uid


def _raw_v4(port: int, clientid: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(R.connect_packet(clientid, version=4))
    assert s.recv(4)[:1] == b"\x20"  # CONNACK
    return s


def test_stuck_subscriber_pauses_publisher_and_bounds_memory(make_broker):
    b = make_broker({"listeners": {"tcp": {"default": {"tcp_options": {
        "high_watermark": "256KB", "send_timeout": "3s"}}}}})
    topic = uid("bp")
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", b.port))
    stuck.sendall(R.connect_packet(uid("stuck"), version=4))
    assert stuck.recv(4)[:1] == b"\x20"
    stuck.sendall(R.subscribe_packet(1, [(topic, 0)], version=4))
    time.sleep(0.3)  # let the SUBACK arrive; the socket is never read again

    pub = _raw_v4(b.port, uid("pub"))
    pub.settimeout(1.0)
    frame = R.publish_packet(topic, b"x" * 8192, version=4)
    stalled = False
    for _ in range(20000):  # up to 160 MB offered; the broker must stop taking them
        try:
            pub.sendall(frame)
        except socket.timeout:
            stalled = True
            break
    assert stalled, "publisher was never paused"
    queued = sum(ch.queued_bytes + (ch.transport.get_write_buffer_size() if ch.transport else 0)
                 for ch in list(b.broker.channels.values()))
    # Bounded by the high-water mark plus what was read before the pause took effect.
    assert queued < 16 * 1024 * 1024, queued

    # Meanwhile an unrelated pair of clients is served normally.
    other = uid("other")
    s2 = R.RawClient("127.0.0.1", b.port)
    s2.connect(uid("s2"))
    s2.send(R.subscribe_packet(1, [(other, 0)]))
    s2.expect(R.SUBACK)
    p2 = R.RawClient("127.0.0.1", b.port)
    p2.connect(uid("p2"))
    p2.send(R.publish_packet(other, b"still served"))
    assert s2.expect(R.PUBLISH).payload == b"still served"

    # After send_timeout the stuck subscriber is closed and the publisher is read again.
    deadline = time.monotonic() + 20
    resumed = False
    while time.monotonic() < deadline and not resumed:
        try:
            pub.sendall(frame)
            resumed = True
        except socket.timeout:
            continue
    assert resumed, "publisher never resumed after the stuck subscriber was closed"
    stuck.close()
    pub.close()
