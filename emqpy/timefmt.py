"""EMQX's time formats, for every API, `$SYS` topic and log line that shows a time: RFC 3339
with the node's local UTC offset (the offset in force at that instant), and the date-time
inputs the API accepts (RFC 3339 or epoch numbers)."""
from __future__ import annotations

from datetime import datetime, timezone


# Years 0002 to 9998, so that any local UTC offset still gives a 4-digit year.
_MIN_EPOCH = int(datetime(2, 1, 1, tzinfo=timezone.utc).timestamp())
_MAX_EPOCH = int(datetime(9998, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp())


def rfc3339(ts: float, *, ms: bool = False) -> str:
    """Epoch seconds -> ``2022-06-21T22:28:23+02:00``, or with `ms`
    ``2022-06-21T22:28:23.456+02:00`` (EMQX uses both, depending on the field)."""
    if ms:
        return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")
    return datetime.fromtimestamp(int(ts)).astimezone().isoformat(timespec="seconds")


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 date-time (``Z`` or a numeric offset) as a datetime; one written without
    an offset comes back naive, for the caller to refuse or to read as UTC. ValueError if it
    is not a date-time."""
    text = text.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}") from None


def parse_expiry(value) -> float | None:
    """``"infinity"`` -> None; int epoch seconds or an RFC 3339 string -> epoch seconds.
    Raises ValueError with a message naming what is wrong."""
    if value is None or value == "infinity":
        return None
    if isinstance(value, bool):
        raise ValueError("expected an RFC 3339 date-time, epoch seconds or \"infinity\"")
    if isinstance(value, (int, float)):
        epoch = value  # NaN and the infinities fail the range check below
    elif isinstance(value, str):
        try:
            dt = parse_rfc3339(value)
        except ValueError:
            raise ValueError(f"not an RFC 3339 date-time: {value!r}") from None
        if "T" not in value.upper() or dt.tzinfo is None:
            raise ValueError(f"RFC 3339 date-time with a time zone offset expected: {value!r}")
        try:
            epoch = dt.astimezone(timezone.utc).timestamp()
        except OverflowError:
            epoch = float("nan")
    else:
        raise ValueError("expected an RFC 3339 date-time, epoch seconds or \"infinity\"")
    # Any time, past ones included (as EMQX); the bounds are what RFC 3339 can show.
    if not _MIN_EPOCH <= epoch <= _MAX_EPOCH:
        raise ValueError("out of range (years 0002 to 9998)")
    return float(epoch) if isinstance(value, str) else float(int(epoch))
