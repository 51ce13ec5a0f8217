"""Arithmetic, math and bit functions: port of emqx_rule_funcs_SUITE's t_arith_op, t_math_fun
and t_bits_op properties, and Erlang's integer division and rounding."""
import math

import pytest
from hypothesis import given, strategies as st

from emqpy.rule_engine.funcs import SQLFunctionError

from .funcs_helpers import call

numbers = st.one_of(st.integers(-10**12, 10**12),
                    st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False))


def erlang_rem(x, y):
    r = abs(x) % abs(y)
    return -r if x < 0 else r


@given(numbers, numbers)
def test_arith_op(x, y):
    assert call("+", x, y) == x + y
    assert call("-", x, y) == x - y
    assert call("*", x, y) == x * y
    if y != 0:
        assert call("/", x, y) == float(x) / float(y)
    if type(x) is int and type(y) is int and y > 0:
        assert call("mod", x, y) == erlang_rem(x, y)


def test_division_is_always_float_and_div_truncates():
    assert call("/", 4, 2) == 2.0 and type(call("/", 4, 2)) is float
    assert call("/", 1, 3) == 1 / 3
    assert call("div", 7, 2) == 3
    assert call("div", -7, 2) == -3
    assert call("div", 7, -2) == -3
    assert call("mod", -7, 2) == -1
    assert call("mod", 7, -2) == 1
    for op in ("/", "div", "mod"):
        with pytest.raises(SQLFunctionError, match="badarith"):
            call(op, 1, 0)
    with pytest.raises(SQLFunctionError):
        call("div", 7.0, 2)
    with pytest.raises(SQLFunctionError):
        call("mod", 7, 2.0)


def test_plus_concatenates_when_either_side_is_a_string():
    assert call("+", "a", "b") == "ab"
    assert call("+", "a", 1) == "a1"
    assert call("+", 1.5, "x") == "1.5x"
    assert call("+", "v", True) == "vtrue"
    with pytest.raises(SQLFunctionError):
        call("+", 1, None)
    with pytest.raises(SQLFunctionError):
        call("+", True, 1)          # a boolean is not a number
    with pytest.raises(SQLFunctionError):
        call("-", "a", "b")


def test_float_overflow_is_an_error_not_infinity():
    with pytest.raises(SQLFunctionError, match="badarith"):
        call("*", 1e308, 10.0)
    with pytest.raises(SQLFunctionError, match="badarith"):
        call("exp", 1000)
    with pytest.raises(SQLFunctionError, match="badarith"):
        call("sqrt", -1)
    with pytest.raises(SQLFunctionError, match="badarith"):
        call("log", 0)


def test_eq_compares_numbers_by_value():
    assert call("eq", 1, 1.0) is True
    assert call("eq", "a", "a") is True
    assert call("eq", True, 1) is False
    assert call("eq", {"a": 1}, {"a": 1.0}) is True


MATH_FUNS = ["acosh", "asinh", "atan", "ceil", "cos", "cosh", "exp", "floor", "log", "log10",
             "log2", "sin", "sinh", "sqrt", "tan", "tanh"]


@given(st.integers(1, 10**6), st.integers(1, 10**6))
def test_math_fun(x, y):
    for f in MATH_FUNS:
        if f in ("exp", "sinh", "cosh") and x >= 710:
            continue
        assert getattr(math, f)(x) == call(f, x), f
    assert math.fmod(x, y) == call("fmod", x, y)
    assert math.pow(x, 2) == call("power", x, 2)


def test_abs_ceil_floor_round():
    assert call("abs", -3) == 3
    with pytest.raises(SQLFunctionError):
        call("abs", -1.5)            # EMQX's abs takes integers only
    assert call("ceil", 1.2) == 2 and type(call("ceil", 1.2)) is int
    assert call("floor", -1.2) == -2
    assert call("round", 2.5) == 3
    assert call("round", -2.5) == -3
    assert call("round", 0.49999999999999994) == 0
    assert call("round", 7) == 7


@given(st.integers(-2**70, 2**70), st.integers(-200, 200))
def test_bits_op(x, y):
    assert call("bitnot", x) == ~x
    assert call("bitand", x, y) == x & y
    assert call("bitor", x, y) == x | y
    assert call("bitxor", x, y) == x ^ y
    assert call("bitsl", x, y) == (x << y if y >= 0 else x >> -y)
    assert call("bitsr", x, y) == (x >> y if y >= 0 else x << -y)


def test_bits_need_integers_and_bounded_shifts():
    with pytest.raises(SQLFunctionError):
        call("bitand", 1.0, 1)
    with pytest.raises(SQLFunctionError, match="system_limit"):
        call("bitsl", 1, 10**9)
    assert call("bitsl", 0, 10**9) == 0
