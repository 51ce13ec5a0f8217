"""`bridge_mode` of the MQTT connector on the wire: the bridge bit (0x80) of the CONNECT
protocol level for MQTT 3.1/3.1.1, none for MQTT 5; emqpy's broker takes such a CONNECT as
EMQX does and shows `is_bridge`; Mosquitto accepts it."""
from __future__ import annotations

import pytest

from support.mqttclient import uid
from support.waiting import wait_until


def bridge_connector(api, server: str, proto_ver: str, bridge_mode: bool) -> str:
    name = uid("bm")
    api.ok("POST", "/connectors", 201, json={
        "type": "mqtt", "name": name, "server": server, "proto_ver": proto_ver,
        "bridge_mode": bridge_mode, "pool_size": 1,
        "resource_opts": {"health_check_interval": "200ms"}})
    wait_until(lambda: api.get(f"/connectors/mqtt:{name}")["status"] == "connected",
               what="the connector to connect")
    return name


@pytest.mark.parametrize("proto_ver,bridge_mode,is_bridge,level", [
    ("v4", True, True, 4), ("v3", True, True, 3), ("v4", False, False, 4),
    ("v5", True, False, 5),  # MQTT 5 has no bridge bit
])
def test_is_bridge_reaches_the_remote_broker(api, proto_ver, bridge_mode, is_bridge, level):
    """The connector connects to this very broker: its client info says what came."""
    name = bridge_connector(api, f"127.0.0.1:{api.port}", proto_ver, bridge_mode)
    try:
        clients = wait_until(lambda: api.get(f"/clients?like_clientid={name}")["data"],
                             what="the connector's client")
        c = clients[0]
        assert (c["is_bridge"], c["proto_ver"]) == (is_bridge, level)
        assert c["proto_name"] == ("MQIsdp" if level == 3 else "MQTT")
    finally:
        api.ok("DELETE", f"/connectors/mqtt:{name}", 204)


def test_mosquitto_accepts_a_bridge(api, mosquitto):
    name = bridge_connector(api, f"127.0.0.1:{mosquitto.port}", "v4", True)
    api.ok("DELETE", f"/connectors/mqtt:{name}", 204)
