"""Date and time functions (EMQX's emqx_utils_calendar and Erlang's calendar module):
`now_timestamp`, `now_rfc3339`, `unix_ts_to_rfc3339`, `rfc3339_to_unix_ts`, `format_date`,
`date_to_unix_ts`, `timezone_to_second`/`timezone_to_offset_seconds`, `mongo_date`.

Units are "second", "millisecond", "microsecond" and "nanosecond". Offsets are seconds, "Z",
"local" (the node's UTC offset), or "+HH:MM", "+HHMM", "+HH:MM:SS". Erlang's quirks are kept:
integer division truncates toward zero where EMQX uses `div` (times before 1970 with a
fraction print oddly there too), and `format_date` with bytes that are not printable Latin-1 in
its format gives JSON of the character codes, as EMQX's conversion to a binary does.
"""
from __future__ import annotations

import re
import time
from datetime import date

from emqpy.rule_engine.funcs_base import bad_arg, is_int, to_bytes
from emqpy.rule_engine.funcs_conv import to_str

_FACTORS = {"second": 1, "millisecond": 1000, "microsecond": 1_000_000,
            "nanosecond": 1_000_000_000}
_DAYS_0_TO_1970 = 719528
_SECS_0_TO_1970 = _DAYS_0_TO_1970 * 86400
_SECS_0_TO_10000 = 2932897 * 86400
_INT_TEXT = re.compile(r"[+-]?[0-9]+\Z")
_CUM_DAYS = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def factor(function: str, args, unit) -> int:
    f = _FACTORS.get(unit) if type(unit) is str else None
    if f is None:
        raise bad_arg(function, args, f"invalid_time_unit: {unit!r}")
    return f


def _tdiv(a: int, b: int) -> int:
    """Erlang's div: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _trem(a: int, b: int) -> int:
    return a - b * _tdiv(a, b)


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def _last_day(y: int, m: int) -> int:
    if m == 2:
        return 29 if _is_leap(y) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def _gregorian_days(y: int, m: int, d: int) -> int:
    """calendar:date_to_gregorian_days (day 0 is 0000-01-01); ValueError for a bad date."""
    if y < 0 or not 1 <= m <= 12 or not 1 <= d <= _last_day(y, m):
        raise ValueError(f"not a valid date: {y}-{m}-{d}")
    days_before = 0 if y <= 0 else (y - 1) // 4 - (y - 1) // 100 + (y - 1) // 400 + (y - 1) * 365 + 366
    return days_before + _CUM_DAYS[m - 1] + (1 if m > 2 and _is_leap(y) else 0) + d - 1


def _datetime_of(secs: int) -> tuple:
    """Epoch seconds -> (Y, M, D, h, m, s), for times from year 0."""
    gsecs = secs + _SECS_0_TO_1970
    if gsecs < 0:
        raise ValueError("time before year 0")
    days, rest = divmod(gsecs, 86400)
    if days >= 366:
        d = date.fromordinal(days - 365)
        y, m, dd = d.year, d.month, d.day
    else:                                   # year 0, a leap year
        y, m = 0, 1
        while m < 12 and days >= _CUM_DAYS[m] + (1 if m >= 2 else 0):
            m += 1
        dd = days - _CUM_DAYS[m - 1] - (1 if m > 2 else 0) + 1
    return y, m, dd, rest // 3600, rest % 3600 // 60, rest % 60


def _local_offset(secs: int) -> int:
    try:
        return time.localtime(secs).tm_gmtoff
    except (OverflowError, OSError, ValueError):
        return 0


# -- RFC 3339 -----------------------------------------------------------------------------------

def system_time_to_rfc3339(t: int, unit_factor: int, offset: str | None = None) -> str:
    """calendar:system_time_to_rfc3339: local time with its offset, or `offset` ("Z")."""
    adj = 0 if offset is not None else _local_offset(t // unit_factor)
    adjusted = t + adj * unit_factor
    secs = _tdiv(adjusted, unit_factor)
    if not -_SECS_0_TO_1970 <= secs < _SECS_0_TO_10000:
        raise ValueError("time out of range")
    y, mo, d, h, mi, s = _datetime_of(secs)
    frac = ""
    if unit_factor > 1:
        digits = len(str(unit_factor)) - 1
        frac = "." + str(abs(_trem(adjusted, unit_factor))).rjust(digits, "0")
    if offset is None:
        sign = "-" if adj < 0 else "+"
        offset = f"{sign}{abs(adj) // 3600:02d}:{abs(adj) % 3600 // 60:02d}"
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{offset}"


def now_rfc3339(unit="second"):
    f = factor("now_rfc3339", (unit,), unit)
    return system_time_to_rfc3339(time.time_ns() // (1_000_000_000 // f), f)


def unix_ts_to_rfc3339(epoch, unit="second"):
    args = (epoch, unit)
    f = factor("unix_ts_to_rfc3339", args, unit)
    if not is_int(epoch):
        raise bad_arg("unix_ts_to_rfc3339", args, "an integer timestamp is expected")
    try:
        return system_time_to_rfc3339(epoch, f)
    except ValueError as e:
        raise bad_arg("unix_ts_to_rfc3339", args, str(e)) from None


def _erl_int(text: str) -> int:
    """list_to_integer/1: an optional sign and digits, nothing else."""
    if not _INT_TEXT.match(text):
        raise ValueError(f"not an integer: {text!r}")
    return int(text)


def rfc3339_to_unix_ts(text, unit="second"):
    args = (text, unit)
    f = factor("rfc3339_to_unix_ts", args, unit)
    if type(text) is not str:
        raise bad_arg("rfc3339_to_unix_ts", args, "a date-time string is expected")
    # calendar:rfc3339_to_system_time reads fixed positions: YYYY-MM-DDTHH:MM:SS
    fixed, rest = text[:19], text[19:]
    if len(fixed) < 19 or fixed[4] != "-" or fixed[7] != "-" or fixed[13] != ":" \
            or fixed[16] != ":":
        raise bad_arg("rfc3339_to_unix_ts", args, "not an RFC 3339 date-time")
    try:
        y, mo, d = _erl_int(fixed[0:4]), _erl_int(fixed[5:7]), _erl_int(fixed[8:10])
        h, mi, s = _erl_int(fixed[11:13]), _erl_int(fixed[14:16]), _erl_int(fixed[17:19])
        i = 0
        while i < len(rest) and (rest[i].isdigit() or rest[i] == "."):
            i += 1
        frac_text, offset = rest[:i], rest[i:]
        secs = (_gregorian_days(y, mo, d) - _DAYS_0_TO_1970) * 86400 + h * 3600 + mi * 60 + s
        if offset == "":
            secs -= _local_offset(secs)
        elif offset not in ("Z", "z"):
            if len(offset) != 6 or offset[0] not in "+-" or offset[3] != ":":
                raise ValueError("bad offset")
            adj = _erl_int(offset[1:3]) * 3600 + _erl_int(offset[4:6]) * 60
            secs -= adj if offset[0] == "+" else -adj
        if not -_SECS_0_TO_1970 <= secs < _SECS_0_TO_10000:
            raise ValueError("out of range")
        scaled = secs * f
        fraction = 0
        if f > 1 and frac_text:
            if not re.fullmatch(r"\.[0-9]+", frac_text):
                raise ValueError("bad fraction")
            fraction = _round_half_away(f * float("0" + frac_text))
        return scaled - fraction if scaled < 0 else scaled + fraction
    except ValueError:
        raise bad_arg("rfc3339_to_unix_ts", args, "not an RFC 3339 date-time") from None


def _round_half_away(x: float) -> int:
    r = int(abs(x) + 0.5)
    return -r if x < 0 else r


def now_timestamp(unit="second"):
    f = factor("now_timestamp", (unit,), unit)
    return time.time_ns() // (1_000_000_000 // f)


# -- offsets ------------------------------------------------------------------------------------


def offset_seconds(offset, function: str = "timezone_to_offset_seconds") -> int:
    """emqx_utils_calendar:offset_second/1."""
    if is_int(offset):
        return offset
    if offset is None:
        return 0
    if type(offset) is not str:
        raise bad_arg(function, (offset,), "bad_time_offset")
    if offset == "local":
        return _local_offset(int(time.time()))
    if offset in ("Z", "z"):
        return 0
    if not offset or offset[0] not in "+-":
        raise bad_arg(function, (offset,), "bad_time_offset")
    parts = [p for p in offset[1:].split(":") if p]
    if len(parts) == 2:
        parts.append("0")
    elif len(parts) == 1 and len(parts[0]) == 4:
        parts = [parts[0][:2], parts[0][2:], "0"]
    elif len(parts) != 3:
        raise bad_arg(function, (offset,), "bad_time_offset")
    nums = []
    for p, what, top in zip(parts, ("hour", "minute", "second"), (23, 59, 59)):
        if not _INT_TEXT.match(p) or int(p) > top:
            raise bad_arg(function, (offset,), f"bad_time_offset_{what}")
        nums.append(int(p))
    total = nums[0] * 3600 + nums[1] * 60 + nums[2]
    return -total if offset[0] == "-" else total


def timezone_to_offset_seconds(tz):
    return offset_seconds(tz)


def timezone_to_second(tz):
    return offset_seconds(tz, "timezone_to_second")


# -- format_date / date_to_unix_ts --------------------------------------------------------------

_DIRECTIVES = [("%::z", "timezone2"), ("%:z", "timezone1"), ("%3N", "millisecond"),
               ("%6N", "microsecond"), ("%Y", "year"), ("%m", "month"), ("%d", "day"),
               ("%H", "hour"), ("%M", "minute"), ("%S", "second"), ("%N", "nanosecond"),
               ("%z", "timezone")]
_SIZES = {"year": 4, "month": 2, "day": 2, "hour": 2, "minute": 2, "second": 2,
          "millisecond": 3, "microsecond": 6, "nanosecond": 9, "timezone": 5, "timezone1": 6,
          "timezone2": 9}
_ZONES = ("timezone", "timezone1", "timezone2")


def _formatter(fmt: str) -> list:
    """The format as a list of ("key", name) and ("text", bytes-as-latin1) items."""
    text = to_bytes(fmt).decode("latin-1")
    items: list = []
    i = 0
    while i < len(text):
        for token, name in _DIRECTIVES:
            if text.startswith(token, i):
                items.append(("key", name))
                i += len(token)
                break
        else:
            if items and items[-1][0] == "text":
                items[-1] = ("text", items[-1][1] + text[i])
            else:
                items.append(("text", text[i]))
            i += 1
    return items


def _zone_text(offset: int, key: str) -> str:
    if abs(offset) >= 86400:
        raise ValueError("offset of a day or more")
    sign = "+" if offset >= 0 else "-"
    a = abs(offset)
    h, m, s = a // 3600, a % 3600 // 60, a % 60
    if key == "timezone":
        return f"{sign}{h:02d}{m:02d}"
    if key == "timezone1":
        return f"{sign}{h:02d}:{m:02d}"
    return f"{sign}{h:02d}:{m:02d}:{s:02d}"


def _pad(n: int, width: int) -> str:
    s = str(n)
    return s.rjust(width, "0") if len(s) < width else s


def _sub_second(unit_factor: int, target: int, t: int) -> int:
    if unit_factor == 1:
        return 0
    if unit_factor <= target:
        return _trem(t, unit_factor) * (target // unit_factor)
    return _trem(_tdiv(t, unit_factor // target), target)


def format_date(unit, offset, fmt, *epoch):
    args = (unit, offset, fmt, *epoch)
    if len(epoch) > 1:
        raise TypeError(f"format_date() takes 3 or 4 arguments but {len(args)} were given")
    f = factor("format_date", args, unit)
    t = epoch[0] if epoch else time.time_ns() // (1_000_000_000 // f)
    if not is_int(t) or type(fmt) is not str:
        raise bad_arg("format_date", args, "an integer time and a format string expected")
    off = offset_seconds(offset, "format_date")
    try:
        secs = _tdiv(t + off * f, f)
        y, mo, d, h, mi, s = _datetime_of(secs)
        values = {"year": _pad(y, 4), "month": _pad(mo, 2), "day": _pad(d, 2),
                  "hour": _pad(h, 2), "minute": _pad(mi, 2), "second": _pad(s, 2),
                  "millisecond": _pad(_sub_second(f, 1000, t), 3),
                  "microsecond": _pad(_sub_second(f, 1_000_000, t), 6),
                  "nanosecond": _pad(_sub_second(f, 1_000_000_000, t), 9)}
        out = []
        for kind, v in _formatter(fmt):
            if kind == "text":
                out.append(v)
            elif v in _ZONES:
                out.append(_zone_text(off, v))
            else:
                out.append(values[v])
    except ValueError as e:
        raise bad_arg("format_date", args, str(e)) from None
    return to_str([ord(c) for c in "".join(out)], "format_date")


def _floor_convert(value: int, from_factor: int, to_factor: int) -> int:
    if to_factor >= from_factor:
        return value * (to_factor // from_factor)
    return value // (from_factor // to_factor)


def date_to_unix_ts(unit, a, b, *c):
    """date_to_unix_ts(Unit, Format, Date) or date_to_unix_ts(Unit, Offset, Format, Date):
    the date read by the format (as UTC, or as the date's own %z offset), minus Offset."""
    args = (unit, a, b, *c)
    if len(c) > 1:
        raise TypeError(f"date_to_unix_ts() takes 3 or 4 arguments but {len(args)} were given")
    f = factor("date_to_unix_ts", args, unit)
    offset, fmt, text = (a, b, c[0]) if c else (0, a, b)
    off = offset_seconds(offset, "date_to_unix_ts") if c else 0
    if type(fmt) is not str or type(text) is not str:
        raise bad_arg("date_to_unix_ts", args, "a format and a date string expected")
    data = to_bytes(text).decode("latin-1")
    info: dict = {}
    pos = 0
    for kind, v in _formatter(fmt):
        if pos >= len(data):
            break
        size = len(v) if kind == "text" else _SIZES[v]
        part = data[pos:pos + size]
        if len(part) < size:
            raise bad_arg("date_to_unix_ts", args, "bad_formatter_or_date")
        pos += size
        if kind == "key" and v in _ZONES:
            info["offset"] = offset_seconds(part, "date_to_unix_ts")
        elif kind == "key":
            if not _INT_TEXT.match(part):
                raise bad_arg("date_to_unix_ts", args, "bad_formatter_or_date")
            info[v] = int(part)
    for key in ("year", "month", "day", "hour", "minute", "second"):
        if key not in info:
            raise bad_arg("date_to_unix_ts", args, f"missing_date_part: {key}")
    try:
        days = _gregorian_days(info["year"], info["month"], info["day"])
    except ValueError as e:
        raise bad_arg("date_to_unix_ts", args, str(e)) from None
    secs = (days - _DAYS_0_TO_1970) * 86400 + info["hour"] * 3600 + info["minute"] * 60 \
        + info["second"] - info.get("offset", 0)
    if not -_SECS_0_TO_1970 <= secs < _SECS_0_TO_10000:
        raise bad_arg("date_to_unix_ts", args, "bad_format: out of range")
    precision = next((_FACTORS[k] for k in ("nanosecond", "microsecond", "millisecond")
                      if k in info), 1)
    total = secs * precision
    for k in ("millisecond", "microsecond", "nanosecond"):
        if k in info:
            total += _floor_convert(info[k], _FACTORS[k], precision)
    return _floor_convert(total, precision, f) - off * f


# -- MongoDB dates ------------------------------------------------------------------------------

def _isodate(ms: int) -> str:
    return "ISODate(" + system_time_to_rfc3339(ms, 1000, "Z") + ")"


def mongo_date(*args):
    """mongo_date(), mongo_date(Ms), mongo_date(Time, Unit): the MongoDB date as EMQX shows
    it outside a MongoDB action (``ISODate(2024-01-01T00:00:00.000Z)``)."""
    if len(args) > 2:
        raise TypeError(f"mongo_date() takes 0 to 2 arguments but {len(args)} were given")
    if not args:
        return _isodate(time.time_ns() // 1_000_000)
    t = args[0]
    if not is_int(t):
        raise bad_arg("mongo_date", args, "an integer timestamp is expected")
    if len(args) == 2:
        t = _floor_convert(t, factor("mongo_date", args, args[1]), 1000)
    try:
        return _isodate(t)
    except ValueError as e:
        raise bad_arg("mongo_date", args, str(e)) from None


FUNCTIONS = {
    "now_rfc3339": now_rfc3339, "unix_ts_to_rfc3339": unix_ts_to_rfc3339,
    "rfc3339_to_unix_ts": rfc3339_to_unix_ts, "now_timestamp": now_timestamp,
    "format_date": format_date, "date_to_unix_ts": date_to_unix_ts,
    "timezone_to_second": timezone_to_second,
    "timezone_to_offset_seconds": timezone_to_offset_seconds, "mongo_date": mongo_date,
}
