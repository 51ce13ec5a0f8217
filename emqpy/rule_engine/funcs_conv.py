"""Type conversions and type tests (EMQX's emqx_utils_conv and the conversion/validation
functions of emqx_rule_funcs): `str`, `str_utf8`, `bool`, `int`, `float`, `float2str`, `map`,
`bin2hexstr`, `hexstr2bin`, `is_*`, `coalesce`, `coalesce_ne`, `null`."""
from __future__ import annotations

import math
import re

from emqpy.rule_engine import funcs_json
from emqpy.rule_engine.funcs_base import (
    BitString, SQLFunctionError, bad_arg, from_bytes, is_int, is_number, printable_latin1,
    sql_name, to_bytes,
)

# Erlang's binary_to_integer / binary_to_float syntax: no spaces, no "1.", no ".5", no "1e5".
_INT_RE = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT_RE = re.compile(r"[+-]?[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?\Z")


def _strip_zeros(text: str) -> str:
    text = text.rstrip("0")
    return text + "0" if text.endswith(".") else text


def _round_half_away(x: float) -> int:
    r = math.floor(x)
    return r + 1 if x - r >= 0.5 else r


def float_decimals(f: float, decimals: int, compact: bool) -> str:
    """``float_to_binary(F, [{decimals, N}])``, with ``compact`` dropping trailing zeros
    (keeping one after the point). Erlang computes the fraction in floating point and rounds
    halves away from zero (0.125 to 2 decimals is 0.13), and writes -0.0 as 0.0; numbers
    beyond 2^53 or 19 decimals and more go through C's printf."""
    af = abs(f)
    if af > 9007199254740992.0 or decimals >= 19:
        text = "%.*f" % (decimals, f)
        return _strip_zeros(text) if compact else text
    if decimals:
        int_part = math.floor(af)
        scale = 10 ** decimals
        frac = _round_half_away((af - int_part) * float(scale))
        if frac >= scale:
            int_part, frac = int_part + 1, 0
        text = f"{int_part}.{frac:0{decimals}d}"
        if compact:
            text = _strip_zeros(text)
    else:
        text = str(_round_half_away(af))
    return "-" + text if f < 0 else text


def to_str(v, function: str = "str") -> str:
    """``emqx_utils_conv:bin/1``: what `str`, `concat` and the `+` of strings make of a value.
    Floats get 10 decimals at most (``2.0``, ``0.3`` for 0.1+0.2); maps and lists that are not
    text become JSON; ``undefined`` is the text ``undefined``."""
    t = type(v)
    if t is str:
        return v
    if t is int:
        return str(v)
    if t is float:
        if not math.isfinite(v):
            raise bad_arg(function, (v,))
        return float_decimals(v, 10, True)
    if t is bool:
        return "true" if v else "false"
    if v is None:
        return "undefined"
    if t is dict:
        return funcs_json.json_encode(v)
    if t is list:
        # a list of Latin-1 character codes is a string in Erlang ("abc" is [97,98,99])
        if all(type(x) is int for x in v) and printable_latin1(v):
            return from_bytes(bytes(v))
        return funcs_json.json_encode(v)
    raise SQLFunctionError(function, (v,), "invalid_bin: cannot be converted to a string")


@sql_name("str")
def str_(data):
    return to_str(data)


def str_utf8(data):
    if type(data) is str:
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            raise bad_arg("str_utf8", (data,), "not valid UTF-8") from None
        return data
    if type(data) is list:
        parts = []
        for x in data:
            if type(x) is int and 0 <= x <= 0x10FFFF and not 0xD800 <= x <= 0xDFFF:
                parts.append(chr(x))
            elif type(x) is str:
                parts.append(str_utf8(x))
            else:
                raise bad_arg("str_utf8", (data,), "not a list of characters")
        return "".join(parts)
    return to_str(data, "str_utf8")


@sql_name("bool")
def bool_(data):
    if data is True or data == "true":
        return True
    if data is False or data == "false":
        return False
    if is_number(data):
        if data == 1:
            return True
        if data == 0:
            return False
    raise bad_arg("bool", (data,), "badarg: expected true, false, 1, 0, \"true\" or \"false\"")


def _parse_int(s: str, function: str, orig):
    if _INT_RE.match(s):
        return int(s)
    if _FLOAT_RE.match(s) and math.isfinite(float(s)):
        return math.floor(float(s))
    raise bad_arg(function, (orig,), "badarg: not a number")


@sql_name("int")
def int_(data):
    t = type(data)
    if t is int:
        return data
    if t is float:
        if not math.isfinite(data):
            raise bad_arg("int", (data,))
        return math.floor(data)
    if t is bool:
        return 1 if data else 0
    if t is str:
        return _parse_int(data, "int", data)
    raise bad_arg("int", (data,), "badarg: cannot be converted to an integer")


def to_float(data, function: str = "float") -> float:
    t = type(data)
    if t is float:
        return data
    if t is int:
        try:
            return float(data)
        except OverflowError:
            raise bad_arg(function, (data,), "badarg: too large for a float") from None
    if t is str:
        if _FLOAT_RE.match(data):
            f = float(data)
        elif _INT_RE.match(data):
            try:
                f = float(int(data))
            except OverflowError:
                f = math.inf
        else:
            raise bad_arg(function, (data,), "badarg: not a number")
        if not math.isfinite(f):
            raise bad_arg(function, (data,), "badarg: too large for a float")
        return f
    raise bad_arg(function, (data,), "badarg: cannot be converted to a float")


@sql_name("float")
def float_(data, decimals=None):
    f = to_float(data)
    if decimals is None:
        return f
    if not is_int(decimals) or decimals <= 0 or decimals > 253:
        raise bad_arg("float", (data, decimals), "decimals must be an integer from 1 to 253")
    return float(float_decimals(f, decimals, False))


def float2str(f, precision):
    if type(f) is not float or not is_int(precision) or not 0 <= precision <= 253:
        raise bad_arg("float2str", (f, precision),
                      "expects a float and a number of decimals from 0 to 253")
    return float_decimals(f, precision, True)


def to_map(data, function: str = "map") -> dict:
    """`map` of a value: a map, a JSON object's text, or [] (Erlang's maps:from_list([]))."""
    t = type(data)
    if t is dict:
        return data
    if t is str:
        try:
            m = funcs_json.decode(data)
        except ValueError:
            m = None
        if type(m) is dict:
            return m
    elif t is list and not data:
        return {}
    raise bad_arg(function, (data,), "badarg: not a map, nor a JSON object")


@sql_name("map")
def map_(data):
    return to_map(data)


def bin2hexstr(data):
    if type(data) is str:
        return to_bytes(data).hex().upper()
    if isinstance(data, BitString):
        pad = -data.nbits % 8
        text = data.to_int().to_bytes((data.nbits + pad) // 8, "big").hex().upper()
        return text[1:] if pad >= 4 else text
    raise bad_arg("bin2hexstr", (data,), "a binary is expected")


def hexstr2bin(data):
    if type(data) is not str:
        raise bad_arg("hexstr2bin", (data,), "a hex string is expected")
    text = data if len(to_bytes(data)) % 2 == 0 else "0" + data
    if not re.fullmatch(r"[0-9A-Fa-f]*", text):
        raise bad_arg("hexstr2bin", (data,), "not a hex string")
    return from_bytes(bytes.fromhex(text))


# -- type tests ---------------------------------------------------------------------------------
# JSON null and EMQX's `undefined` are both None here, so `is_null` and `is_null_var` agree.

def is_null(data):
    return data is None


def is_null_var(data):
    return data is None


def is_not_null(data):
    return data is not None


def is_not_null_var(data):
    return data is not None


def is_str(data):
    return type(data) is str


def is_bool(data):
    return type(data) is bool


def is_int_(data):
    return type(data) is int


def is_float(data):
    return type(data) is float


def is_num(data):
    return is_number(data)


def is_map(data):
    return type(data) is dict


def is_array(data):
    return type(data) is list


def null():
    return None


def coalesce(a, *rest):
    """coalesce(List) returns its first non-null element; coalesce(A, B) is coalesce([A, B])."""
    if rest:
        if len(rest) > 1:
            raise TypeError(f"coalesce() takes 1 or 2 arguments but {1 + len(rest)} were given")
        items = (a, rest[0])
    elif type(a) is list:
        items = a
    else:
        raise bad_arg("coalesce", (a,), "a list is expected")
    for x in items:
        if x is not None:
            return x
    return None


def coalesce_ne(a, *rest):
    """Like coalesce, but an empty string (or empty list, which is Erlang's "") is null too."""
    if rest:
        if len(rest) > 1:
            raise TypeError(f"coalesce_ne() takes 1 or 2 arguments but {1 + len(rest)} were given")
        items = (a, rest[0])
    elif type(a) is list:
        items = a
    else:
        raise bad_arg("coalesce_ne", (a,), "a list is expected")
    for x in items:
        if x is not None and x != "" and x != []:
            return x
    return None


FUNCTIONS = {
    "str": str_, "str_utf8": str_utf8, "bool": bool_, "int": int_, "float": float_,
    "float2str": float2str, "map": map_, "bin2hexstr": bin2hexstr, "hexstr2bin": hexstr2bin,
    "is_null": is_null, "is_null_var": is_null_var, "is_not_null": is_not_null,
    "is_not_null_var": is_not_null_var, "is_str": is_str, "is_bool": is_bool,
    "is_int": sql_name("is_int")(is_int_), "is_float": is_float, "is_num": is_num,
    "is_map": is_map, "is_array": is_array, "null": null, "coalesce": coalesce,
    "coalesce_ne": coalesce_ne,
}
