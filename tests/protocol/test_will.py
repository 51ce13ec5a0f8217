"""Will messages: when they are published, when cancelled, and what they carry."""
import pytest

from support import rawmqtt as R
from support.mqttclient import props, uid


def _watcher(mqtt, broker, topic, qos=2):
    w = mqtt(broker)
    w.subscribe(topic, qos)
    return w


@pytest.mark.parametrize("version", [3, 4, 5])
def test_will_on_abnormal_disconnect(broker, mqtt, version):
    t = uid("will")
    w = _watcher(mqtt, broker, t)
    c = mqtt(broker, version=version, connect=False).will_set(t, b"gone", qos=1)
    c.connect()
    c.drop()
    m = w.get()
    assert (m.topic, m.payload, m.qos, m.retain) == (t, b"gone", 1, False)


def test_no_will_on_normal_disconnect(broker, mqtt):
    t = uid("will")
    w = _watcher(mqtt, broker, t)
    c = mqtt(broker, connect=False).will_set(t, b"gone")
    c.connect()
    c.disconnect(0)
    w.expect_none()


def test_will_on_disconnect_with_will_message_0x04(broker, mqtt):
    t = uid("will")
    w = _watcher(mqtt, broker, t)
    c = mqtt(broker, connect=False).will_set(t, b"bye", qos=2)
    c.connect()
    c.disconnect(0x04)
    m = w.get()
    assert (m.payload, m.qos) == (b"bye", 2)


def test_will_on_keepalive_timeout(broker, raw, mqtt):
    t = uid("will")
    w = _watcher(mqtt, broker, t)
    r = raw(broker)
    r.connect(uid(), keepalive=1, will={"topic": t, "payload": b"timeout", "qos": 1})
    got = r.expect_close()  # silent client: closed after 1.5 x keepalive
    if broker.is_emqpy:
        assert [(p.type, p.rc) for p in got] == [(R.DISCONNECT, 0x8D)]  # Keep Alive timeout
    assert w.get().payload == b"timeout"


def test_will_properties_passed_through(broker, mqtt):
    t = uid("will")
    w = _watcher(mqtt, broker, t)
    wp = props("WILL", ContentType="text/plain", ResponseTopic="resp/x",
               CorrelationData=b"\x01\x02", PayloadFormatIndicator=1,
               UserProperty=[("k", "v1"), ("k", "v2")], MessageExpiryInterval=60)
    c = mqtt(broker, connect=False).will_set(t, b"w", qos=1, properties=wp)
    c.connect()
    c.drop()
    m = w.get()
    p = m.properties
    assert p.ContentType == "text/plain" and p.ResponseTopic == "resp/x"
    assert p.CorrelationData == b"\x01\x02" and p.PayloadFormatIndicator == 1
    assert p.UserProperty == [("k", "v1"), ("k", "v2")]
    assert 0 < p.MessageExpiryInterval <= 60


def test_will_retain_is_stored(broker, mqtt):
    t = uid("will")
    c = mqtt(broker, connect=False).will_set(t, b"last", qos=1, retain=True)
    c.connect()
    w = _watcher(mqtt, broker, t)
    c.drop()
    assert w.get().payload == b"last"
    late = mqtt(broker)
    late.subscribe(t, 1)
    m = late.get()
    assert m.payload == b"last" and m.retain
    mqtt(broker).publish(t, b"", qos=1, retain=True)  # clean up the retained will


def test_will_delay_publishes_later(broker, mqtt):
    t = uid("will")
    w = _watcher(mqtt, broker, t)
    c = mqtt(broker, connect=False).will_set(t, b"delayed", qos=1,
                                            properties=props("WILL", WillDelayInterval=1))
    c.connect(properties=props("CONNECT", SessionExpiryInterval=30))
    c.drop()
    assert w.get().payload == b"delayed"


def test_will_cancelled_by_reconnect_within_delay(broker, mqtt):
    t, cid = uid("will"), uid("c")
    w = _watcher(mqtt, broker, t)
    c = mqtt(broker, cid, connect=False).will_set(t, b"no", qos=1,
                                                 properties=props("WILL", WillDelayInterval=2))
    c.connect(properties=props("CONNECT", SessionExpiryInterval=30))
    c.drop()
    back = mqtt(broker, cid, clean_start=False,
                properties=props("CONNECT", SessionExpiryInterval=0))
    assert back.session_present
    w.expect_none(3.0)  # longer than the 2 s will delay


def test_will_delay_capped_by_session_end(broker, mqtt):
    # MQTT 5 3.1.3.2.2: the will is sent when the session ends, even if the delay is longer.
    t = uid("will")
    w = _watcher(mqtt, broker, t)
    c = mqtt(broker, connect=False).will_set(t, b"sess-end", qos=1,
                                            properties=props("WILL", WillDelayInterval=3600))
    c.connect(properties=props("CONNECT", SessionExpiryInterval=1))
    c.drop()
    assert w.get().payload == b"sess-end"


def test_will_on_server_disconnect_for_protocol_error(broker, raw, mqtt):
    # MQTT 5 3.1.2.5: the will is published when the server closes the connection because
    # of a protocol error.
    t = uid("will")
    w = _watcher(mqtt, broker, t)
    r = raw(broker)
    r.connect(uid(), will={"topic": t, "payload": b"err", "qos": 1})
    r.send(R.packet(R.PUBLISH, 0x06, R.s("t") + R.u16(1) + R.props(None)))  # QoS 3
    r.expect_close()
    assert w.get().payload == b"err"
