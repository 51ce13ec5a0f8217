"""Arithmetic operators, math and bitwise functions, as Erlang computes them: ``/`` always
gives a float, ``div`` truncates toward zero, ``mod`` is Erlang's ``rem`` (its sign is the
dividend's), ``round`` rounds halves away from zero, and a float result that overflows or a
value outside a function's domain is an error (Erlang has no inf or NaN)."""
from __future__ import annotations

import math
import operator

from emqpy.rule_engine.funcs_base import bad_arg, is_int, is_number, loose_eq, sql_name
from emqpy.rule_engine.funcs_conv import to_str

# Erlang's integers are unbounded but a shift that would build an integer of millions of bits
# fails (system_limit); here the same limit keeps one rule from exhausting memory.
_MAX_SHIFT = 1 << 22


def _float_result(name: str, args, r):
    if type(r) is float and not math.isfinite(r):
        raise bad_arg(name, args, "badarith")
    return r


def _arith(name, op, x, y):
    try:
        return _float_result(name, (x, y), op(x, y))
    except OverflowError:           # an integer too large to mix with a float
        raise bad_arg(name, (x, y), "badarith") from None


@sql_name("+")
def add(x, y):
    if is_number(x) and is_number(y):
        return _arith("+", operator.add, x, y)
    if type(x) is str or type(y) is str:
        # string concatenation; the other operand is converted as `str` does
        return to_str(x, "+") + to_str(y, "+")
    raise bad_arg("+", (x, y), "numbers or strings expected")


@sql_name("-")
def sub(x, y):
    if is_number(x) and is_number(y):
        return _arith("-", operator.sub, x, y)
    raise bad_arg("-", (x, y), "numbers expected")


@sql_name("*")
def mul(x, y):
    if is_number(x) and is_number(y):
        return _arith("*", operator.mul, x, y)
    raise bad_arg("*", (x, y), "numbers expected")


@sql_name("/")
def div_float(x, y):
    if not (is_number(x) and is_number(y)):
        raise bad_arg("/", (x, y), "numbers expected")
    try:
        return _float_result("/", (x, y), float(x) / float(y))
    except (ZeroDivisionError, OverflowError):
        raise bad_arg("/", (x, y), "badarith") from None


def _trunc_div(x: int, y: int) -> int:
    q = abs(x) // abs(y)
    return q if (x < 0) == (y < 0) else -q


@sql_name("div")
def div_int(x, y):
    if not (is_int(x) and is_int(y)):
        raise bad_arg("div", (x, y), "integers expected")
    if y == 0:
        raise bad_arg("div", (x, y), "badarith")
    return _trunc_div(x, y)


@sql_name("mod")
def mod(x, y):
    if not (is_int(x) and is_int(y)):
        raise bad_arg("mod", (x, y), "integers expected")
    if y == 0:
        raise bad_arg("mod", (x, y), "badarith")
    return x - y * _trunc_div(x, y)


# -- math ---------------------------------------------------------------------------------------

@sql_name("abs")
def abs_(n):
    if not is_int(n):
        raise bad_arg("abs", (n,), "an integer is expected")
    return abs(n)


def _math1(name: str, fn):
    @sql_name(name)
    def f(n):
        if not is_number(n):
            raise bad_arg(name, (n,), "a number is expected")
        try:
            return _float_result(name, (n,), fn(n))
        except (ValueError, OverflowError):
            raise bad_arg(name, (n,), "badarith") from None
    return f


def _ceil(n):
    return n if type(n) is int else math.ceil(n)


def _floor(n):
    return n if type(n) is int else math.floor(n)


def _round(n):
    if type(n) is int:
        return n
    a = abs(n)
    r = math.floor(a)
    if a - r >= 0.5:
        r += 1
    return -r if n < 0 else r


def fmod(x, y):
    if not (is_number(x) and is_number(y)):
        raise bad_arg("fmod", (x, y), "numbers expected")
    try:
        return math.fmod(x, y)
    except (ValueError, OverflowError):
        raise bad_arg("fmod", (x, y), "badarith") from None


def power(x, y):
    if not (is_number(x) and is_number(y)):
        raise bad_arg("power", (x, y), "numbers expected")
    try:
        return _float_result("power", (x, y), math.pow(x, y))
    except (ValueError, OverflowError, ZeroDivisionError):
        raise bad_arg("power", (x, y), "badarith") from None


# -- bits ---------------------------------------------------------------------------------------

def _ints(name, *args):
    if not all(is_int(a) for a in args):
        raise bad_arg(name, args, "integers expected")


def bitnot(i):
    _ints("bitnot", i)
    return ~i


def bitand(x, y):
    _ints("bitand", x, y)
    return x & y


def bitor(x, y):
    _ints("bitor", x, y)
    return x | y


def bitxor(x, y):
    _ints("bitxor", x, y)
    return x ^ y


def _shift_left(name, x, n):
    if x and n > _MAX_SHIFT:
        raise bad_arg(name, (x, n), "system_limit")
    return x << n


def bitsl(x, i):
    _ints("bitsl", x, i)
    return _shift_left("bitsl", x, i) if i >= 0 else x >> -i


def bitsr(x, i):
    _ints("bitsr", x, i)
    return x >> i if i >= 0 else _shift_left("bitsr", x, -i)


def eq(x, y):
    return loose_eq(x, y)


FUNCTIONS = {
    "eq": eq, "+": add, "-": sub, "*": mul, "/": div_float, "div": div_int, "mod": mod,
    "abs": abs_, "fmod": fmod, "power": power,
    "ceil": _math1("ceil", _ceil), "floor": _math1("floor", _floor),
    "round": _math1("round", _round),
    "bitnot": bitnot, "bitand": bitand, "bitor": bitor, "bitxor": bitxor,
    "bitsl": bitsl, "bitsr": bitsr,
}
for _name in ("acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "exp", "log",
              "log10", "log2", "sin", "sinh", "sqrt", "tan", "tanh"):
    FUNCTIONS[_name] = _math1(_name, getattr(math, _name))
