"""Configs API against a real broker: GET forms, validated PUTs applied at once and kept in
data_dir/configs/cluster.hocon across a restart, secrets masked, resets."""
from __future__ import annotations

import socket

import httpx
import pytest

from emqpy.config.loader import parse_hocon_string
from support.mqttclient import MqttClient
from support.servers import free_port

pytestmark = pytest.mark.emqpy_only


def _connack_max_packet(port: int) -> int:
    c = MqttClient("127.0.0.1", port).connect()
    try:
        return c.connack_props.MaximumPacketSize
    finally:
        c.disconnect()


def test_max_packet_size_applies_now_and_after_restart(make_broker, tmp_path):
    n = make_broker(data_dir=tmp_path)
    try:
        assert _connack_max_packet(n.port) == 1024 * 1024
        r = n.api.put("/configs/global_zone", json={"mqtt": {"max_packet_size": "64KB"}})
        assert r.status_code == 200, r.text
        assert r.json()["mqtt"]["max_packet_size"] == "64KB"
        assert list(r.json()) == ["mqtt"]
        assert _connack_max_packet(n.port) == 64 * 1024
        assert n.api.get("/configs/global_zone").json()["mqtt"]["max_packet_size"] == "64KB"
    finally:
        n.stop()
    saved = parse_hocon_string((tmp_path / "configs" / "cluster.hocon").read_text())
    assert saved["mqtt"]["max_packet_size"] == "64KB"
    n.start()
    try:
        assert _connack_max_packet(n.port) == 64 * 1024
    finally:
        n.stop()


def test_bad_values_are_refused_naming_the_key(env):
    r = env.api.put("/configs/global_zone", json={"mqtt": {"max_packet_size": "lots"}})
    assert (r.status_code, r.json()["code"]) == (400, "BAD_REQUEST")
    assert "mqtt.max_packet_size" in r.json()["message"]
    r = env.api.put("/configs/global_zone", json={"mqtt": {"max_inflight": 0}})
    assert r.status_code == 400 and "mqtt.max_inflight" in r.json()["message"]
    r = env.api.put("/configs/global_zone", json={"mqtt": {"no_such_key": 1}})
    assert r.status_code == 400 and "mqtt.no_such_key" in r.json()["message"]
    r = env.api.put("/configs/global_zone", json={"durable_storage": {}})
    assert r.status_code == 400
    r = env.api.put("/configs/sys_topics", json={"sys_msg_interval": "soon"})
    assert r.status_code == 400 and "sys_topics.sys_msg_interval" in r.json()["message"]
    r = env.api.put("/configs/sys_topics", content=b"{not json",
                     headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (400, "BAD_REQUEST")
    # Nothing changed, nothing saved.
    assert env.broker.config.mqtt.max_packet_size == 1024 * 1024
    assert not (env.broker.data_dir / "configs" / "cluster.hocon").exists()


def test_root_endpoints_merge_and_apply(env):
    r = env.api.get("/configs/sys_topics")
    assert r.status_code == 200 and r.json()["sys_msg_interval"] == "1m"
    r = env.api.put("/configs/sys_topics",
                     json={"sys_event_messages": {"client_subscribed": True}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sys_event_messages"]["client_subscribed"] is True
    assert body["sys_event_messages"]["client_connected"] is True  # merged, not replaced
    assert env.broker.config.sys_topics.sys_event_messages.client_subscribed is True
    for root in ("alarm", "broker", "dashboard", "log", "sysmon"):
        assert env.api.get(f"/configs/{root}").status_code == 200
    assert env.api.get("/configs/mqtt").status_code == 404  # EMQX 5.8: global_zone instead


def test_secrets_masked_and_kept(env):
    dash = env.api.get("/configs/dashboard").json()
    assert dash["default_password"] == "******"
    dash["token_expired_time"] = "30m"
    r = env.api.put("/configs/dashboard", json=dash)
    assert r.status_code == 200, r.text
    assert r.json()["default_password"] == "******"
    assert env.broker.config.dashboard.default_password == "public"
    assert env.broker.config.dashboard.token_expired_time == 1800
    text = env.api.get("/configs", params={"key": "dashboard"}).text
    assert "public" not in text and "******" in text


def test_get_configs_text_and_json(env):
    r = env.api.get("/configs", params={"key": "mqtt"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    parsed = parse_hocon_string(r.text)
    assert parsed["mqtt"]["max_inflight"] == 32 and parsed["mqtt"]["idle_timeout"] == "15s"
    everything = parse_hocon_string(env.api.get("/configs").text)
    assert {"mqtt", "listeners", "sysmon", "dashboard"} <= set(everything)
    j = env.api.get("/configs", headers={"accept": "application/json"}).json()
    assert j["sysmon"]["os"]["cpu_high_watermark"] == "80%"
    assert env.api.get("/configs", params={"key": "telemetry"}).status_code == 404
    assert env.api.get("/configs", params={"key": "nonsense"}).status_code == 400
    r = env.api.get("/configs", headers={"accept": "image/png"})
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_ACCEPT")


def test_put_configs_hocon(env):
    hocon = "sysmon { os { cpu_high_watermark = 90% } }\nmqtt { max_inflight = 10 }\n"
    r = env.api.put("/configs", content=hocon, headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    assert env.broker.config.mqtt.max_inflight == 10
    assert env.broker.config.sysmon.os.cpu_high_watermark == 0.9
    assert env.broker.config.sysmon.os.cpu_low_watermark == 0.6  # merge mode keeps the rest

    r = env.api.put("/configs", content='node { name = "x@y" }',
                     headers={"content-type": "text/plain"})
    assert (r.status_code, r.json()["code"]) == (400, "UPDATE_FAILED")
    r = env.api.put("/configs", params={"ignore_readonly": "true"},
                     content='node { name = "x@y" }\nmqtt { max_inflight = 11 }',
                     headers={"content-type": "text/plain"})
    assert r.status_code == 200 and env.broker.config.node.name != "x@y"
    assert env.broker.config.mqtt.max_inflight == 11
    r = env.api.put("/configs", content="mqtt { max_inflight = many }",
                     headers={"content-type": "text/plain"})
    assert r.status_code == 400 and "mqtt.max_inflight" in r.json()["message"]
    r = env.api.put("/configs", content="mqtt {", headers={"content-type": "text/plain"})
    assert r.status_code == 400

    r = env.api.put("/configs", params={"mode": "replace"},
                     content="sysmon { os { cpu_high_watermark = 95% } }",
                     headers={"content-type": "text/plain"})
    assert r.status_code == 200
    assert env.broker.config.sysmon.os.cpu_high_watermark == 0.95
    assert env.broker.config.sysmon.vm.process_check_interval == 30  # defaults, not merged


def test_put_configs_listeners_root_starts_listener(env):
    port = free_port()
    hocon = f'listeners {{ tcp {{ viaconf {{ bind = "127.0.0.1:{port}" }} }} }}'
    r = env.api.put("/configs", content=hocon, headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    MqttClient("127.0.0.1", port).connect().disconnect()


def test_configs_reset(env):
    r = env.api.put("/configs/sysmon", json={"os": {"sysmem_high_watermark": "90%"},
                                              "vm": {"long_schedule": "1s"}})
    assert r.status_code == 200
    r = env.api.post("/configs_reset/sysmon", params={"conf_path": "os.sysmem_high_watermark"})
    assert r.status_code == 200, r.text
    sysmon = env.api.get("/configs/sysmon").json()
    assert sysmon["os"]["sysmem_high_watermark"] == "70%"
    assert sysmon["vm"]["long_schedule"] == "1s"  # only the given path was reset
    assert env.api.post("/configs_reset/sysmon").status_code == 200
    assert env.api.get("/configs/sysmon").json()["vm"]["long_schedule"] == "240ms"
    r = env.api.post("/configs_reset/sysmon", params={"conf_path": "os.nope"})
    assert (r.status_code, r.json()["code"]) == (400, "NO_DEFAULT_VALUE")
    assert env.api.post("/configs_reset/mqtt").status_code == 400  # not resettable in EMQX


def _wait_restarted(env, before: int) -> None:
    """Wait until the dashboard listeners have been restarted (after the PUT's response)."""
    import time
    deadline = time.monotonic() + 30
    while env.broker.api.starts == before:
        assert time.monotonic() < deadline, "the dashboard listeners were not restarted"
        time.sleep(0.02)


def test_dashboard_listener_moves(env):
    new_port = free_port()
    before = env.broker.api.starts
    r = env.api.put("/configs/dashboard",
                     json={"listeners": {"http": {"bind": f"127.0.0.1:{new_port}"}}})
    assert r.status_code == 200, r.text
    _wait_restarted(env, before)
    with pytest.raises(httpx.TransportError):
        env.api.get("/status")
    with httpx.Client(base_url=f"http://127.0.0.1:{new_port}/api/v5",
                      auth=("admin", "public"), timeout=30) as api:
        got = api.get("/configs/dashboard").json()["listeners"]["http"]["bind"]
        assert got == f"127.0.0.1:{new_port}"
        # A port that cannot be bound: the previous settings come back.
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        try:
            before = env.broker.api.starts
            r = api.put("/configs/dashboard", json={"listeners": {"http": {
                "bind": f"127.0.0.1:{busy.getsockname()[1]}"}}})
            assert r.status_code == 200
            _wait_restarted(env, before)
            assert env.broker.config.dashboard.listeners.http.bind.port == new_port
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
             'url = "http://127.0.0.1:1/auth", body { password = "hush" }}]')
    r = node.api.put("/configs", content=authn, headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    assert node.broker.config.authentication[0].backend == "http"
    j = node.api.get("/configs", headers={"accept": "application/json"}).json()
    assert j["authentication"][0]["body"]["password"] == "******" and "hush" not in str(j)
    assert j["authorization"]["no_match"] == "allow" and j["authorization"]["sources"] == []
    assert j["prometheus"]["push_gateway"]["interval"] == "15s"
