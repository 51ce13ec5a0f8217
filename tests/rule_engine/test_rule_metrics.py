"""Rule metrics' rates (emqx_metrics_worker: 10 s samples, max, 5-minute average) and the
event column helpers."""
from __future__ import annotations

from emqpy.rule_engine.events import ntoa, printable_props, prop_name
from emqpy.rates import SAMPLES_5M, SAMPLING
from emqpy.rule_engine.metrics import COUNTERS, RuleMetrics


def test_rates():
    m = RuleMetrics()
    assert set(m.as_dict()) == set(COUNTERS) | {"matched.rate", "matched.rate.max",
                                                "matched.rate.last5m"}
    m.c["matched"] += 100
    m.sample()
    assert m.as_dict()["matched.rate"] == 100 / SAMPLING
    m.c["matched"] += 50
    m.sample()
    d = m.as_dict()
    assert (d["matched.rate"], d["matched.rate.max"], d["matched.rate.last5m"]) == \
        (5.0, 10.0, 7.5)
    for _ in range(SAMPLES_5M):  # five idle minutes push the busy samples out
        m.sample()
    d = m.as_dict()
    assert (d["matched.rate"], d["matched.rate.max"], d["matched.rate.last5m"]) == \
        (0.0, 10.0, 0.0)
    m.c["matched"] += 1
    m.sample()
    assert m.as_dict()["matched.rate"] == 0.1
    m.reset()
    assert m.as_dict()["matched"] == 0 and m.as_dict()["matched.rate.max"] == 0.0


def test_property_names_and_addresses():
    assert prop_name("message_expiry_interval") == "Message-Expiry-Interval"
    assert prop_name("maximum_qos") == "Maximum-QoS"
    assert printable_props(None) == {"User-Property": {}}
    assert printable_props({"user_property": [("a", "1"), ("a", "2")], "content_type": "x",
                            "correlation_data": b"\x01"}) == {
        "User-Property": {"a": "2"},
        "User-Property-Pairs": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}],
        "Content-Type": "x", "Correlation-Data": "\x01"}
    assert ntoa("::ffff:10.0.0.1", 1883) == "10.0.0.1:1883"
    assert ntoa("::1", 5) == "::1:5" and ntoa(None) is None
