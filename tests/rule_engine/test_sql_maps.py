"""Nested get/put (emqpy.rule_engine.maps): EMQX 5.8.1's emqx_rule_maps_SUITE, same cases (Erlang
atoms as strings; atom and binary keys are one kind of key in the value model)."""
from __future__ import annotations

import orjson
import pytest

from emqpy.rule_engine.maps import nested_get, nested_put, range_gen, range_get


def P(*steps):
    """EMQX's ?path macro: a key, ("ic", n) a constant index, ("iv", name) an index read from
    a name, ("i", path) an index read from a path."""
    out = []
    for step in steps:
        if isinstance(step, str):
            out.append(("key", step))
        elif step[0] == "ic":
            out.append(("index", ("const", step[1])))
        elif step[0] == "iv":
            out.append(("index", ("var", step[1])))
        else:
            out.append(("index", step[1]))
    return ("path", tuple(out))


def js(value) -> str:
    return orjson.dumps(value).decode()


@pytest.mark.parametrize("path, value, data, expected", [
    (P("a"), 1, {}, {"a": 1}),
    (P("a"), "a", {}, {"a": "a"}),
    (P("a"), None, {}, {"a": None}),
    (P("a"), 1, "not_map", {"a": 1}),
    (P("a", "b"), "b", {}, {"a": {"b": "b"}}),
    (P("a", "b", "c"), "c", {}, {"a": {"b": {"c": "c"}}}),
    (P("k"), "v1", {"k": "v0"}, {"k": "v1"}),
    (P("k"), "v1", {"k": "v0", "a": "b"}, {"k": "v1", "a": "b"}),
    (P("k", "t"), "v1", {"k": {"t": "v0"}}, {"k": {"t": "v1"}}),
    (P("k", "t", "a"), "v1", {"k": {"t": "v0"}}, {"k": {"t": {"a": "v1"}}}),
    # a JSON string on the way is read to find the key, then replaced by a new map...
    (P("payload", "a"), "v1", {"payload": js({"b": "v2"})}, {"payload": {"a": "v1"}}),
    # ...so what lies on the path itself survives
    (P("payload", "a", "new"), "v1", {"payload": js({"a": {"old": "v2"}})},
     {"payload": {"a": {"new": "v1", "old": "v2"}}}),
    (P("payload", "a", "new"), "v1", {"payload": js({"a": {"old": "{}"}, "b": "{}"})},
     {"payload": {"a": {"new": "v1", "old": "{}"}}}),
    (P("payload", "a", "new"), "v1", {"payload": "{}"}, {"payload": {"a": {"new": "v1"}}}),
])
def test_nested_put_map(path, value, data, expected):
    before = orjson.dumps(data)
    assert nested_put(path, value, data) == expected
    assert orjson.dumps(data) == before  # puts copy, never change what they were given


@pytest.mark.parametrize("path, data, expected", [
    (P(("ic", 2)), [1, 2, 3], [1, "a", 3]),
    (P(("ic", 0)), [1, 2, 3], [1, 2, 3]),
    (P(("ic", 4)), [1, 2, 3], [1, 2, 3]),
    (P(("ic", 2), ("ic", 1)), [1, [2], 3], [1, ["a"], 3]),
    (P(("ic", 2), ("ic", 1), ("ic", 1)), [1, [[2]], 3], [1, [["a"]], 3]),
    (P(("ic", 2), ("ic", 1), ("ic", 2)), [1, [[2]], 3], [1, [[2]], 3]),
    (P(("ic", 2), ("i", P(("ic", 3)))), [1, [2], 1], [1, ["a"], 1]),
    (P(("ic", "head")), "not_list", ["a"]),
    (P(("ic", "head")), [], ["a"]),
    (P(("ic", "head")), [1, 2, 3], ["a", 1, 2, 3]),
    (P(("ic", "tail")), "not_list", ["a"]),
    (P(("ic", "tail")), [], ["a"]),
    (P(("ic", "tail")), [1, 2, 3], [1, 2, 3, "a"]),
    (P(("ic", -1)), [1, 2, 3], [1, 2, "a"]),
    (P(("ic", -2)), [1, 2, 3], [1, "a", 3]),
    (P(("ic", -3)), [1, 2, 3], ["a", 2, 3]),
    (P(("ic", -4)), [1, 2, 3], [1, 2, 3]),
])
def test_nested_put_index(path, data, expected):
    assert nested_put(path, "a", data) == expected


@pytest.mark.parametrize("path, value, data, expected", [
    (P("a", ("ic", 2)), "a", {}, {"a": ["a"]}),
    (P("a", ("ic", 2), "b"), 0, {}, {"a": [{"b": 0}]}),
    (P("a", ("ic", 2)), "a", {"a": [1, 2, 3]}, {"a": [1, "a", 3]}),
    (P(("ic", 2), "a"), "c", [1, {"a": "b"}, 3], [1, {"a": "c"}, 3]),
    (P(("ic", 2), "a", ("ic", 1)), "c", [1, {"a": ["b"]}, 3], [1, {"a": ["c"]}, 3]),
    (P("a", ("iv", "b")), "a", {"a": [1, 2, 3], "b": 2}, {"a": [1, "a", 3], "b": 2}),
    (P("a", ("iv", "c")), "a", {"a": [1, 2, 3], "b": 2}, {"a": [1, 2, 3], "b": 2}),
    (P("a", ("ic", "head"), "c"), "a", {"a": [1, 2, 3]}, {"a": [{"c": "a"}, 1, 2, 3]}),
])
def test_nested_put_mix_map_index(path, value, data, expected):
    assert nested_put(path, value, data) == expected


def test_nested_put_var():
    assert nested_put(("var", "k"), 1, {"k": 0, "x": 2}) == {"k": 1, "x": 2}
    assert nested_put(("var", "k"), 1, None) == {"k": 1}


@pytest.mark.parametrize("path, data, expected", [
    (P("a"), "not_map", None),
    (P(), {"a": 1}, {"a": 1}),
    (P("a"), {"a": {"b": "c"}}, {"b": "c"}),
    (P("a", "b", "c"), "not_map", None),
    (P("a", "b", "c"), {}, None),
    (P("a", "b", "c"), {"a": {}}, None),
    (P("a", "b", "c"), {"a": {"b": {}}}, None),
    (P("p", "x"), {"p": {"x": "v1"}}, "v1"),
    (P("a", "b", "c"), {"a": {"b": {"c": "c"}}}, "c"),
    # JSON strings are read on the way
    (P("a"), '{"a": 1}', 1),
    (P("a"), {"a": '{"b": 1}'}, '{"b": 1}'),
    (P("a", "b"), {"a": '{"b": 1}'}, 1),
])
def test_nested_get_map(path, data, expected):
    assert nested_get(path, data) == expected


@pytest.mark.parametrize("path, data, expected", [
    (P(("ic", 1)), [1, 2, 3], 1),
    (P(("ic", 2)), [1, 2, 3], 2),
    (P(("ic", 3)), [1, 2, 3], 3),
    (P(("ic", 0)), [1, 2, 3], None),
    (P(("ic", 4)), [1, 2, 3], None),
    (P(("ic", 2), ("ic", 3)), [1, ["a", "b", "c"], 3], "c"),
    (P(("ic", 2), ("ic", 3), ("ic", 1)), [1, ["a", "b", ["I", "II", "III"]], 3], "I"),
    (P(("ic", 2), ("ic", 1), ("ic", 1)), [1, ["a", "b", ["I", "II", "III"]], 3], None),
    (P(("ic", -1)), [1, 2, 3], 3),
    (P(("ic", -2)), [1, 2, 3], 2),
    (P(("ic", -3)), [1, 2, 3], 1),
    (P(("ic", -4)), [1, 2, 3], None),
    (P("a", ("ic", 1)), {"a": [1, 2, 3]}, 1),
    (P(("ic", 2), "a"), [1, {"a": 2}, 3], 2),
    (P("a", ("ic", 0)), {"a": [1, 2, 3]}, None),
    (P(("ic", 4), "a"), [1, 2, 3, 4], None),
    (P("a", ("ic", 2), ("ic", 3)), {"a": [1, ["a", "b", "c"], 3]}, "c"),
    (P(("ic", 2), "c", ("ic", 1)), [1, {"a": "a", "b": "b", "c": ["I", "II", "III"]}, 3], "I"),
    (P(("ic", 2), "c", "d"), [1, {"a": "a", "b": "b", "c": {"d": "I"}}, 3], "I"),
    (P(("ic", 2), "c", "e"), [1, {"a": "a", "b": "b", "c": {"d": "I"}}, 3], None),
    (P("a", ("iv", "b")), {"a": [1, 2, 3], "b": 1}, 1),
    (P("a", ("iv", "c")), {"a": [1, 2, 3], "b": 1}, None),
    (P("a", ("iv", "b")), {"a": [1, 2, 3], "b": 4}, None),
    (P(("i", P(("ic", 3))), "c", "d"), [1, {"a": "a", "b": "b", "c": {"d": "I"}}, 2], "I"),
    (P("a", ("i", P("b", ("ic", 1), "c"))), {"a": [1, 2, 3], "b": [{"c": 3}]}, 3),
])
def test_nested_get_index(path, data, expected):
    assert nested_get(path, data) == expected


@pytest.mark.parametrize("path, data", [
    (P(("ic", 0)), [1, 2, 3]),
    (P(("ic", 4)), [1, 2, 3]),
    (P(("ic", 2), ("ic", 1), ("ic", 1)), [1, ["a", "b", ["I", "II", "III"]], 3]),
    (P("a", ("ic", 0)), {"a": [1, 2, 3]}),
    (P("b", ("ic", 1)), {"a": [1, 2, 3]}),
    (P(("ic", 4), "a"), [1, 2, 3, 4]),
    (P(("ic", 2), "c", "e"), [1, {"a": "a", "b": "b", "c": {"d": "I"}}, 3]),
    (P("a", ("i", P("b", ("ic", 1), "c"))), {"a": [1, 2, 3], "b": [{"c": 4}]}),
    (P("a", ("i", P("b", ("ic", 2), "c"))), {"a": [1, 2, 3], "b": [{"c": 3}]}),
])
def test_nested_get_default(path, data):
    assert nested_get(path, data, "not_found") == "not_found"


def test_ranges():
    assert range_gen(1, 4) == [1, 2, 3, 4]
    assert range_gen(3, 2) == []
    with pytest.raises(ValueError):
        range_gen(3, 1)
    assert range_get(2, 3, [1, 2, 3, 4]) == [2, 3]
    assert range_get(-2, -1, [1, 2, 3, 4]) == [3, 4]
    assert range_get(3, 10, [1, 2, 3, 4]) == [3, 4]
    with pytest.raises(ValueError, match="invalid_index"):
        range_get(0, 2, [1, 2])
    with pytest.raises(ValueError, match="non_list_data"):
        range_get(1, 2, "x")
