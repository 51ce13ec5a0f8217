"""The Receive Maximum the server announces in CONNACK, and its enforcement (MQTT 5 3.2.2.3.3,
4.9): a client with more unacknowledged QoS 1/2 PUBLISHes outstanding than that value gets
DISCONNECT 0x93. QoS 1 is acknowledged at once, so what can be outstanding is QoS 2 awaiting
PUBREL, bounded by mqtt.max_awaiting_rel; the server announces that bound."""
import pytest

from support import rawmqtt as R
from support.mqttclient import uid


def _flood_qos2(r, n: int) -> list[R.Packet]:
    """Send n QoS 2 PUBLISHes without ever sending PUBREL; returns what came back before the
    connection closed."""
    r.send(b"".join(R.publish_packet("rm/flood", b"x", qos=2, pid=pid) for pid in range(1, n + 1)))
    return r.expect_close()


def test_exceeding_announced_receive_maximum_disconnects(broker, raw):
    # Eclipse Paho interoperability suite, client_test5 test_flow_control2: take the announced
    # Receive Maximum (65535 when absent), publish one more QoS 2 than that, expect 0x93.
    r = raw(broker)
    ack = r.connect(uid())
    announced = ack.props.get(R.RECEIVE_MAXIMUM, 65535)
    got = _flood_qos2(r, announced + 1)
    assert [p.pid for p in got if p.type == R.PUBREC] == list(range(1, announced + 1))
    assert [(p.type, p.rc) for p in got if p.type != R.PUBREC] == [(R.DISCONNECT, 0x93)]


@pytest.mark.emqpy_only
@pytest.mark.parametrize("client_rm", [None, 1, 5000])
def test_announced_value_is_max_awaiting_rel_whatever_the_client_says(make_broker, raw,
                                                                       client_rm):
    # The client's own Receive Maximum bounds the other direction (server -> client) and
    # must not change what the server accepts from it.
    b = make_broker({"mqtt": {"max_awaiting_rel": 3, "max_inflight": 10}})
    r = raw(b)
    props = {R.RECEIVE_MAXIMUM: client_rm} if client_rm else None
    assert r.connect(uid(), properties=props).props[R.RECEIVE_MAXIMUM] == 3
    got = _flood_qos2(r, 4)
    assert [(p.type, p.pid or p.rc) for p in got] == [
        (R.PUBREC, 1), (R.PUBREC, 2), (R.PUBREC, 3), (R.DISCONNECT, 0x93)]


@pytest.mark.emqpy_only
def test_unlimited_awaiting_rel_announces_the_protocol_maximum(make_broker, raw):
    b = make_broker({"mqtt": {"max_awaiting_rel": "infinity"}})
    assert raw(b).connect(uid()).props[R.RECEIVE_MAXIMUM] == 65535


@pytest.mark.emqpy_only
def test_qos1_is_never_outstanding(make_broker, raw):
    # Acknowledged as it arrives: a burst of QoS 1 far beyond the announced value is fine.
    b = make_broker({"mqtt": {"max_awaiting_rel": 2}})
    r = raw(b)
    r.connect(uid())
    r.send(b"".join(R.publish_packet("rm/q1", b"x", qos=1, pid=pid) for pid in range(1, 51)))
    assert [r.expect(R.PUBACK).pid for _ in range(50)] == list(range(1, 51))
    r.send(R.PINGREQ_PACKET)
    r.expect(R.PINGRESP)
