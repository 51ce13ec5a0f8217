"""The asyncio MQTT client that bridges use, against real brokers: Mosquitto (the remote broker
of the bridge tests) and emqpy itself, every protocol version and QoS, refusals, an outage
with reconnect and restored subscriptions."""
from __future__ import annotations

import asyncio

import pytest

from emqpy.connectors.mqtt import MqttClient
from support.mqttclient import MqttClient as PahoClient, uid
from support.servers import MosquittoServer, free_port

VERSIONS = [3, 4, 5]


@pytest.fixture(scope="module")
def mosquitto():
    server = MosquittoServer()
    yield server
    server.stop()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("target", ["mosquitto", "emqpy"])
def test_publish_every_qos_and_receive_through_a_subscription(version, target, mosquitto,
                                                               mqtt_broker):
    server = mosquitto if target == "mosquitto" else mqtt_broker
    topic = uid("bridge") + "/"
    got: list = []

    async def main():
        c = MqttClient(server.host, server.port, clientid=uid("c"), proto_ver=version,
                       on_message=got.append)
        c.start()
        assert await c.wait_connected(10), c.last_error
        assert c.status == "connected"
        assert await c.subscribe([(topic + "#", 2)]) == [2]
        for qos in (0, 1, 2):
            assert await c.publish(topic + str(qos), b"q%d" % qos, qos) == 0
        for _ in range(200):
            if len(got) == 3:
                break
            await asyncio.sleep(0.02)
        await c.stop()
        assert c.status == "disconnected"

    run(main())
    assert sorted((p.topic, p.payload, p.qos) for p in got) == [
        (topic + "0", b"q0", 0), (topic + "1", b"q1", 1), (topic + "2", b"q2", 2)]


def test_many_qos1_publishes_are_all_acknowledged_within_the_window(mosquitto):
    topic = uid("many")
    sub = PahoClient(mosquitto.host, mosquitto.port, version=4).connect()
    sub.subscribe(topic, 1)

    async def main():
        c = MqttClient(mosquitto.host, mosquitto.port, clientid=uid("c"), max_inflight=8)
        c.start()
        assert await c.wait_connected(10)
        codes = await asyncio.gather(*(c.publish(topic, b"%d" % i, 1) for i in range(500)))
        await c.stop()
        return codes

    assert run(main()) == [0] * 500
    assert sorted(int(m.payload) for m in sub.get_many(500)) == list(range(500))
    sub.disconnect()


def test_a_refused_connect_says_why(make_mqtt_broker):
    node = make_mqtt_broker({"authentication": [{
        "mechanism": "password_based", "backend": "built_in_database",
        "user_id_type": "username"}]})

    async def main():
        c = MqttClient(node.host, node.port, clientid=uid("c"), proto_ver=5,
                       username="nobody", password="wrong")
        with pytest.raises(ConnectionError) as e:
            await c.connect()
        assert "bad_user_name_or_password" in str(e.value) or "not_authorized" in str(e.value)
        c4 = MqttClient(node.host, node.port, clientid=uid("c"), proto_ver=4,
                        username="nobody", password="wrong")
        with pytest.raises(ConnectionError) as e4:
            await c4.connect()
        assert "malformed_username_or_password" in str(e4.value) or \
            "unauthorized_client" in str(e4.value)

    run(main())


def test_nothing_listening_is_a_connection_error_with_the_address():
    port = free_port()

    async def main():
        c = MqttClient("127.0.0.1", port, clientid="x", connect_timeout=2)
        with pytest.raises(ConnectionError) as e:
            await c.connect()
        assert f"127.0.0.1:{port}" in str(e.value)
        assert c.last_error == str(e.value)

    run(main())


def test_reconnects_after_an_outage_and_restores_its_subscriptions():
    server = MosquittoServer()
    topic = uid("outage")
    got: list = []
    statuses: list = []

    async def main():
        c = MqttClient(server.host, server.port, clientid=uid("c"), reconnect_interval=0.2,
                       on_message=got.append, on_status=statuses.append)
        c.start()
        assert await c.wait_connected(10)
        await c.subscribe([(topic, 1)])
        await asyncio.to_thread(server.stop, remove=False)
        for _ in range(200):
            if c.status != "connected":
                break
            await asyncio.sleep(0.02)
        assert c.status == "connecting" and c.last_error
        with pytest.raises(ConnectionError):
            await c.publish(topic, b"lost", 1)
        await asyncio.to_thread(server.start)
        assert await c.wait_connected(15), c.last_error
        assert await c.publish(topic, b"after", 1) == 0
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.02)
        await c.stop()

    try:
        run(main())
    finally:
        server.stop()
    assert [p.payload for p in got] == [b"after"]
    assert statuses[:2] == ["connecting", "connected"] and "connecting" in statuses[2:]
