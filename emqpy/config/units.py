"""EMQX value syntaxes: durations, byte sizes, percentages, ``ip:port`` binds.

Parsing follows EMQX 5.8 (``emqx_schema`` + ``hocon_postprocess``):

* Durations are one or more ``<number><unit>`` segments summed together
  (``"1h30m"``, ``"2.5m"``, ``"1W2D"``); units are ``f`` (fortnight), ``w``,
  ``d``, ``h``, ``m``, ``s``, ``ms``, case-insensitive.  The total is rounded to
  whole milliseconds.  A bare integer is in the *field's* unit: milliseconds for
  EMQX ``duration``/``duration_ms`` fields, seconds for ``duration_s`` fields
  (``unit="s"``), which also round up to whole seconds like EMQX does.
* Rates are ``<count>/<period>`` (``"1000/s"``, ``"100/10s"``, ``"60/m"``) or ``"infinity"``;
  the period is an optional integer and a unit ``ms``, ``s``, ``m``, ``h`` or ``d``; the count
  may carry a byte unit (``"1MB/s"``) and without a period it is per second (EMQX's limiter).
* Byte sizes are ``<integer>[B|KB|MB|GB]`` (case-insensitive, 1024 multiples)
  or a bare integer number of bytes.

Parsed durations are float seconds (``math.inf`` for ``"infinity"`` where a
field allows it); sizes are int bytes.  ``format_*`` give the canonical string
for dumping a value that has no original text: whole units, largest first
(``"1h30m"``, ``"1MB"``), so ``parse(format(x)) == x``.
"""

from __future__ import annotations

import ipaddress
import math
import re

__all__ = [
    "parse_duration",
    "format_duration",
    "parse_bytesize",
    "format_bytesize",
    "parse_percent",
    "format_percent",
    "parse_bind",
    "format_bind",
    "parse_rate",
]

_MS_PER_UNIT = {
    "f": 14 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}
# "ms" must be tried before "m"; matching is done on the lowercased text.
_DURATION_SEG = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|f|w|d|h|m|s)")
_INT = re.compile(r"[+-]?\d+")


def _duration_ms(text: str) -> float | None:
    """Sum of the unit segments in milliseconds, or None if not a duration."""
    s = text.strip().lower()
    if not s:
        return None
    pos = 0
    total = 0.0
    n = len(s)
    while pos < n:
        m = _DURATION_SEG.match(s, pos)
        if m is None:
            return None
        total += float(m.group(1)) * _MS_PER_UNIT[m.group(2)]
        pos = m.end()
    return total


def parse_duration(value: object, unit: str = "ms", *, allow_infinity: bool = True) -> float:
    """Parse an EMQX duration to float seconds.

    ``unit`` is the unit of bare integers: ``"ms"`` (EMQX ``duration``) or
    ``"s"`` (EMQX ``duration_s``; results are rounded up to whole seconds).
    ``"infinity"`` gives ``math.inf`` unless ``allow_infinity`` is false.
    Raises ``ValueError`` with a short reason.
    """
    if unit not in ("ms", "s"):
        raise ValueError(f"unknown duration unit {unit!r}")
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int):
        ms = value * 1000 if unit == "s" else value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        ms = int(value) * 1000 if unit == "s" else int(value)
    elif isinstance(value, str):
        text = value.strip()
        if text == "infinity" and allow_infinity:
            return math.inf
        if _INT.fullmatch(text):
            n = int(text)
            ms = n * 1000 if unit == "s" else n
        else:
            parsed = _duration_ms(text)
            if parsed is None:
                raise ValueError(f"invalid duration {value!r}")
            ms = round(parsed)
    else:
        raise ValueError(f"invalid duration {value!r}")
    if ms < 0:
        raise ValueError(f"invalid duration {value!r}: must not be negative")
    if unit == "s":
        return float(-(-ms // 1000))
    return ms / 1000


_FORMAT_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1))


def format_duration(seconds: float) -> str:
    """Canonical EMQX text for a duration in seconds: ``15.0 -> "15s"``,
    ``5400 -> "1h30m"``, ``0.5 -> "500ms"``, ``0 -> "0s"``, inf -> ``"infinity"``."""
    if seconds == math.inf:
        return "infinity"
    ms = round(seconds * 1000)
    if ms < 0:
        raise ValueError(f"negative duration {seconds!r}")
    if ms == 0:
        return "0s"
    parts = []
    for name, size in _FORMAT_UNITS:
        q, ms = divmod(ms, size)
        if q:
            parts.append(f"{q}{name}")
    return "".join(parts)


_SIZE = re.compile(r"\s*(\d+)\s*(b|kb|mb|gb)?\s*", re.IGNORECASE)
_SIZE_MULT = {None: 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def parse_bytesize(value: object) -> int:
    """Parse an EMQX byte size (``"1MB"``, ``"64KB"``, ``"1024"``, 1024) to int bytes."""
    if isinstance(value, bool):
        raise ValueError(f"invalid byte size {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        n = int(value)
    elif isinstance(value, str):
        m = _SIZE.fullmatch(value)
        if m is None:
            raise ValueError(f"invalid byte size {value!r}")
        unit = m.group(2).lower() if m.group(2) else None
        n = int(m.group(1)) * _SIZE_MULT[unit]
    else:
        raise ValueError(f"invalid byte size {value!r}")
    if n < 0:
        raise ValueError(f"invalid byte size {value!r}: must not be negative")
    return n


def format_bytesize(n: int) -> str:
    """Canonical EMQX text for a byte count: the largest unit that divides it
    exactly (``1048576 -> "1MB"``, ``1536 -> "1536B"``)."""
    if n < 0:
        raise ValueError(f"negative byte size {n!r}")
    for name, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n and n % size == 0:
            return f"{n // size}{name}"
    return f"{n}B"


_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)%\s*")


def parse_percent(value: object) -> float:
    """``"80%" -> 0.8`` (EMQX percent type: 0%..100%)."""
    m = _PERCENT.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"invalid percentage {value!r}")
    pct = float(m.group(1))
    if pct > 100:
        raise ValueError(f"invalid percentage {value!r}: must be at most 100%")
    return round(pct * 100) / 10000


def format_percent(fraction: float) -> str:
    pct = round(fraction * 100, 2)
    return f"{int(pct)}%" if pct == int(pct) else f"{pct}%"


def parse_bind(value: object) -> tuple[str, int]:
    """Parse a listener bind: ``"0.0.0.0:1883"``, ``"[::]:1883"``, ``"::1:1883"``,
    ``":1883"``, ``"1883"`` or ``1883`` -> ``(host, port)``.

    A port without an address means all interfaces; EMQX binds ``0.0.0.0``
    then (IPv6 only with the listener's inet6 option), so host is ``"0.0.0.0"``.
    Like EMQX the address must be an IP literal, not a host name.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid bind {value!r}")
    if isinstance(value, int):
        return "0.0.0.0", _check_port(value, value)
    if not isinstance(value, str):
        raise ValueError(f"invalid bind {value!r}")
    text = value.replace(" ", "")
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    if not _INT.fullmatch(port_text or "x"):
        raise ValueError(f"invalid bind {value!r}: bad port number")
    port = _check_port(int(port_text), value)
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"invalid bind {value!r}")
        host = host[1:-1]
    if host == "":
        return "0.0.0.0", port
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"invalid bind {value!r}: {host!r} is not an IP address") from None
    return host, port


def _check_port(port: int, value: object) -> int:
    if not 0 <= port <= 65535:
        raise ValueError(f"invalid bind {value!r}: port must be 0..65535")
    return port


def format_bind(host: str, port: int) -> str:
    """``("::1", 1883) -> "[::1]:1883"``, ``("0.0.0.0", 1883) -> "0.0.0.0:1883"``."""
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*(?:/\s*(\d*)\s*(ms|s|m|h|d))?\s*",
                   re.IGNORECASE)


def parse_rate(value: object) -> tuple[float, float] | None:
    """An EMQX rate to ``(per second, burst)``: ``"1000/s" -> (1000.0, 1000.0)``,
    ``"10/10s" -> (1.0, 10.0)`` (the burst is the count: that many may come at once);
    None for ``"infinity"`` (no limit). As EMQX's limiter reads them, the count may carry a
    size unit (``"1MB/s"``: bytes, 1024 multiples) and a bare count is per second (``"500"``).
    Raises ``ValueError`` with a short reason."""
    if value == "infinity":
        return None
    m = _RATE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"invalid rate {value!r}: expected e.g. '1000/s' or 'infinity'")
    count = float(m.group(1)) * _SIZE_MULT[(m.group(2) or "b").lower()]
    period_ms = int(m.group(3) or 1) * _MS_PER_UNIT[(m.group(4) or "s").lower()]
    if count <= 0 or period_ms <= 0:
        raise ValueError(f"invalid rate {value!r}: must be positive")
    return count * 1000 / period_ms, max(count, 1.0)
