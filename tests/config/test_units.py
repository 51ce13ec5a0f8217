"""EMQX value syntaxes: durations, byte sizes, percentages, binds."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emqpy.config import format_bytesize, format_duration, parse_bind, parse_bytesize, parse_duration
from emqpy.config import ConfigError, validate_config
from emqpy.config.units import format_bind, format_percent, parse_percent, parse_rate


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("15s", 15.0),
        ("2h", 7200.0),
        ("500ms", 0.5),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("2.5m", 150.0),
        ("1W2D", 9 * 86400.0),
        ("1f", 14 * 86400.0),
        ("0s", 0.0),
        ("7200S", 7200.0),
        ("1M", 60.0),  # EMQX: m and M are both minutes
        (" 30s ", 30.0),
        ("1.0006s", 1.001),  # rounded to whole milliseconds
        (".5s", 0.5),
    ],
)
def test_duration_text(text, seconds):
    assert parse_duration(text) == seconds


def test_duration_bare_integers_follow_the_field_unit():
    # EMQX `duration`: integers are milliseconds; `duration_s`: seconds.
    assert parse_duration(1500) == 1.5
    assert parse_duration("1500") == 1.5
    assert parse_duration(30, "s") == 30.0
    assert parse_duration("30", "s") == 30.0


def test_duration_s_rounds_up_to_whole_seconds():
    assert parse_duration("1200ms", "s") == 2.0
    assert parse_duration("1s", "s") == 1.0


def test_duration_infinity():
    assert parse_duration("infinity") == math.inf
    with pytest.raises(ValueError):
        parse_duration("infinity", allow_infinity=False)


@pytest.mark.parametrize("bad", ["", "abc", "15x", "1y", "100ns", "-5s", "s", "1h 30m", "15 s", True, None, 1.5, [1]])
def test_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    "seconds, text",
    [(15, "15s"), (7200, "2h"), (0.5, "500ms"), (5400, "1h30m"), (0, "0s"), (86400 + 1.25, "1d1s250ms"), (math.inf, "infinity")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=10**12))
def test_duration_round_trip_ms(ms):
    secs = ms / 1000
    text = format_duration(secs)
    assert parse_duration(text) == secs
    # canonical: formatting the parsed value again gives the same text
    assert format_duration(parse_duration(text)) == text


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["w", "d", "h", "m", "s", "ms"])), min_size=1, max_size=5))
def test_duration_segments_sum(segments):
    units = {"w": 604800_000, "d": 86400_000, "h": 3600_000, "m": 60_000, "s": 1000, "ms": 1}
    text = "".join(f"{n}{u}" for n, u in segments)
    assert parse_duration(text) == sum(n * units[u] for n, u in segments) / 1000


@pytest.mark.parametrize(
    "text, n",
    [("1MB", 1048576), ("64KB", 65536), ("1024", 1024), ("2GB", 2 * 1024**3), ("10B", 10), ("640kb", 655360), (4096, 4096), ("0", 0)],
)
def test_bytesize(text, n):
    assert parse_bytesize(text) == n


@pytest.mark.parametrize("bad", ["abc", "1TB", "1.5MB", "-1", "MB", "", True, None, 2.5])
def test_bytesize_rejects(bad):
    with pytest.raises(ValueError):
        parse_bytesize(bad)


@pytest.mark.parametrize("n, text", [(1048576, "1MB"), (65536, "64KB"), (1536, "1536B"), (0, "0B"), (3 * 1024**3, "3GB")])
def test_format_bytesize(n, text):
    assert format_bytesize(n) == text


@given(st.integers(min_value=0, max_value=2**50))
def test_bytesize_round_trip(n):
    text = format_bytesize(n)
    assert parse_bytesize(text) == n
    assert format_bytesize(parse_bytesize(text)) == text


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0.0.0.0:1883", ("0.0.0.0", 1883)),
        ("1883", ("0.0.0.0", 1883)),
        (1883, ("0.0.0.0", 1883)),
        ("[::]:1883", ("::", 1883)),
        ("::1:1883", ("::1", 1883)),
        (":1883", ("0.0.0.0", 1883)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        (" 127.0.0.1 : 80 ", ("127.0.0.1", 80)),
    ],
)
def test_parse_bind(value, expected):
    assert parse_bind(value) == expected


@pytest.mark.parametrize("bad", ["localhost:1883", "1.2.3.4:70000", "1.2.3.4:", "1.2.3.4:x", "[::1:1883", -1, 65536, True, None, "abc"])
def test_parse_bind_rejects(bad):
    with pytest.raises(ValueError):
        parse_bind(bad)


@given(st.ip_addresses(), st.integers(0, 65535))
def test_bind_round_trip(ip, port):
    assert parse_bind(format_bind(str(ip), port)) == (str(ip), port)


def test_percent():
    assert parse_percent("80%") == 0.8
    assert parse_percent("12.5%") == 0.125
    assert format_percent(0.8) == "80%"
    assert format_percent(0.125) == "12.5%"
    for bad in ("80", "101%", "x%", 0.8):
        with pytest.raises(ValueError):
            parse_percent(bad)


@pytest.mark.parametrize("text, expected", [
    ("infinity", None),
    ("1000/s", (1000.0, 1000.0)),
    ("10/10s", (1.0, 10.0)),
    ("60/m", (1.0, 60.0)),
    ("5/100ms", (50.0, 5.0)),
    (" 2.5 / h ", (2.5 / 3600, 2.5)),
    ("10", (10.0, 10.0)),  # EMQX's limiter: no period is per second
    ("1MB/s", (1048576.0, 1048576.0)),  # a byte unit on the count (bytes_rate)
    ("500kb/10s", (51200.0, 512000.0)),
])
def test_rate(text, expected):
    assert parse_rate(text) == expected


@pytest.mark.parametrize("bad", ["fast", "", "0/s", "10/0s", "10m", "1MB/", "10/x", 10, None, "-1/s"])
def test_rate_rejects(bad):
    with pytest.raises(ValueError):
        parse_rate(bad)


def test_rate_keys_are_checked_at_load():
    """A bad rate stops loading with the key named, like any other value."""
    with pytest.raises(ConfigError, match=r"^retainer\.delivery_rate: invalid rate 'fast'"):
        validate_config({"retainer": {"delivery_rate": "fast"}})
    with pytest.raises(ConfigError, match=r"^listeners\.tcp\.default\.max_conn_rate: invalid rate"):
        validate_config({"listeners": {"tcp": {"default": {"max_conn_rate": "1/fortnight"}}}})
    cfg = validate_config({"retainer": {"delivery_rate": "10/10s"}})
    assert cfg.dump("retainer")["delivery_rate"] == "10/10s"  # kept as written
