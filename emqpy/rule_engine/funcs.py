"""The rule SQL's built-in functions (EMQX's emqx_rule_funcs, with what it takes from
emqx_variform_bif and emqx_utils), looked up by name when a rule is compiled.

    lookup(name) -> (fn, needs_columns) | None

The compiler calls ``fn(*args)``, or ``fn(columns, *args)`` when `needs_columns`, with the
arguments already evaluated. Names match case-sensitively, as EMQX's do (``UPPER`` is not
``upper``). The arithmetic operators are here under their symbols: ``+ - * / div mod``.

A call with arguments a function does not take raises: TypeError for a wrong number of them
(naming the function), SQLFunctionError for a wrong type or value (naming the function, its
arguments and what was wrong). The runtime counts either as ``failed.exception``.

The functions live in area modules, each with its own FUNCTIONS table: funcs_conv
(conversions and type tests), funcs_math, funcs_string, funcs_regex, funcs_format (sprintf),
funcs_json, funcs_map (maps and arrays), funcs_codec (hashes, base64, compression, term
codec, bits), funcs_time, funcs_jq, funcs_msg (the event's fields, topic filters, state).
"""
from __future__ import annotations

from typing import Callable

from emqpy.rule_engine import (
    funcs_codec, funcs_conv, funcs_format, funcs_jq, funcs_json, funcs_map, funcs_math,
    funcs_msg, funcs_regex, funcs_string, funcs_time,
)
from emqpy.rule_engine.funcs_base import SQLFunctionError

__all__ = ["lookup", "names", "SQLFunctionError"]

_TABLE: dict[str, tuple[Callable, bool]] = {}
for _module in (funcs_conv, funcs_math, funcs_string, funcs_regex, funcs_format, funcs_json,
                funcs_map, funcs_codec, funcs_time, funcs_jq, funcs_msg):
    for _name, _fn in _module.FUNCTIONS.items():
        assert _name not in _TABLE, f"rule function {_name} defined twice"
        _TABLE[_name] = (_fn, False)
for _name, _fn in funcs_msg.COLUMN_FUNCTIONS.items():
    assert _name not in _TABLE, f"rule function {_name} defined twice"
    _TABLE[_name] = (_fn, True)


def lookup(name: str) -> tuple[Callable, bool] | None:
    """(function, needs_columns) for a rule SQL function or operator name, None if there is
    no such function."""
    return _TABLE.get(name)


def names() -> list[str]:
    """Every function and operator name, sorted."""
    return sorted(_TABLE)
