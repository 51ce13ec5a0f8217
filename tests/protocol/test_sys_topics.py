"""$SYS topics with EMQX 5.8.1's names and payloads (apps/emqx/src/emqx_sys.erl):
- `$SYS/brokers` (retained): running node names joined by ","
- `$SYS/brokers/<node>/version`, `/sysdescr` (retained), every sys_msg_interval
- `$SYS/brokers/<node>/uptime` (milliseconds as an integer string) and `/datetime` (RFC 3339),
  every sys_heartbeat_interval
- `$SYS/brokers/<node>/stats/<name with . -> />` and `/metrics/<name>`: integer strings
- `$SYS/brokers/<node>/clients/<clientid>/connected|disconnected`: JSON (sys_event_messages)
"""
import json
import re

import pytest

from support.mqttclient import props, uid

pytestmark = pytest.mark.emqpy_only

FAST = {"sys_topics": {"sys_msg_interval": "1s", "sys_heartbeat_interval": "1s"}}


@pytest.fixture
def fast(make_broker):
    return make_broker(FAST)


def _first(c, topic, qos=0):
    c.subscribe(topic, qos)
    return c.get()


def test_brokers_and_version_retained(fast, mqtt):
    node = fast.broker.node_name
    c = mqtt(fast)
    m = _first(c, "$SYS/brokers")
    assert m.payload.decode() == node
    c2 = mqtt(fast)
    v = _first(c2, f"$SYS/brokers/{node}/version")
    assert v.payload.decode() == fast.broker.emqx_version
    late = mqtt(fast)  # retained: a later subscriber gets it at once
    assert _first(late, f"$SYS/brokers/{node}/version").retain
    d = _first(mqtt(fast), f"$SYS/brokers/{node}/sysdescr")
    assert d.payload and d.retain


def _collect_topics(c, wanted: set[str]) -> dict[str, bytes]:
    got: dict[str, bytes] = {}
    while not wanted <= got.keys():
        m = c.get()
        got[m.topic] = m.payload
    return got


def test_heartbeat_uptime_and_datetime(fast, mqtt):
    pre = f"$SYS/brokers/{fast.broker.node_name}/"
    c = mqtt(fast)
    c.subscribe(pre + "+", 0)
    got = _collect_topics(c, {pre + "uptime", pre + "datetime"})
    assert re.fullmatch(rb"\d+", got[pre + "uptime"])
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
                        got[pre + "datetime"])


def test_stats_and_metrics_topics(fast, mqtt):
    pre = f"$SYS/brokers/{fast.broker.node_name}/"
    c = mqtt(fast)
    c.subscribe(pre + "stats/#", 0)
    c.subscribe(pre + "metrics/#", 0)
    names = ["stats/connections/count", "stats/subscriptions/count",
             "metrics/messages/received", "metrics/packets/received"]
    got = _collect_topics(c, {pre + n for n in names})
    assert int(got[pre + "stats/connections/count"]) >= 1
    assert int(got[pre + "stats/subscriptions/count"]) >= 1
    assert int(got[pre + "metrics/messages/received"]) >= 0
    assert int(got[pre + "metrics/packets/received"]) >= 1
    assert all(re.fullmatch(rb"\d+", v) for k, v in got.items()), got


def test_client_connected_and_disconnected_events(broker, mqtt):
    node = broker.broker.node_name
    cid = uid("ev")
    w = mqtt(broker)
    w.subscribe(f"$SYS/brokers/{node}/clients/{cid}/+", 0)
    c = mqtt(broker, cid, keepalive=30, username="ev-user",
              properties=props("CONNECT", SessionExpiryInterval=0))
    m = w.get()
    assert m.topic == f"$SYS/brokers/{node}/clients/{cid}/connected"
    p = json.loads(m.payload)
    assert p["clientid"] == cid and p["username"] == "ev-user"
    assert p["ipaddress"] == "127.0.0.1" and p["sockport"] == broker.port
    assert p["protocol"] == "mqtt" and p["proto_name"] == "MQTT" and p["proto_ver"] == 5
    assert p["keepalive"] == 30 and p["clean_start"] is True and p["expiry_interval"] == 0
    assert isinstance(p["connected_at"], int) and isinstance(p["ts"], int)
    c.disconnect()
    m = w.get()
    assert m.topic == f"$SYS/brokers/{node}/clients/{cid}/disconnected"
    d = json.loads(m.payload)
    assert d["clientid"] == cid and d["reason"] == "normal"
    assert isinstance(d["disconnected_at"], int) and d["disconnected_at"] >= p["connected_at"]


def test_v3_persistent_session_default_expiry_in_event(broker, mqtt):
    # EMQX conninfo expiry_interval is in milliseconds; v3 clean_session=false uses
    # mqtt.session_expiry_interval (default 2h).
    node = broker.broker.node_name
    cid = uid("ev3")
    w = mqtt(broker)
    w.subscribe(f"$SYS/brokers/{node}/clients/{cid}/connected", 0)
    c = mqtt(broker, cid, version=4, clean=False)
    p = json.loads(w.get().payload)
    assert p["proto_ver"] == 4 and p["clean_start"] is False
    assert p["expiry_interval"] == 2 * 3600 * 1000
    c.disconnect()
    mqtt(broker, cid, version=4, clean=True)


def test_leading_wildcard_does_not_see_sys(fast, mqtt):
    c = mqtt(fast)
    c.subscribe("#", 0)
    c.subscribe("+/brokers", 0)
    marker = uid("marker")
    # the 1 s heartbeat has fired by the time a fresh $SYS subscriber sees uptime
    probe = mqtt(fast)
    _first(probe, f"$SYS/brokers/{fast.broker.node_name}/uptime")
    mqtt(fast).publish(marker, b"x", qos=1)
    while (m := c.get()).topic != marker:
        assert not m.topic.startswith("$SYS"), m.topic
