"""Messages queued for an action while its target is down survive kill -9 of the broker and
are delivered after the restart (at least once): a broker in its own process, killed with
SIGKILL, and a real HTTP target in another."""
from __future__ import annotations

from support.mqttclient import MqttClient, uid
from support.process import BrokerProcess
from support.servers import HttpSink, MosquittoServer
from support.waiting import wait_until


def test_queued_messages_survive_kill_9(tmp_path):
    sink = HttpSink()
    aname = uid("a")
    broker = BrokerProcess(tmp_path, "--forward", f"http:{aname}", "k9/#").start()
    try:
        api = broker.api
        r = api.post("/connectors", json={"type": "http", "name": "c", "url": sink.url(),
                                          "resource_opts": {"health_check_interval": "100ms"}})
        assert r.status_code == 201, r.text
        r = api.post("/actions", json={
            "type": "http", "name": aname, "connector": "c",
            "parameters": {"body": "${payload}"},
            "resource_opts": {"health_check_interval": "100ms", "worker_pool_size": 4,
                              "request_ttl": "infinity"}})
        assert r.status_code == 201, r.text
        sink.stop()  # the target goes down
        pubs = [MqttClient("127.0.0.1", broker.mqtt_port).connect() for _ in range(4)]
        n = 400
        for i in range(n):
            pubs[i % 4].publish(f"k9/{i % 4}", str(i).encode(), qos=1)
        for p in pubs:
            p.close()

        def held():
            m = api.get(f"/actions/http:{aname}/metrics").json()["metrics"]
            return m["queuing"] + m["inflight"] == n and m["matched"] == n
        wait_until(held, what="every message buffered")
        broker.kill()
        sink.start()  # the target is back, the broker comes back
        broker.start()
        wait_until(lambda: len({r["body"] for r in sink.requests()}) == n, timeout=60,
                   what="every message buffered before the kill -9 to arrive")
        assert {r["body"] for r in sink.requests()} == {str(i) for i in range(n)}
        m = broker.api.get(f"/actions/http:{aname}/metrics").json()["metrics"]
        assert m["queuing"] == 0
    finally:
        broker.stop()
        sink.stop()


def test_queued_mqtt_messages_survive_kill_9(tmp_path):
    """The same with the mqtt action: Mosquitto is down while messages are queued, the broker
    is killed, Mosquitto and the broker come back, and a Mosquitto subscriber gets them all."""
    mosq = MosquittoServer()
    aname = uid("m")
    broker = BrokerProcess(tmp_path, "--forward", f"mqtt:{aname}", "k9m/#").start()
    sub = None
    try:
        api = broker.api
        r = api.post("/connectors", json={"type": "mqtt", "name": "c", "pool_size": 2,
                                          "server": f"127.0.0.1:{mosq.port}",
                                          "resource_opts": {"health_check_interval": "100ms"}})
        assert r.status_code == 201, r.text
        r = api.post("/actions", json={
            "type": "mqtt", "name": aname, "connector": "c",
            "parameters": {"topic": "out/${topic}", "payload": "${payload}", "qos": 1},
            "resource_opts": {"health_check_interval": "100ms", "worker_pool_size": 4,
                              "request_ttl": "infinity"}})
        assert r.status_code == 201, r.text
        mosq.stop(remove=False)  # the remote broker goes down
        pubs = [MqttClient("127.0.0.1", broker.mqtt_port).connect() for _ in range(4)]
        n = 400
        for i in range(n):
            pubs[i % 4].publish(f"k9m/{i % 4}", str(i).encode(), qos=1)
        for p in pubs:
            p.close()

        def held():
            m = api.get(f"/actions/mqtt:{aname}/metrics").json()["metrics"]
            return m["queuing"] + m["inflight"] == n and m["matched"] == n
        wait_until(held, what="every message buffered")
        broker.kill()
        mosq.start()
        # a persistent session on Mosquitto would also work; subscribing before the broker
        # comes back is simpler: nothing can be published to Mosquitto before that
        sub = MqttClient("127.0.0.1", mosq.port, uid("rs"), version=4).connect()
        sub.subscribe("out/#", qos=1)
        broker.start()
        got: set[str] = set()
        while len(got) < n:  # at least once: a message may come twice
            got.add(sub.get(timeout=60).payload.decode())
        assert got == {str(i) for i in range(n)}
    finally:
        if sub is not None:
            sub.close()
        broker.stop()
        mosq.stop()
