"""Alarms raised by the broker itself, listed by /alarms and published on $SYS."""
from __future__ import annotations

import json

from emqpy.config import update_root
from support.mqttclient import uid
from support.rawmqtt import connack_bytes
from support.waiting import wait_until


def _alarms(c, activated: bool | None = True):
    params = {} if activated is None else {"activated": str(activated).lower()}
    r = c.get("/alarms", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_max_connections_alarm_activates_and_clears(make_broker):
    h = make_broker({"listeners": {"tcp": {"default": {"max_connections": 2}}},
                     "sysmon": {"vm": {"process_check_interval": "1s"}}})
    name = "too_many_connections/tcp:default"
    watcher = h.mqtt(uid("watch"))
    watcher.subscribe("$SYS/brokers/+/alarms/#", 1)
    c = h.api
    assert all(a["name"] != name for a in _alarms(c)["data"])
    second = h.mqtt(uid("second"))  # the listener is now full
    found = wait_until(lambda: [a for a in _alarms(c)["data"] if a["name"] == name],
                       what="the alarm")
    a = found[0]
    assert a["node"] == h.broker.node_name
    assert a["details"] == {"listener": "tcp:default", "current_connections": 2,
                            "max_connections": 2}
    assert "max_connections" in a["message"] and "deactivate_at" not in a
    assert isinstance(a["duration"], int) and "T" in a["activate_at"]
    assert [x["name"] for x in _alarms(c, None)["data"]] == [name]  # default: activated
    m = watcher.get()
    assert m.topic == f"$SYS/brokers/{h.broker.node_name}/alarms/activate"
    assert m.properties.ContentType == "application/json"
    ev = json.loads(m.payload)
    assert ev["name"] == name and ev["activated"] is True
    assert ev["deactivate_at"] == "infinity" and isinstance(ev["activate_at"], int)

    # the condition is real: one more connection is closed without a CONNACK
    assert connack_bytes(h.host, h.port, uid("third")) == b""

    second.close()
    wait_until(lambda: not [a for a in _alarms(c)["data"] if a["name"] == name],
               what="the alarm to clear")
    hist = [a for a in _alarms(c, False)["data"] if a["name"] == name]
    assert len(hist) == 1 and "deactivate_at" in hist[0]
    m = watcher.get()
    assert m.topic.endswith("/alarms/deactivate")
    ev = json.loads(m.payload)
    assert ev["activated"] is False and isinstance(ev["deactivate_at"], int)
    assert ev["details"]["current_connections"] == 1

    assert c.delete("/alarms").status_code == 204
    assert _alarms(c, False)["data"] == []
    watcher.close()


def test_system_memory_alarm_follows_watermark(make_broker):
    h = make_broker({"sysmon": {"os": {"mem_check_interval": "1s",
                                       "sysmem_high_watermark": "1%"}}})
    name = "high_system_memory_usage"
    c = h.api
    a = wait_until(lambda: [a for a in _alarms(c)["data"] if a["name"] == name],
                   what="the memory alarm")[0]
    assert a["details"]["high_watermark"] == 1.0
    assert a["details"]["usage"] > 1 and a["message"].endswith("% mem usage")

    def raise_watermark():
        b = h.broker
        b.config = update_root(b.config, "sysmon", {"os": {"sysmem_high_watermark": "100%"}})
    h.call(raise_watermark)
    wait_until(lambda: not [a for a in _alarms(c)["data"] if a["name"] == name],
               what="the memory alarm to clear")
    assert [a["name"] for a in _alarms(c, False)["data"]] == [name]


def test_process_memory_alarm(make_broker):
    h = make_broker({"sysmon": {"os": {"mem_check_interval": "1s",
                                       "procmem_high_watermark": "0%"}}})
    c = h.api
    a = wait_until(lambda: [a for a in _alarms(c)["data"]
                            if a["name"] == "high_process_memory_usage"],
                       what="the alarm")[0]
    assert a["message"] == "Process memory usage is higher than 0%"
    assert a["details"]["high_watermark"] == 0


def test_alarm_api_validation(make_broker):
    h = make_broker()
    c = h.api
    assert c.get("/alarms", params={"activated": "maybe"}).status_code == 400
    assert c.get("/alarms", params={"page": 0}).status_code == 400
    r = c.get("/alarms", params={"activated": "false", "limit": 5})
    assert r.json()["meta"] == {"page": 1, "limit": 5, "count": 0, "hasnext": False}


def test_history_size_limit(make_broker):
    h = make_broker({"alarm": {"size_limit": 2}})

    def cycle():
        for i in range(4):
            h.broker.alarms.activate(f"test_alarm_{i}", {"i": i}, f"alarm {i}")
            h.broker.alarms.deactivate(f"test_alarm_{i}")
    h.call(cycle)
    c = h.api
    names = [a["name"] for a in _alarms(c, False)["data"]]
    assert names == ["test_alarm_2", "test_alarm_3"]


def test_alarms_survive_restart_as_history(make_broker, tmp_path):
    bt = make_broker(data_dir=tmp_path)
    try:
        def raise_two():
            bt.broker.alarms.activate("old_alarm", {"n": 1}, "an old alarm")
            bt.broker.alarms.deactivate("old_alarm")
            bt.broker.alarms.activate("left_active", {"n": 2}, "still on at shutdown")
        bt.call(raise_two)
    finally:
        bt.stop()
    bt.start()
    try:
        c = bt.api
        assert _alarms(c)["data"] == []
        hist = {a["name"]: a for a in _alarms(c, False)["data"]}
        assert set(hist) == {"old_alarm", "left_active"}
        assert hist["old_alarm"]["details"] == {"n": 1}
        assert hist["left_active"]["message"] == "still on at shutdown"
        assert "deactivate_at" in hist["left_active"]
        assert c.delete("/alarms").status_code == 204
    finally:
        bt.stop()
    bt.start()
    try:
        c = bt.api
        assert _alarms(c, False)["data"] == []
    finally:
        bt.stop()
