"""Time formats of EMQX's API: RFC 3339 with the node's local UTC offset, and the inputs
accepted for ``expired_at`` (RFC 3339, epoch seconds, or ``"infinity"``)."""
from __future__ import annotations

from datetime import datetime, timezone


# Years 0002 to 9998, so that any local UTC offset still gives a 4-digit year.
_MIN_EPOCH = int(datetime(2, 1, 1, tzinfo=timezone.utc).timestamp())
_MAX_EPOCH = int(datetime(9998, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp())


def rfc3339(ts: float) -> str:
    """Epoch seconds -> ``2022-06-21T22:28:23+02:00`` (the offset in force at that instant)."""
    return datetime.fromtimestamp(int(ts)).astimezone().isoformat(timespec="seconds")


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
        text = value.strip()
        if text.endswith(("z", "Z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an RFC 3339 date-time: {value!r}") from None
        if "T" not in text.upper() or dt.tzinfo is None:
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
