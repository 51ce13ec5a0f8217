"""Configs API against a real broker: GET forms, validated PUTs applied at once and kept in
data_dir/configs/cluster.hocon across a restart, secrets masked, resets."""
from __future__ import annotations

import socket

import httpx
import pytest

from conftest import free_port
from emqpy.config.loader import parse_hocon_string
from emqpy.testing import BrokerThread
from protocol.mqttclient import MqttClient

pytestmark = pytest.mark.emqpy_only


class Node:
    def __init__(self, data_dir):
        self.data_dir = str(data_dir)
        self.bt = None

    def start(self) -> "Node":
        self.bt = BrokerThread({}, data_dir=self.data_dir).start()
        self.broker = self.bt.broker
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.bt.http_port}/api/v5",
                                auth=("admin", "public"), timeout=30)
        return self

    def stop(self) -> None:
        if self.bt is not None:
            self.api.close()
            self.bt.stop()
            self.bt = None

    @property
    def mqtt_port(self) -> int:
        return self.bt.port


@pytest.fixture
def node(tmp_path):
    n = Node(tmp_path).start()
    yield n
    n.stop()


def _connack_max_packet(port: int) -> int:
    c = MqttClient("127.0.0.1", port).connect()
    try:
        return c.connack_props.MaximumPacketSize
    finally:
        c.disconnect()


def test_max_packet_size_applies_now_and_after_restart(tmp_path):
    n = Node(tmp_path).start()
    try:
        assert _connack_max_packet(n.mqtt_port) == 1024 * 1024
        r = n.api.put("/configs/global_zone", json={"mqtt": {"max_packet_size": "64KB"}})
        assert r.status_code == 200, r.text
        assert r.json()["mqtt"]["max_packet_size"] == "64KB"
        assert list(r.json()) == ["mqtt"]
        assert _connack_max_packet(n.mqtt_port) == 64 * 1024
        assert n.api.get("/configs/global_zone").json()["mqtt"]["max_packet_size"] == "64KB"
    finally:
        n.stop()
    saved = parse_hocon_string((tmp_path / "configs" / "cluster.hocon").read_text())
    assert saved["mqtt"]["max_packet_size"] == "64KB"
    n.start()
    try:
        assert _connack_max_packet(n.mqtt_port) == 64 * 1024
    finally:
        n.stop()


def test_bad_values_are_refused_naming_the_key(node):
    r = node.api.put("/configs/global_zone", json={"mqtt": {"max_packet_size": "lots"}})
    assert (r.status_code, r.json()["code"]) == (400, "BAD_REQUEST")
    assert "mqtt.max_packet_size" in r.json()["message"]
    r = node.api.put("/configs/global_zone", json={"mqtt": {"max_inflight": 0}})
    assert r.status_code == 400 and "mqtt.max_inflight" in r.json()["message"]
    r = node.api.put("/configs/global_zone", json={"mqtt": {"no_such_key": 1}})
    assert r.status_code == 400 and "mqtt.no_such_key" in r.json()["message"]
    r = node.api.put("/configs/global_zone", json={"durable_storage": {}})
    assert r.status_code == 400
    r = node.api.put("/configs/sys_topics", json={"sys_msg_interval": "soon"})
    assert r.status_code == 400 and "sys_topics.sys_msg_interval" in r.json()["message"]
    r = node.api.put("/configs/sys_topics", content=b"{not json",
                     headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (400, "BAD_REQUEST")
    # Nothing changed, nothing saved.
    assert node.broker.config.mqtt.max_packet_size == 1024 * 1024
    assert not (node.broker.data_dir / "configs" / "cluster.hocon").exists()


def test_root_endpoints_merge_and_apply(node):
    r = node.api.get("/configs/sys_topics")
    assert r.status_code == 200 and r.json()["sys_msg_interval"] == "1m"
    r = node.api.put("/configs/sys_topics",
                     json={"sys_event_messages": {"client_subscribed": True}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sys_event_messages"]["client_subscribed"] is True
    assert body["sys_event_messages"]["client_connected"] is True  # merged, not replaced
    assert node.broker.config.sys_topics.sys_event_messages.client_subscribed is True
    for root in ("alarm", "broker", "dashboard", "log", "sysmon"):
        assert node.api.get(f"/configs/{root}").status_code == 200
    assert node.api.get("/configs/mqtt").status_code == 404  # EMQX 5.8: global_zone instead


def test_secrets_masked_and_kept(node):
    dash = node.api.get("/configs/dashboard").json()
    assert dash["default_password"] == "******"
    dash["token_expired_time"] = "30m"
    r = node.api.put("/configs/dashboard", json=dash)
    assert r.status_code == 200, r.text
    assert r.json()["default_password"] == "******"
    assert node.broker.config.dashboard.default_password == "public"
    assert node.broker.config.dashboard.token_expired_time == 1800
    text = node.api.get("/configs", params={"key": "dashboard"}).text
    assert "public" not in text and "******" in text


def test_get_configs_text_and_json(node):
    r = node.api.get("/configs", params={"key": "mqtt"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    parsed = parse_hocon_string(r.text)
    assert parsed["mqtt"]["max_inflight"] == 32 and parsed["mqtt"]["idle_timeout"] == "15s"
    everything = parse_hocon_string(node.api.get("/configs").text)
    assert {"mqtt", "listeners", "sysmon", "dashboard"} <= set(everything)
    j = node.api.get("/configs", headers={"accept": "application/json"}).json()
    assert j["sysmon"]["os"]["cpu_high_watermark"] == "80%"
    assert node.api.get("/configs", params={"key": "telemetry"}).status_code == 404
    assert node.api.get("/configs", params={"key": "nonsense"}).status_code == 400
    r = node.api.get("/configs", headers={"accept": "image/png"})
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_ACCEPT")


def test_put_configs_hocon(node):
    hocon = "sysmon { os { cpu_high_watermark = 90% } }\nmqtt { max_inflight = 10 }\n"
    r = node.api.put("/configs", content=hocon, headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    assert node.broker.config.mqtt.max_inflight == 10
    assert node.broker.config.sysmon.os.cpu_high_watermark == 0.9
    assert node.broker.config.sysmon.os.cpu_low_watermark == 0.6  # merge mode keeps the rest

    r = node.api.put("/configs", content='node { name = "x@y" }',
                     headers={"content-type": "text/plain"})
    assert (r.status_code, r.json()["code"]) == (400, "UPDATE_FAILED")
    r = node.api.put("/configs", params={"ignore_readonly": "true"},
                     content='node { name = "x@y" }\nmqtt { max_inflight = 11 }',
                     headers={"content-type": "text/plain"})
    assert r.status_code == 200 and node.broker.config.node.name != "x@y"
    assert node.broker.config.mqtt.max_inflight == 11
    r = node.api.put("/configs", content="mqtt { max_inflight = many }",
                     headers={"content-type": "text/plain"})
    assert r.status_code == 400 and "mqtt.max_inflight" in r.json()["message"]
    r = node.api.put("/configs", content="mqtt {", headers={"content-type": "text/plain"})
    assert r.status_code == 400

    r = node.api.put("/configs", params={"mode": "replace"},
                     content="sysmon { os { cpu_high_watermark = 95% } }",
                     headers={"content-type": "text/plain"})
    assert r.status_code == 200
    assert node.broker.config.sysmon.os.cpu_high_watermark == 0.95
    assert node.broker.config.sysmon.vm.process_check_interval == 30  # defaults, not merged


def test_put_configs_listeners_root_starts_listener(node):
    port = free_port()
    hocon = f'listeners {{ tcp {{ viaconf {{ bind = "127.0.0.1:{port}" }} }} }}'
    r = node.api.put("/configs", content=hocon, headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    MqttClient("127.0.0.1", port).connect().disconnect()


def test_configs_reset(node):
    r = node.api.put("/configs/sysmon", json={"os": {"sysmem_high_watermark": "90%"},
                                              "vm": {"long_schedule": "1s"}})
    assert r.status_code == 200
    r = node.api.post("/configs_reset/sysmon", params={"conf_path": "os.sysmem_high_watermark"})
    assert r.status_code == 200, r.text
    sysmon = node.api.get("/configs/sysmon").json()
    assert sysmon["os"]["sysmem_high_watermark"] == "70%"
    assert sysmon["vm"]["long_schedule"] == "1s"  # only the given path was reset
    assert node.api.post("/configs_reset/sysmon").status_code == 200
    assert node.api.get("/configs/sysmon").json()["vm"]["long_schedule"] == "240ms"
    r = node.api.post("/configs_reset/sysmon", params={"conf_path": "os.nope"})
    assert (r.status_code, r.json()["code"]) == (400, "NO_DEFAULT_VALUE")
    assert node.api.post("/configs_reset/mqtt").status_code == 400  # not resettable in EMQX


def _wait_restarted(node, before) -> None:
    """Wait until the dashboard listeners have been restarted (after the PUT's response)."""
    import time
    deadline = time.monotonic() + 30
    while node.broker.api is before or node.broker.api is None:
        assert time.monotonic() < deadline, "the dashboard listeners were not restarted"
        time.sleep(0.02)


def test_dashboard_listener_moves(node):
    new_port = free_port()
    before = node.broker.api
    r = node.api.put("/configs/dashboard",
                     json={"listeners": {"http": {"bind": f"127.0.0.1:{new_port}"}}})
    assert r.status_code == 200, r.text
    _wait_restarted(node, before)
    with pytest.raises(httpx.TransportError):
        node.api.get("/status")
    with httpx.Client(base_url=f"http://127.0.0.1:{new_port}/api/v5",
                      auth=("admin", "public"), timeout=30) as api:
        got = api.get("/configs/dashboard").json()["listeners"]["http"]["bind"]
        assert got == f"127.0.0.1:{new_port}"
        # A port that cannot be bound: the previous settings come back.
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        try:
            before = node.broker.api
            r = api.put("/configs/dashboard", json={"listeners": {"http": {
                "bind": f"127.0.0.1:{busy.getsockname()[1]}"}}})
            assert r.status_code == 200
            _wait_restarted(node, before)
            assert node.broker.config.dashboard.listeners.http.bind.port == new_port
            assert api.get("/configs/dashboard").json()["listeners"]["http"]["bind"] == \
                f"127.0.0.1:{new_port}"
        finally:
            busy.close()


def test_feature_roots_are_validated_and_secrets_masked(node):
    """authorization, authentication and prometheus are typed roots: a PUT is checked (400
    naming the key), GET shows EMQX's defaults, and an authenticator's secret is masked."""
    r = node.api.put("/configs", content="authorization { cache { max_size = 0 } }",
                     headers={"content-type": "text/plain"})
    assert r.status_code == 400 and "authorization.cache.max_size" in r.json()["message"], r.text
    r = node.api.put("/configs", content="prometheus { push_gateway { interval = soon } }",
                     headers={"content-type": "text/plain"})
    assert r.status_code == 400 and "prometheus.push_gateway.interval" in r.json()["message"]
    authn = ('authentication = [{mechanism = password_based, backend = http, '
             'url = "http://127.0.0.1:1/auth", body { password = "hush" }, password = "hush"}]')
    r = node.api.put("/configs", content=authn, headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    assert node.broker.config.authentication[0].backend == "http"
    j = node.api.get("/configs", headers={"accept": "application/json"}).json()
    assert j["authentication"][0]["password"] == "******" and "hush" not in str(j)
    assert j["authorization"]["no_match"] == "allow" and j["authorization"]["sources"] == []
    assert j["prometheus"]["push_gateway"]["interval"] == "15s"
