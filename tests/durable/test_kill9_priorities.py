"""A queue ordered by mqtt.mqueue_priorities survives kill -9: the journal names each entry
that left a priority's queue (delivered into the window, dropped when full), so the broker
started again on the same data dir holds exactly what was left, in delivery order."""
from __future__ import annotations

from support.mqttclient import MqttClient, props, uid
from support.process import BrokerProcess
from support.waiting import wait_until

HOST = "127.0.0.1"
CONFIG = {"mqtt": {"mqueue_priorities": {"kp/a": 1}, "max_mqueue_len": 25}}


def _connect(broker, cid, manual_ack=False) -> MqttClient:
    c = MqttClient(HOST, broker.mqtt_port, cid, clean=False, manual_ack=manual_ack)
    c.connect(properties=props("CONNECT", SessionExpiryInterval=300))
    return c


def _offline(broker, cid) -> bool:
    r = broker.api.get(f"/clients/{cid}")
    return r.status_code == 200 and r.json()["connected"] is False


def test_priority_queue_after_a_drop_a_partial_delivery_and_kill_9(tmp_path):
    broker = BrokerProcess(tmp_path, config=CONFIG).start()
    cid = uid("kp")
    try:
        sub = _connect(broker, cid)
        sub.subscribe("kp/#", qos=1)
        sub.disconnect()
        wait_until(lambda: _offline(broker, cid))
        pub = MqttClient(HOST, broker.mqtt_port).connect()
        for i in range(1, 26):  # each returns once PUBACK came back (queued and journaled)
            pub.publish("kp/a", b"a%d" % i, qos=1)
            pub.publish("kp/d", b"d%d" % i, qos=1)
        pub.publish("kp/a", b"a26", qos=1)  # its priority is full: a1 is dropped
        pub.close()
        # "kp/a" (priority 1) sends 20 a turn, unlisted topics (0) 10
        expected = ([f"a{i}" for i in range(2, 22)] + [f"d{i}" for i in range(1, 11)]
                    + [f"a{i}" for i in range(22, 27)] + [f"d{i}" for i in range(11, 26)])
        sub = _connect(broker, cid, manual_ack=True)
        first = sub.get_many(32)  # the window (max_inflight 32), never acknowledged
        assert [m.payload.decode() for m in first] == expected[:32]
        broker.kill()
        broker.start()
        again = _connect(broker, cid)
        assert again.session_present is True
        assert [m.payload.decode() for m in again.get_many(50)] == expected
        again.expect_none()
        again.close()
    finally:
        broker.stop()
