"""Map and array functions: port of emqx_rule_funcs_SUITE's t_nth .. t_map_to_entries."""
import pytest

from emqpy.rule_engine.funcs import SQLFunctionError

from .funcs_helpers import call


def test_nth():
    assert call("nth", 2, [1, 2, 3, 4]) == 2
    assert call("nth", 4, [1, 2, 3, 4]) == 4


def test_nth_out_of_range_is_an_error():
    for n in (0, 5, -1):
        with pytest.raises(SQLFunctionError):
            call("nth", n, [1, 2, 3, 4])
    with pytest.raises(SQLFunctionError):
        call("nth", "1", [1])
    with pytest.raises(SQLFunctionError):
        call("nth", 1, "abc")


def test_length():
    assert call("length", [1, 2, 3, 4]) == 4
    assert call("length", []) == 0
    with pytest.raises(SQLFunctionError):
        call("length", "abc")


def test_slice():
    assert call("sublist", 4, [1, 2, 3, 4]) == [1, 2, 3, 4]
    assert call("sublist", 2, [1, 2, 3, 4]) == [1, 2]
    assert call("sublist", 4, 1, [1, 2, 3, 4]) == [4]
    assert call("sublist", 4, 2, [1, 2, 3, 4]) == [4]
    assert call("sublist", 5, 2, [1, 2, 3, 4]) == []
    assert call("sublist", 2, 2, [1, 2, 3, 4]) == [2, 3]
    assert call("sublist", 1, 1, [1, 2, 3, 4]) == [1]


def test_slice_edges():
    assert call("sublist", 9, [1]) == [1]
    assert call("sublist", 0, [1]) == []
    assert call("sublist", 9, 1, [1, 2]) == []
    for args in ((-1, [1]), (0, 1, [1]), (1, -1, [1]), (1.0, [1])):
        with pytest.raises(SQLFunctionError):
            call("sublist", *args)


def test_first_last():
    assert call("first", [1, 2, 3, 4]) == 1
    assert call("last", [1, 2, 3, 4]) == 4
    for f in ("first", "last"):
        with pytest.raises(SQLFunctionError):
            call(f, [])


def test_contains():
    assert call("contains", 1, [1, 2, 3, 4]) is True
    assert call("contains", 3, [1, 2, 3, 4]) is True
    assert call("contains", "a", ["", "ab", 3, "a"]) is True
    assert call("contains", {"a": "b"}, [{"a": 1}, {"a": "b"}]) is True
    assert call("contains", {"a": "b"}, [{"a": 1}]) is False
    assert call("contains", 3, [1, 2]) is False
    assert call("contains", "c", ["", "ab", 3, "a"]) is False


def test_contains_matches_exactly():
    assert call("contains", 1, [1.0]) is False
    assert call("contains", 1, [True]) is False
    assert call("contains", [1], [[1]]) is True


def test_map_get():
    assert call("map_get", "a", {"a": 1}) == 1
    assert call("map_get", "a", {}) is None
    assert call("map_get", "a.b", {"a": {"b": 1}}) == 1
    assert call("map_get", "a.c", {"a": {"b": 1}}) is None
    assert call("map_get", "a", {}) is None


def test_map_get_default_json_and_null():
    assert call("map_get", "a.c", {"a": {"b": 1}}, "dflt") == "dflt"
    assert call("map_get", "a.b", '{"a": {"b": 2}}') == 2
    assert call("map_get", "a.b", {"a": '{"b": 3}'}) == 3
    assert call("map_get", "a", {"a": None}, "dflt") is None
    assert call("map_get", "a.b", {"a": None}, "dflt") == "dflt"
    assert call("map_get", "a", "not json", "dflt") == "dflt"
    with pytest.raises(SQLFunctionError):
        call("map_get", 1, {})


def test_map_put():
    assert call("map_put", "a", 1, {}) == {"a": 1}
    assert call("map_put", "a", 2, {"a": 1}) == {"a": 2}
    assert call("map_put", "a.b", 1, {}) == {"a": {"b": 1}}
    assert call("map_put", "a.c", 1, {"a": {"b": 1}}) == {"a": {"b": 1, "c": 1}}


def test_map_put_leaves_its_input_alone():
    m = {"a": {"b": 1}}
    out = call("map_put", "a.c", 2, m)
    assert m == {"a": {"b": 1}}
    assert out == {"a": {"b": 1, "c": 2}}
    assert call("map_put", "a", 1, "not a map") == {"a": 1}
    assert call("map_put", "a.b", 1, {"a": 5}) == {"a": {"b": 1}}


def test_mget():
    assert call("mget", "a", {"a": 1}) == 1
    assert call("mget", "a", '{"a" : 1}') == 1
    assert call("mget", "a.b", {"a.b": 1}) == 1
    assert call("mget", "a", {}) is None
    assert call("mget", "a", {}, 0) == 0
    with pytest.raises(SQLFunctionError):
        call("mget", "a", "not json")


def test_mput():
    assert call("mput", "a", 1, {}) == {"a": 1}
    assert call("mput", "a", 2, {"a": 1}) == {"a": 2}
    assert call("mput", "a", 2, '{"a" : 1}') == {"a": 2}
    assert call("mput", "a.b", 2, {"a.b": 1}) == {"a.b": 2}


def test_map_keys_values_in_erlang_order():
    m = {"c": 3, "a": 1, "b": 2}
    assert call("map_keys", m) == ["a", "b", "c"]
    assert call("map_values", m) == [1, 2, 3]
    assert call("map_new") == {}


def test_map_to_entries():
    assert call("map_to_entries", {}) == []
    m = {"b": "b", "a": 1}
    expected = [{"key": "a", "value": 1}, {"key": "b", "value": "b"}]
    assert call("map_to_entries", m) == expected
    assert call("map_to_entries", '{"a":1,"b":"b"}') == expected
