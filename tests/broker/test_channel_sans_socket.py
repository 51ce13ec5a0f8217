"""The protocol runs without a socket: Channels fed bytes through an in-memory transport, on a
broker core that was never started (no listening socket, store, API or features).

What a core needs to run channels: an event loop (`broker.loop`, for the per-iteration flush
and awaited checks) and the deadline wheel (`broker.deadlines`). The listener object gives
the channel its admission counting, mountpoint and port; it is built from the default config
and never started. The loop is never run forever: `settle` runs the callbacks that are due
(the flush that writes each channel's queued output, answers to awaited checks) for a
moment.
"""
from __future__ import annotations

import asyncio

import pytest

from emqpy.broker.broker import Broker
from emqpy.broker.channel import CLOSED, CONNECTED, Channel
from emqpy.broker.deadlines import DeadlineWheel
from emqpy.listeners.tcp import TcpListener
from support import rawmqtt as R


class MemoryTransport(asyncio.Transport):
    """What a Channel needs of a transport, in memory: writes are recorded, reading can be
    paused and resumed, closing tells the channel the connection is lost."""

    def __init__(self, loop, peer=("192.0.2.7", 40000)):
        super().__init__()
        self.loop = loop
        self.peer = peer
        self.written = b""
        self.reading = True
        self.closing = False
        self.protocol = None

    def write(self, data) -> None:
        assert not self.closing, "write after close"
        self.written += bytes(data)

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.loop.call_soon(self.protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        self.high = high

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name, default=None):
        return self.peer if name == "peername" else default

    def take(self, version: int = 5) -> list[R.Packet]:
        """The packets written since the last call, decoded."""
        out, buf = [], self.written
        while buf:
            pkt, buf = R.split_packet(buf, version)
            assert pkt is not None, f"incomplete packet written: {buf!r}"
            out.append(pkt)
        self.written = b""
        return out


class Core:
    """A Broker that was never started, with what channels need set by hand."""

    def __init__(self, tmp_path, overrides=None):
        self.loop = asyncio.new_event_loop()
        self.broker = Broker(overrides, data_dir=tmp_path)
        self.broker.loop = self.loop
        self.broker.deadlines = DeadlineWheel(self.loop)
        self.listener = TcpListener(self.broker, "default",
                                    self.broker.config.listeners.tcp["default"])

    def channel(self) -> tuple[Channel, MemoryTransport]:
        ch = Channel(self.broker, self.listener)
        t = MemoryTransport(self.loop)
        t.protocol = ch
        ch.connection_made(t)
        return ch, t

    def settle(self, seconds: float = 0.01) -> None:
        """Run the loop for `seconds`: what is due now and what that sets off."""
        self.loop.run_until_complete(asyncio.sleep(seconds))

    def close(self) -> None:
        self.broker.deadlines.close()
        self.loop.close()


@pytest.fixture
def core(tmp_path):
    c = Core(tmp_path)
    yield c
    c.close()


def _connect(core, clientid: str, version: int = 4):
    ch, t = core.channel()
    ch.data_received(R.connect_packet(clientid, version=version))
    core.settle()
    return ch, t


def test_connect_subscribe_publish_bytes(core):
    sub, st = core.channel()
    sub.data_received(R.connect_packet("sub", version=4, keepalive=30))
    assert st.written == b""  # queued until the loop's flush
    core.settle()
    assert st.written == b"\x20\x02\x00\x00"  # CONNACK, no session present, accepted
    assert sub.state == CONNECTED and core.broker.channels["sub"] is sub
    st.written = b""

    sub.data_received(R.subscribe_packet(1, [("a/+", 1)], version=4))
    core.settle()
    assert st.written == b"\x90\x03\x00\x01\x01"  # SUBACK, packet id 1, granted QoS 1
    st.written = b""

    pub, pt = _connect(core, "pub")
    pt.written = b""
    # QoS 0, then QoS 1 with packet id 7: PUBACK to the publisher, and the subscriber gets
    # the first as it was sent and the second with its own packet id (1).
    qos0 = R.publish_packet("a/b", b"hello", version=4)
    qos1 = R.publish_packet("a/c", b"again", qos=1, pid=7, version=4)
    pub.data_received(qos0 + qos1)
    core.settle()
    assert pt.written == b"\x40\x02\x00\x07"
    assert st.written == qos0 + R.publish_packet("a/c", b"again", qos=1, pid=1, version=4)


def test_mqtt5_connack_and_subscription_identifier(core):
    ch, t = core.channel()
    ch.data_received(R.connect_packet("v5", version=5, properties={R.RECEIVE_MAXIMUM: 10}))
    core.settle()
    (connack,) = t.take()
    assert connack.type == R.CONNACK and connack.rc == 0 and not connack.session_present
    mq = core.broker.config.mqtt
    assert connack.props[R.MAXIMUM_PACKET_SIZE] == mq.max_packet_size
    assert connack.props[R.TOPIC_ALIAS_MAXIMUM] == mq.max_topic_alias

    ch.data_received(R.subscribe_packet(3, [("t/#", 0)], properties={R.SUBSCRIPTION_ID: 42}))
    ch.data_received(R.publish_packet("t/x", b"p"))  # to itself (No Local is off)
    core.settle()
    suback, publish = t.take()
    assert (suback.type, suback.pid, suback.rcs) == (R.SUBACK, 3, [0])
    assert (publish.type, publish.topic, publish.payload) == (R.PUBLISH, "t/x", b"p")
    assert publish.props[R.SUBSCRIPTION_ID] == [42]


def test_protocol_error_closes_without_a_socket(core):
    ch, t = core.channel()
    ch.data_received(R.publish_packet("t", b"x", version=4))  # PUBLISH before CONNECT
    core.settle()
    assert ch.state == CLOSED and t.closing
    assert t.written == b""  # MQTT 3.1.1: no DISCONNECT from the server


def test_congested_subscriber_holds_back_its_publisher(core):
    sub, st = _connect(core, "slow")
    sub.data_received(R.subscribe_packet(1, [("big", 0)], version=4))
    bystander, bt = _connect(core, "bystander")
    pub, pt = _connect(core, "fast")
    core.settle()
    sub.high_watermark = 1000

    pub.data_received(R.publish_packet("big", b"x" * 600, version=4))
    assert pt.reading and not sub.congested
    pub.data_received(R.publish_packet("big", b"x" * 600, version=4))
    assert sub.congested and not pt.reading  # the publisher that fed it stops reading
    assert bt.reading  # and only that one

    # A message from nowhere in particular (the API's publish) holds back nobody.
    core.broker.publish_from_system("big", b"y")
    assert bt.reading

    core.settle()  # the flush hands the queue to the transport: drained
    assert not sub.congested and pt.reading
    assert [p.payload for p in st.take(4)][-3:] == [b"x" * 600, b"x" * 600, b"y"]


def test_a_publisher_feeding_two_congested_subscribers_waits_for_both(core):
    a, at = _connect(core, "slow-a")
    b, bt = _connect(core, "slow-b")
    for ch in (a, b):
        ch.data_received(R.subscribe_packet(1, [("big", 0)], version=4))
        ch.high_watermark = 1000
    pub, pt = _connect(core, "fast")
    core.settle()
    b.pause_writing()  # b's socket buffer is full: it stays congested after the flush

    pub.data_received(R.publish_packet("big", b"x" * 1200, version=4))
    assert a.congested and b.congested and not pt.reading
    core.settle()  # a drains; b does not
    assert not a.congested and b.congested
    assert not pt.reading  # (a's drain used to let it read again)
    b.resume_writing()
    assert not b.congested and pt.reading


def test_packets_wait_for_an_asynchronous_authentication(core):
    answered = core.loop.create_future()

    async def authenticate(ch, pkt):
        await answered
        return 0

    core.broker.add_authenticator(authenticate)
    ch, t = core.channel()
    # CONNECT and SUBSCRIBE in one read: the SUBSCRIBE waits for the CONNACK.
    ch.data_received(R.connect_packet("late", version=4)
                     + R.subscribe_packet(5, [("q", 0)], version=4))
    core.settle()
    assert t.written == b"" and not t.reading
    assert ch.stats()["mailbox_len"] == 1

    answered.set_result(None)
    core.settle()
    assert t.written == b"\x20\x02\x00\x00" + b"\x90\x03\x00\x05\x00"
    assert t.reading and ch.stats()["mailbox_len"] == 0


def test_keepalive_expires_on_the_deadline_wheel(core):
    ch, t = core.channel()
    ch.data_received(R.connect_packet("ka", version=5, keepalive=1))
    core.settle()
    t.take()
    core.settle(2.6)  # 1 s x keepalive_multiplier (1.5), on whole seconds, plus a tick
    assert ch.state == CLOSED
    (disconnect,) = t.take()
    assert (disconnect.type, disconnect.rc) == (R.DISCONNECT, 0x8D)  # keep alive timeout
