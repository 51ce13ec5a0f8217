"""/telemetry: disabled and impossible to enable (emqpy sends nothing); the data shows what
EMQX's telemetry would report, following the node's state."""
from __future__ import annotations

from support.mqttclient import uid
from support.node import assert_error


def test_status_is_disabled_and_stays_so(make_broker):
    n = make_broker()
    assert n.get("/telemetry/status") == {"enable": False}
    assert_error(n.api.put("/telemetry/status", json={"enable": False}), 400, "BAD_REQUEST",
                 "Telemetry status is already disabled")
    assert_error(n.api.put("/telemetry/status", json={"enable": True}), 400, "BAD_REQUEST",
                 "cannot be enabled")
    assert_error(n.api.put("/telemetry/status", json={}), 400, "BAD_REQUEST")  # default true
    assert_error(n.api.put("/telemetry/status", json={"enable": "maybe"}), 400, "BAD_REQUEST")
    assert n.get("/telemetry/status") == {"enable": False}


def test_data_shows_what_would_be_reported(make_broker):
    n = make_broker()
    n.ok("POST", "/authentication", json={"mechanism": "password_based",
                                          "backend": "built_in_database"})
    n.ok("POST", "/authorization/sources", 204, json={"type": "built_in_database"})
    n.ok("POST", "/rules", 201, json={"id": "r1", "sql": 'SELECT * FROM "t"',
                                       "actions": [{"function": "console"}]})
    first = n.get("/telemetry/data")
    assert first["emqx_version"] == "5.8.1" and first["license"] == {"edition": "opensource"}
    assert first["authn_authz"] == {"authn": ["password_based:built_in_database"],
                                    "authn_listener": [], "authz": ["built_in_database"]}
    assert first["rule_engine"] == {"num_rules": 1}
    assert first["bridge"] == {"num_data_bridges": 0, "data_bridge": {}}
    assert len(first["uuid"]) == 36 and first["nodes_uuid"] == []
    assert first["up_time"] >= 0 and first["vm_specs"]["num_cpus"] >= 1
    assert first["os_name"]
    n.ok("POST", "/authentication/password_based:built_in_database/users", 201,
         json={"user_id": "u", "password": "p"})
    c = n.mqtt(uid("t"), username="u", password="p")
    c.publish("t/retained", b"x", qos=1, retain=True)
    data = n.get("/telemetry/data")
    assert data["num_clients"] == 1 and data["messages_received"] >= 1
    assert data["advanced_mqtt_features"]["retained"] == \
        first["advanced_mqtt_features"]["retained"] + 1  # (besides the $SYS ones)
    assert data["mqtt_runtime_insights"]["messages_received_rate"] > 0
    assert data["uuid"] == first["uuid"] and data["cluster_uuid"] == first["cluster_uuid"]
    n.restart()
    assert n.get("/telemetry/data")["uuid"] == first["uuid"]  # kept in the data dir
