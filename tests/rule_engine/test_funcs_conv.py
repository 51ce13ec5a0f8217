"""Conversions and type tests: port of emqx_rule_funcs_SUITE (t_str .. t_coalesce_ne) and
emqx_utils_conv_tests, plus the edge cases of EMQX's number formatting."""
import pytest
from hypothesis import given, strategies as st

from emqpy.rule_engine.funcs import SQLFunctionError

from .funcs_helpers import call


def test_str():
    assert call("str", "abc") == "abc"
    assert call("str", {"a": 1}) == '{"a":1}'
    assert call("str", [{"a": 1}, {"b": 1}]) == '[{"a":1},{"b":1}]'
    assert call("str", 1) == "1"
    assert call("str", 2.0) == "2.0"
    assert call("str", True) == "true"
    with pytest.raises(SQLFunctionError):
        call("str", object())


def test_str_of_floats_keeps_ten_decimals_at_most():
    assert call("str", 0.1 + 0.2) == "0.3"
    assert call("str", 1 / 3) == "0.3333333333"
    assert call("str", 1e-11) == "0.0"
    assert call("str", -0.5) == "-0.5"
    assert call("str", 1e20) == "100000000000000000000.0"
    assert call("str", 123456.789) == "123456.789"
    assert call("str", -0.0) == "0.0"
    assert call("str", 1e-11) == "0.0"
    assert call("str", -1e-11) == "-0.0"


def test_str_of_lists_and_undefined():
    assert call("str", [97, 98]) == "ab"          # a list of character codes is a string
    assert call("str", []) == ""
    assert call("str", [1, 2]) == "[1,2]"
    assert call("str", None) == "undefined"


def test_str_utf8():
    assert call("str_utf8", "abc") == "abc"
    assert call("str_utf8", "abc 你好") == "abc 你好"
    assert call("str_utf8", [ord(c) for c in "abc 你好"]) == "abc 你好"
    assert call("str_utf8", {"a": "abc 你好"}) == '{"a":"abc 你好"}'
    assert call("str_utf8", 1) == "1"
    assert call("str_utf8", 2.0) == "2.0"
    assert call("str_utf8", True) == "true"
    with pytest.raises(SQLFunctionError):
        call("str_utf8", object())
    with pytest.raises(SQLFunctionError):
        call("str_utf8", b"\xff".decode("utf-8", "surrogateescape"))


def test_int():
    assert call("int", "1") == 1
    assert call("int", "1.0") == 1
    assert call("int", 1) == 1
    assert call("int", 1.9) == 1
    assert call("int", 1.0001) == 1
    assert call("int", True) == 1
    assert call("int", False) == 0
    assert call("int", -1.5) == -2                # floor, as Erlang's
    assert call("int", "-1.5") == -2
    with pytest.raises(SQLFunctionError):
        call("int", [1])
    for bad in ("a", " 1", "1e5", "1.", ".5", "", None):
        with pytest.raises(SQLFunctionError):
            call("int", bad)


def test_float():
    assert call("float", "1.0") == 1.0
    assert call("float", 1) == 1.0 and type(call("float", 1)) is float
    assert call("float", 1.0) == 1.0
    assert call("float", 1.9) == 1.9
    assert call("float", 1.0001) == 1.0001
    assert call("float", 1.0000000001) == 1.0000000001
    assert call("float", "1") == 1.0
    assert call("float", "-2.5e3") == -2500.0
    with pytest.raises(SQLFunctionError):
        call("float", {"a": "v"})
    for bad in ("a", "1e5", " 1.0", True, None):
        with pytest.raises(SQLFunctionError):
            call("float", bad)


def test_float_with_decimals():
    assert call("float", 3.14159, 2) == 3.14
    assert call("float", "2.5", 3) == 2.5
    assert call("float", 1, 1) == 1.0
    for bad in (0, -1, 1.5):
        with pytest.raises(SQLFunctionError):
            call("float", 1.0, bad)


def test_map():
    assert call("map", {"ver": "1.0", "name": "emqx"}) == {"ver": "1.0", "name": "emqx"}
    assert call("map", '{"a":1}') == {"a": 1}
    assert call("map", []) == {}
    for bad in ("a", "[1]", 1.0, [1, 2]):
        with pytest.raises(SQLFunctionError):
            call("map", bad)


def test_bool():
    assert call("bool", 1) is True
    assert call("bool", 1.0) is True
    assert call("bool", 0) is False
    assert call("bool", 0.0) is False
    assert call("bool", True) is True
    assert call("bool", "true") is True
    assert call("bool", False) is False
    assert call("bool", "false") is False
    for bad in (3, "1", "True", None):
        with pytest.raises(SQLFunctionError):
            call("bool", bad)


def test_float2str():
    assert call("float2str", 20.2, 1) == "20.2"
    assert call("float2str", 20.2, 10) == "20.2"
    assert call("float2str", 20.2, 15) == "20.199999999999999"
    assert call("float2str", 20.2, 16) == "20.1999999999999993"
    assert call("float2str", 2.0, 3) == "2.0"
    # Erlang rounds the fraction computed in floating point, halves away from zero
    assert call("float2str", 0.125, 2) == "0.13"
    assert call("float2str", -0.125, 2) == "-0.13"
    assert call("float2str", 2.5, 0) == "3"
    assert call("float2str", 0.999, 2) == "1.0"
    assert call("float2str", 1e20, 1) == "100000000000000000000.0"
    # beyond 2^53 Erlang prints with printf and its compaction strips an integer's zeros
    assert call("float2str", 1e20, 0) == "1"
    with pytest.raises(SQLFunctionError):
        call("float2str", 20, 1)


def test_hexstr2bin():
    assert call("hexstr2bin", "6364f") == bytes([6, 54, 79]).decode("utf-8", "surrogateescape")
    assert call("hexstr2bin", "a") == "\n"
    assert call("hexstr2bin", "f") == "\x0f"
    assert call("hexstr2bin", "5") == "\x05"
    assert call("hexstr2bin", "0102") == "\x01\x02"
    assert call("hexstr2bin", "1121") == "\x11!"
    with pytest.raises(SQLFunctionError):
        call("hexstr2bin", "zz")


def test_bin2hexstr():
    assert call("bin2hexstr", "\x01\x02") == "0102"
    assert call("bin2hexstr", "\x11!") == "1121"
    assert call("bin2hexstr", "\udcff") == "FF"          # a payload byte that is not UTF-8


def _bits(value, nbits):
    from emqpy.rule_engine.funcs_base import BitString
    return BitString.from_int(value, nbits)


def test_bin2hexstr_not_even_bytes():
    # <<1:5, 2>>, <<16:5, 2>>, ... as EMQX's case builds them
    assert call("bin2hexstr", _bits(1 << 8 | 2, 13)) == "0102"
    assert call("bin2hexstr", _bits(16 << 8 | 2, 13)) == "1002"
    assert call("bin2hexstr", _bits(16 << 8 | 2, 16)) == "1002"
    assert call("bin2hexstr", _bits(1 << 8 | 2, 12)) == "102"
    assert call("bin2hexstr", _bits(1 << 8 | 2, 11)) == "102"
    assert call("bin2hexstr", _bits(1 << 8 | 2, 9)) == "102"
    assert call("bin2hexstr", _bits((2 & 1) << 8 | 2, 9)) == "002"
    assert call("bin2hexstr", _bits(2, 8)) == "02"
    assert call("bin2hexstr", _bits(2, 2)) == "2"
    assert call("bin2hexstr", _bits(17 << 8 | 33, 16)) == "1121"
    assert call("bin2hexstr", _bits(17 << 8 | 33, 17)) == "01121"


@given(st.binary())
def test_hex_convert(data):
    s = data.decode("utf-8", "surrogateescape")
    assert call("hexstr2bin", call("bin2hexstr", s)) == s


def test_is_null():
    assert call("is_null", None) is True
    assert call("is_null", "undefined") is False
    assert call("is_null", "a") is False
    assert call("is_null", "") is False


def test_is_null_var():
    assert call("is_null_var", None) is True
    assert call("is_null_var", "null") is False
    assert call("is_null_var", "undefined") is False
    assert call("is_null_var", "") is False
    assert call("is_null_var", "a") is False


@pytest.mark.parametrize("value", [None, "undefined", "null", "a", ""])
def test_is_not_null(value):
    assert call("is_not_null", value) is (not call("is_null", value))
    assert call("is_not_null_var", value) is (not call("is_null_var", value))


def test_is_str():
    for v in ("a", "", "abc"):
        assert call("is_str", v) is True
    for v in ([97], 1, None):
        assert call("is_str", v) is False


def test_is_bool():
    for v in (True, False):
        assert call("is_bool", v) is True
    for v in ("a", "", 2, 1, 0):
        assert call("is_bool", v) is False


def test_is_int():
    for v in (1, 2, -1):
        assert call("is_int", v) is True
    for v in (1.1, "a", True):
        assert call("is_int", v) is False


def test_is_float():
    for v in (1.1, 2.0, -1.2):
        assert call("is_float", v) is True
    for v in (1, "a", ""):
        assert call("is_float", v) is False


def test_is_num():
    for v in (1.1, 2.0, -1.2, 1):
        assert call("is_num", v) is True
    for v in ("a", "", True):
        assert call("is_num", v) is False


def test_is_map():
    for v in ({}, {"a": 1}):
        assert call("is_map", v) is True
    for v in ("a", "", []):
        assert call("is_map", v) is False


def test_is_array():
    for v in ([], [1, 2]):
        assert call("is_array", v) is True
    for v in ("", "a", {}):
        assert call("is_array", v) is False


def test_coalesce():
    assert call("coalesce", []) is None
    assert call("coalesce", [None, None, None]) is None
    assert call("coalesce", [None, 42, None]) == 42
    assert call("coalesce", ["hello", None]) == "hello"
    assert call("coalesce", ["world"]) == "world"
    assert call("coalesce", "hello", "world") == "hello"
    assert call("coalesce", None, "world") == "world"
    assert call("coalesce", "", "world") == ""


def test_coalesce_ne():
    assert call("coalesce_ne", []) is None
    assert call("coalesce_ne", ["", None, []]) is None
    assert call("coalesce_ne", ["", 42, None]) == 42
    assert call("coalesce_ne", ["hello", ""]) == "hello"
    assert call("coalesce_ne", ["world"]) == "world"
    assert call("coalesce_ne", "hello", "world") == "hello"
    assert call("coalesce_ne", "", "world") == "world"


def test_null():
    assert call("null") is None


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_str_of_any_float_reads_back_within_its_ten_decimals(f):
    text = call("str", f)
    assert float(text) == f or abs(float(text) - f) <= 5.1e-11
    assert "." in text and "e" not in text
