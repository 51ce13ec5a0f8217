"""Date and time functions: port of emqx_rule_funcs_SUITE's t_now_rfc3339 ..
t_parse_date_errors (with the format_date property run by hypothesis)."""
import re
import time
from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from emqpy.rule_engine.funcs import SQLFunctionError

from .funcs_helpers import call

UNITS = {"second": 1, "millisecond": 10**3, "microsecond": 10**6, "nanosecond": 10**9}


def parse_rfc3339(text: str, unit: str) -> int:
    """An independent reading of an RFC 3339 time, in `unit`."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    assert m, text
    secs = int(datetime.fromisoformat(m.group(1) + m.group(3).replace("Z", "+00:00"))
               .timestamp())
    frac = m.group(2) or ".0"
    return secs * UNITS[unit] + round(float("0" + frac) * UNITS[unit])


def test_now_rfc3339():
    text = call("now_rfc3339")
    assert abs(parse_rfc3339(text, "second") - time.time()) < 5


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_now_rfc3339_1(unit):
    text = call("now_rfc3339", unit)
    digits = {"second": 0, "millisecond": 3, "microsecond": 6, "nanosecond": 9}[unit]
    frac = re.search(r"T\d\d:\d\d:\d\d(\.\d+)?", text).group(1) or "."
    assert len(frac) - 1 == digits
    assert abs(parse_rfc3339(text, unit) / UNITS[unit] - time.time()) < 5


def test_now_timestamp():
    assert isinstance(call("now_timestamp"), int)
    assert abs(call("now_timestamp") - time.time()) < 5


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_now_timestamp_1(unit):
    assert abs(call("now_timestamp", unit) / UNITS[unit] - time.time()) < 5


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_unix_ts_to_rfc3339(unit):
    epoch = call("now_timestamp", unit)
    text = call("unix_ts_to_rfc3339", epoch, unit)
    assert parse_rfc3339(text, unit) == epoch


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_rfc3339_to_unix_ts(unit):
    epoch = call("now_timestamp", unit)
    text = call("unix_ts_to_rfc3339", epoch, unit)
    assert call("rfc3339_to_unix_ts", text, unit) == epoch


def test_rfc3339_parsing_details():
    assert call("rfc3339_to_unix_ts", "2024-03-01T10:30:38+08:00") == 1709260238
    assert call("rfc3339_to_unix_ts", "2024-03-01T02:30:38Z") == 1709260238
    assert call("rfc3339_to_unix_ts", "2024-03-01 02:30:38z") == 1709260238
    # the fraction is dropped for seconds, rounded for finer units
    assert call("rfc3339_to_unix_ts", "2024-03-01T02:30:38.999Z") == 1709260238
    assert call("rfc3339_to_unix_ts", "2024-03-01T02:30:38.9996Z", "millisecond") == \
        1709260239000
    for bad in ("2024-03-01", "2024-02-30T00:00:00Z", "2024-03-01T02:30:38+0800", 17):
        with pytest.raises(SQLFunctionError):
            call("rfc3339_to_unix_ts", bad)
    with pytest.raises(SQLFunctionError, match="invalid_time_unit"):
        call("rfc3339_to_unix_ts", "2024-03-01T02:30:38Z", "hour")


def test_unix_ts_to_rfc3339_needs_an_integer():
    with pytest.raises(SQLFunctionError):
        call("unix_ts_to_rfc3339", 1.5)
    with pytest.raises(SQLFunctionError):
        call("unix_ts_to_rfc3339", 1, "days")


epochs = st.integers(0, 2**35)


@given(epochs)
def test_format_date_round_trips_with_the_dates_own_offset(s):
    fmt = "%Y-%m-%d-%H:%M:%S%z"
    text = call("format_date", "second", "+08:00", fmt, s)
    assert call("date_to_unix_ts", "second", fmt, text) == s


@given(st.integers(0, 2**35 * 1000))
def test_format_date_round_trips_milliseconds(s):
    text = call("format_date", "millisecond", "+04:00", "--%m--%d--%Y---%H:%M:%S:%3N%z", s)
    assert call("date_to_unix_ts", "millisecond", "--%m--%d--%Y---%H:%M:%S:%3N%z", text) == s


@given(epochs)
def test_format_date_without_offset_in_the_format(s):
    fmt = "--%m--%d--%Y---%H:%M:%S"
    text = call("format_date", "second", "+04:00", fmt, s)
    assert call("date_to_unix_ts", "second", "+04:00", fmt, text) == s


@given(epochs)
def test_date_to_unix_ts_4_subtracts_its_offset_even_when_the_date_has_one(s):
    # as EMQX 5.8.1 does (its property test for this case is never evaluated)
    fmt = "%m--%d--%Y---%H:%M:%S%z"
    text = call("format_date", "second", "+07:00", fmt, s)
    assert call("date_to_unix_ts", "second", "+07:00", fmt, text) == s - 7 * 3600


def test_format_date_fields():
    t = 1709260238123456789
    assert call("format_date", "nanosecond", "Z", "%Y-%m-%dT%H:%M:%S.%N%:z", t) == \
        "2024-03-01T02:30:38.123456789+00:00"
    assert call("format_date", "nanosecond", 3600, "%3N %6N %::z", t) == \
        "123 123456 +01:00:00"
    assert call("format_date", "second", "-02:30", "%H:%M %z %%Y", 0) == "21:30 -0230 %1969"
    with pytest.raises(SQLFunctionError):
        call("format_date", "second", "+08:00", "%Y", 1.5)


def test_timezone_to_offset_seconds():
    for name in ("timezone_to_offset_seconds", "timezone_to_second"):
        assert call(name, "+02:00:00") == 120 * 60
        assert call(name, "-02:00:00") == -120 * 60
        assert call(name, "+00:01:42") == 102
        assert call(name, "z") == 0
        assert call(name, "Z") == 0
        assert call(name, 42) == 42
        assert call(name, None) == 0
        assert call(name, "+0800") == 8 * 3600
        assert call(name, "-05:30") == -(5 * 3600 + 30 * 60)
        assert isinstance(call(name, "local"), int)
        for bad in ("08:00", "+24:00", "+01:60", "", "+1", 1.5, True):
            with pytest.raises(SQLFunctionError):
                call(name, bad)


def rfc(text, unit):
    return parse_rfc3339(text, unit) if unit != "second" else \
        int(datetime.fromisoformat(re.sub(r"\.\d+", "", text)).timestamp())


DATE_TO_UNIX_TS_CASES = [
    ("2024-03-01T10:30:38+08:00", "second",
     ["second", "+08:00", "%Y-%m-%d %H-%M-%S", "2024-03-01 10:30:38"]),
    ("2024-03-01T10:30:38.333+08:00", "second",
     ["second", "+08:00", "%Y-%m-%d %H-%M-%S.%3N", "2024-03-01 10:30:38.333"]),
    ("2024-03-01T10:30:38.333+08:00", "millisecond",
     ["millisecond", "+08:00", "%Y-%m-%d %H-%M-%S.%3N", "2024-03-01 10:30:38.333"]),
    ("2024-03-01T10:30:38.333+08:00", "microsecond",
     ["microsecond", "+08:00", "%Y-%m-%d %H-%M-%S.%3N", "2024-03-01 10:30:38.333"]),
    ("2024-03-01T10:30:38.333+08:00", "nanosecond",
     ["nanosecond", "+08:00", "%Y-%m-%d %H-%M-%S.%3N", "2024-03-01 10:30:38.333"]),
    ("2024-03-01T10:30:38.333444+08:00", "microsecond",
     ["microsecond", "+08:00", "%Y-%m-%d %H-%M-%S.%6N", "2024-03-01 10:30:38.333444"]),
]


@pytest.mark.parametrize("rfc3339, unit, args", DATE_TO_UNIX_TS_CASES)
def test_date_to_unix_ts(rfc3339, unit, args):
    assert call("date_to_unix_ts", *args) == rfc(rfc3339, unit)


def test_parse_date_errors():
    with pytest.raises(SQLFunctionError, match="bad_formatter_or_date"):
        call("date_to_unix_ts", "second", "%Y-%m-%d %H:%M:%S", "2022-059999-26 10:40:12")
    with pytest.raises(SQLFunctionError, match="bad_formatter_or_date"):
        call("date_to_unix_ts", "second", "%y-%m-%d %H:%M:%S", "2022-05-26 10:40:12")
    with pytest.raises(SQLFunctionError, match="missing_date_part: month"):
        call("date_to_unix_ts", "second", "%Y-%d %H:%M:%S", "2022-32 10:40:12")
    with pytest.raises(SQLFunctionError, match="missing_date_part: year"):
        call("date_to_unix_ts", "second", "%H:%M:%S", "10:40:12")
    for bad_date in ("2022-05-32 10:40:12", "2023-02-29 10:40:12", "2024-02-30 10:40:12"):
        with pytest.raises(SQLFunctionError):
            call("date_to_unix_ts", "second", "%Y-%m-%d %H:%M:%S", bad_date)

    unix_ts = 1653561612
    assert call("date_to_unix_ts", "second", "%Y-%m-%d %H:%M:%S", "2022-05-26 10:40:12") == \
        unix_ts
    # literal parts are skipped, not compared (EMQX 4 compatibility)
    assert call("date_to_unix_ts", "second", "%Y-%m-%d %H-%M-%S", "2022-05-26 10:40:12") == \
        unix_ts
    assert call("date_to_unix_ts", "second", "%Y-%m-%d %H:%M:%S", "2022-05-26 10-40-12") == \
        unix_ts

    fmt = "%Y-%m-%d %H:%M:%S"
    assert call("date_to_unix_ts", "second", fmt, "2024-02-29 14:31:40") == 1709217100
    assert call("date_to_unix_ts", "second", fmt, "2024-03-01 12:44:31") == 1709297071
    assert call("date_to_unix_ts", "second", fmt, "2100-03-01 12:44:31") == 4107588271
    assert call("date_to_unix_ts", "second", "+08:00", fmt, "2024-02-29 14:31:40") == \
        1709188300
    assert call("date_to_unix_ts", "second", "+08:00", fmt, "2024-03-01 12:44:31") == \
        1709268271
    assert call("date_to_unix_ts", "second", "+08:00", fmt, "2100-03-01 12:44:31") == \
        4107559471

    tz1 = int(datetime(2024, 2, 23, 7, 0, 0, tzinfo=timezone.utc).timestamp())
    assert call("date_to_unix_ts", "second", "%Y-%m-%d %H:%M:%S.%3N%:z",
                "2024-02-23 15:00:00.123+08:00") == tz1


def test_mongo_date():
    assert call("mongo_date", 1709260238123) == "ISODate(2024-03-01T02:30:38.123Z)"
    assert call("mongo_date", 1709260238, "second") == "ISODate(2024-03-01T02:30:38.000Z)"
    assert re.fullmatch(r"ISODate\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\)", call("mongo_date"))
    with pytest.raises(SQLFunctionError):
        call("mongo_date", "x")
