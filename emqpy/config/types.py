"""Pydantic field types for EMQX value syntaxes.

Each type parses EMQX's text form once at validation time into a plain Python
value (float seconds, int bytes, ...) and serialises back to EMQX's JSON form,
so the broker reads plain attributes and ``dump()`` gives what EMQX's
``GET /api/v5/configs`` shows.  Durations and sizes parsed from text are
``DurationValue``/``SizeValue`` (float/int subclasses carrying ``.text``) so a
dump shows them as written, like EMQX; other values get the canonical form.

Sentinel conventions (EMQX text -> stored value):

* ``"infinity"`` -> ``math.inf`` (durations, counts and sizes alike; a float,
  so comparisons like ``len(q) >= limit`` keep working).
* ``"disabled"`` -> ``None`` (optional intervals and features).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from .units import (
    format_bind,
    format_bytesize,
    format_duration,
    format_percent,
    parse_bind,
    parse_bytesize,
    parse_duration,
    parse_percent,
    parse_rate,
)

_DUR_SCHEMA = {"type": "string", "example": "12m"}
_SIZE_SCHEMA = {"type": "string", "example": "32MB"}


class DurationValue(float):
    """Float seconds that remember the EMQX text they were parsed from, so a
    dump shows what was configured ("300s" stays "300s", as in EMQX)."""

    __slots__ = ("text",)

    def __new__(cls, seconds: float, text: str) -> "DurationValue":
        self = super().__new__(cls, seconds)
        self.text = text
        return self

    def __reduce__(self):
        return (DurationValue, (float(self), self.text))


class SizeValue(int):
    """Int bytes that remember their EMQX text ("64KB").  (No __slots__:
    CPython does not allow them on int subclasses.)"""

    def __new__(cls, n: int, text: str) -> "SizeValue":
        self = super().__new__(cls, n)
        self.text = text
        return self

    def __reduce__(self):
        return (SizeValue, (int(self), self.text))


# Serialisers also pass raw text through: pydantic's JSON schema generation
# serialises the (textual) defaults with them.


def _dur_text(v: float | str) -> str:
    if isinstance(v, DurationValue):
        return v.text
    return v if isinstance(v, str) else format_duration(v)


def _size_text(v: int | str) -> str:
    if isinstance(v, SizeValue):
        return v.text
    return v if isinstance(v, str) else format_bytesize(v)


def _duration_type(unit: str, *, infinity: bool = False, disabled: bool = False, maximum: float | None = None):
    def validate(v: Any) -> float | None:
        if isinstance(v, DurationValue):
            v = v.text  # re-check under this field's rules
        if disabled and v in ("disabled", None):
            return None
        if infinity and isinstance(v, float) and v == math.inf:
            return v
        secs = parse_duration(v, unit, allow_infinity=infinity)
        if maximum is not None and secs != math.inf and secs > maximum:
            raise ValueError(f"timeout value too large (max: {format_duration(maximum)})")
        if isinstance(v, str) and secs != math.inf:
            return DurationValue(secs, v.strip())
        return secs

    def serialize(v: float | None) -> str:
        return "disabled" if v is None else _dur_text(v)

    # anyOf: "disabled"/"infinity" are strings too, so oneOf would refuse them
    if disabled:
        schema = {"anyOf": [_DUR_SCHEMA, {"type": "string", "enum": ["disabled"]}]}
        py = float | None
    elif infinity:
        schema = {"anyOf": [_DUR_SCHEMA, {"type": "string", "enum": ["infinity"]}]}
        py = float
    else:
        schema = _DUR_SCHEMA
        py = float
    return Annotated[
        py,
        PlainValidator(validate),
        PlainSerializer(serialize, return_type=str),
        WithJsonSchema(schema),
    ]


# EMQX ``duration`` / ``duration_ms``: bare integers are milliseconds.
Duration = _duration_type("ms")
# EMQX ``timeout_duration``: like Duration, capped at 2^32-1 ms.
TimeoutDuration = _duration_type("ms", maximum=4294967.295)
# EMQX ``duration_s``: bare integers are seconds; rounded up to whole seconds.
DurationS = _duration_type("s")
DurationOrInfinity = _duration_type("ms", infinity=True)
TimeoutDurationOrInfinity = _duration_type("ms", infinity=True, maximum=4294967.295)
DurationOrDisabled = _duration_type("ms", disabled=True)


def _validate_size(v: Any) -> int:
    if isinstance(v, SizeValue):
        v = v.text
    n = parse_bytesize(v)
    return SizeValue(n, v.strip()) if isinstance(v, str) else n


ByteSize = Annotated[
    int,
    PlainValidator(_validate_size),
    PlainSerializer(_size_text, return_type=str),
    WithJsonSchema(_SIZE_SCHEMA),
]


def _validate_size_or_disabled(v: Any) -> int | None:
    if v in ("disabled", None):
        return None
    return _validate_size(v)


ByteSizeOrDisabled = Annotated[
    int | None,
    PlainValidator(_validate_size_or_disabled),
    PlainSerializer(lambda v: "disabled" if v is None else _size_text(v), return_type=str),
    WithJsonSchema({"anyOf": [_SIZE_SCHEMA, {"type": "string", "enum": ["disabled"]}]}),
]


def _validate_size_or_infinity(v: Any) -> int | None:
    if v in ("infinity", None):
        return None
    return _validate_size(v)


# A size, or None for "infinity" (log.file.<name>.rotation_size)
ByteSizeOrInfinity = Annotated[
    int | None,
    PlainValidator(_validate_size_or_infinity),
    PlainSerializer(lambda v: "infinity" if v is None else _size_text(v), return_type=str),
    WithJsonSchema({"anyOf": [_SIZE_SCHEMA, {"type": "string", "enum": ["infinity"]}]}),
]


def count_or_infinity(minimum: int):
    """EMQX ``union([non_neg_integer() | pos_integer(), infinity])``: an int
    ``>= minimum``, or ``math.inf`` for ``"infinity"``."""

    def validate(v: Any) -> int | float:
        if v == "infinity" or (isinstance(v, float) and v == math.inf):
            return math.inf
        if isinstance(v, bool):
            raise ValueError(f"expected an integer or 'infinity', got {v!r}")
        if isinstance(v, str) and v.strip().lstrip("+-").isdigit():
            v = int(v)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int):
            raise ValueError(f"expected an integer or 'infinity', got {v!r}")
        if v < minimum:
            raise ValueError(f"must be >= {minimum} or 'infinity', got {v}")
        return v

    return Annotated[
        int | float,
        PlainValidator(validate),
        PlainSerializer(lambda v: "infinity" if v == math.inf else v),  # raw "infinity" passes as is
        WithJsonSchema(
            {"oneOf": [{"type": "integer", "minimum": minimum}, {"type": "string", "enum": ["infinity"]}]}
        ),
    ]


def _validate_rate(v: Any) -> str:
    parse_rate(v)
    return v


# EMQX rate text ("1000/s", "infinity"), checked and kept as written; users read it with
# ``units.parse_rate``.
Rate = Annotated[str, PlainValidator(_validate_rate), WithJsonSchema({"type": "string", "example": "1000/s"})]


def _validate_percent(v: Any) -> float:
    if isinstance(v, float) and 0.0 <= v <= 1.0:
        return v  # already parsed (model revalidation)
    return parse_percent(v)


# "80%" -> 0.8
Percent = Annotated[
    float,
    PlainValidator(_validate_percent),
    PlainSerializer(lambda v: v if isinstance(v, str) else format_percent(v), return_type=str),
    WithJsonSchema({"type": "string", "example": "12%"}),
]


class Bind(str):
    """A listener bind as EMQX shows it, carrying its parsed parts.

    It *is* the canonical string (``"0.0.0.0:1883"``, or ``"1883"`` for a bare
    port), with plain attributes: ``host`` (``"0.0.0.0"`` for a bare port),
    ``port``, ``explicit_host`` (an address was given) and ``disabled``: EMQX
    switches a dashboard listener off with a bare port 0 (``bind = 0``), while
    ``"127.0.0.1:0"`` means an OS-chosen port.
    """

    __slots__ = ("host", "port", "explicit_host", "disabled")
    host: str
    port: int
    explicit_host: bool
    disabled: bool

    def __new__(cls, value: object) -> "Bind":
        if isinstance(value, Bind):
            return value
        host, port = parse_bind(value)
        text = value.replace(" ", "") if isinstance(value, str) else str(value)
        explicit = not (isinstance(value, int) or text.lstrip(":").isdigit())
        self = super().__new__(cls, format_bind(host, port) if explicit else str(port))
        self.host = host
        self.port = port
        self.explicit_host = explicit
        self.disabled = port == 0 and not explicit
        return self

    def __reduce__(self):
        return (Bind, (str(self) if self.explicit_host else self.port,))

    def json_value(self) -> str | int:
        """EMQX's JSON form: ``"host:port"``, or the integer port when bare."""
        return str(self) if self.explicit_host else self.port


def _validate_bind(v: Any) -> Bind:
    return Bind(v)


BindType = Annotated[
    Bind,
    PlainValidator(_validate_bind),
    PlainSerializer(lambda b: Bind(b).json_value()),
    # Shown as "host:port", or as the bare port number when no host was given (0: disabled).
    WithJsonSchema({"oneOf": [{"type": "string"}, {"type": "integer"}],
                    "example": "0.0.0.0:1883"}),
]


def _validate_comma_list(v: Any) -> list[str]:
    if isinstance(v, str):
        return [p for p in v.replace(",", " ").split() if p]
    if isinstance(v, (list, tuple)) and all(isinstance(i, str) for i in v):
        return list(v)
    raise ValueError(f"expected a comma separated string, got {v!r}")


# EMQX ``comma_separated_list``: "a, b" -> ["a", "b"]; dumped as "a, b".
CommaList = Annotated[
    list[str],
    PlainValidator(_validate_comma_list),
    PlainSerializer(lambda v: v if isinstance(v, str) else ", ".join(v), return_type=str),
    WithJsonSchema({"type": "string", "example": "item1,item2"}),
]
