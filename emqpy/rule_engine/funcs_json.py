"""JSON as EMQX writes and reads it (emqx_utils_json over jiffy), for `json_encode`,
`json_decode`, `str` of maps and lists, and whatever else in the rule engine must print a value
as EMQX would.

What jiffy does that a stock encoder does not:
- map keys come out in reverse term order (jiffy walks the map from its first key and pushes
  each pair onto a stack): ``{"b":2,"a":1}``;
- floats in their shortest round-trip digits, as decimals from 1e-6 up to 1e21 and with an
  exponent outside that range: ``1.0``, ``100000000000000000000.0``, ``1e+21``, ``1.5e-7``;
- strings raw UTF-8 with only ``"``, ``\\`` and control characters escaped (``\\u001F``); bytes
  that are not UTF-8 become U+FFFD (the ``force_utf8`` option);
- `undefined` (``None`` here) is written ``null``.
"""
from __future__ import annotations

import json
import re
from decimal import Decimal

import orjson

from emqpy.rule_engine.funcs_base import SQLFunctionError, sorted_keys, to_bytes

_ESC = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
for _c in range(0x20):
    _ESC.setdefault(chr(_c), "\\u%04X" % _c)
_ESC_TABLE = str.maketrans(_ESC)


def json_float(f: float) -> str:
    """jiffy's (double-conversion's ToShortest) text of a float."""
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError(f"{f} has no JSON form")
    if f == 0.0:
        return "0.0"
    sign, digits, exp = Decimal(repr(f)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    n = len(ds)
    point = exp + len(digits)               # value = 0.<ds> * 10**point
    if -6 <= point - 1 < 21:
        if point <= 0:
            body = "0." + "0" * -point + ds
        elif point >= n:
            body = ds + "0" * (point - n) + ".0"
        else:
            body = ds[:point] + "." + ds[point:]
    else:
        e = point - 1
        body = ds[0] + ("." + ds[1:] if n > 1 else "") + ("e+" if e >= 0 else "e-") + str(abs(e))
    return ("-" if sign else "") + body


def _string(s: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:          # undecodable payload bytes, kept as surrogates
        s = to_bytes(s).decode("utf-8", "replace")
    return '"' + s.translate(_ESC_TABLE) + '"'


def _encode(v, out: list) -> None:
    t = type(v)
    if t is str:
        out.append(_string(v))
    elif t is int:
        out.append(str(v))
    elif t is float:
        out.append(json_float(v))
    elif v is None:
        out.append("null")
    elif t is bool:
        out.append("true" if v else "false")
    elif t is dict:
        if not v:
            out.append("{}")
            return
        sep = "{"
        for k in reversed(sorted_keys(v)):
            if type(k) is not str:
                raise ValueError(f"invalid object member key: {k!r}")
            out.append(sep)
            out.append(_string(k))
            out.append(":")
            _encode(v[k], out)
            sep = ","
        out.append("}")
    elif t is list:
        if not v:
            out.append("[]")
            return
        sep = "["
        for x in v:
            out.append(sep)
            _encode(x, out)
            sep = ","
        out.append("]")
    else:
        raise ValueError(f"{type(v).__name__} value has no JSON form")


def encode(v) -> str:
    """A value as EMQX's JSON text. ValueError for what JSON cannot hold (bitstrings, NaN)."""
    out: list = []
    _encode(v, out)
    return "".join(out)


_LONG_INTEGER = re.compile(rb"(?<![.\deE+-])-?\d{19,}")


def decode(text: str):
    """JSON text (a binary) to a value; ValueError when it is not JSON."""
    data = to_bytes(text)
    if not _LONG_INTEGER.search(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise ValueError(f"invalid JSON: {e}") from None
    # integers beyond 64 bits, which jiffy reads exactly (orjson would make floats of them)
    try:
        return json.loads(data, parse_constant=_no_constant)
    except ValueError as e:
        raise ValueError(f"invalid JSON: {e}") from None


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def json_encode(data):
    try:
        return encode(data)
    except ValueError as e:
        raise SQLFunctionError("json_encode", (data,), str(e)) from None


def json_decode(data):
    if type(data) is not str:
        raise SQLFunctionError("json_decode", (data,), "a JSON string is expected")
    try:
        return decode(data)
    except ValueError as e:
        raise SQLFunctionError("json_decode", (data,), str(e)) from None


FUNCTIONS = {"json_encode": json_encode, "json_decode": json_decode}
