"""Map and array functions: `map_get`/`map_put` with dotted paths, `mget`/`mput`, `map_keys`,
`map_values`, `map_to_entries`, `map_new`, `nth`, `length`, `sublist`, `first`, `last`,
`contains`.

Maps are never changed in place (Erlang terms are immutable): a put copies the maps on the path.
A value that is a JSON object's text is read as that object on the way down, as EMQX's
emqx_rule_maps does. Keys come out in Erlang's order (sorted), as ``maps:keys`` gives them.
"""
from __future__ import annotations

from emqpy.rule_engine import funcs_json
from emqpy.rule_engine.funcs_base import bad_arg, exact_eq, is_int, sorted_keys, sql_name
from emqpy.rule_engine.funcs_conv import to_map

_MISSING = object()


def _lookup(data, key):
    """One step of emqx_rule_maps' general_find by key: _MISSING when not there."""
    if type(data) is str:
        try:
            data = funcs_json.decode(data)
        except ValueError:
            return _MISSING
    if type(data) is dict:
        return data.get(key, _MISSING)
    return _MISSING


def nested_get(path: list, data, default=None):
    """The value at a key path; `default` when a step is missing, or null before the last
    step (a null found at the last step is the value)."""
    last = len(path) - 1
    for i, key in enumerate(path):
        data = _lookup(data, key)
        if data is _MISSING or (data is None and i < last):
            return default
    return data


def nested_put(path: list, value, data):
    """A copy of `data` with `value` at the key path; anything that is not a map on the way
    (a list, a string, a number) is replaced by a new map."""
    if not path:
        return value
    key, rest = path[0], path[1:]
    base = data if type(data) is dict else {}
    sub = _lookup(base, key) if rest else None
    out = dict(base)
    out[key] = nested_put(rest, value, None if sub is _MISSING else sub)
    return out


def _path(function: str, args, key) -> list:
    if type(key) is not str:
        raise bad_arg(function, args, "the key must be a string")
    return key.split(".")


def map_new():
    return {}


@sql_name("map_get")
def map_get(key, data, default=None):
    return nested_get(_path("map_get", (key, data, default), key), data, default)


def map_put(key, value, data):
    return nested_put(_path("map_put", (key, value, data), key), value, data)


def mget(key, data, default=None):
    """The value of a top-level key (no dotted path) of a map or a JSON object's text."""
    m = to_map(data, "mget")
    if type(key) is not str:
        return default
    return m.get(key, default)


def mput(key, value, data):
    m = to_map(data, "mput")
    if type(key) is not str:
        raise bad_arg("mput", (key, value, data), "the key must be a string")
    out = dict(m)
    out[key] = value
    return out


def map_keys(data):
    return sorted_keys(to_map(data, "map_keys"))


def map_values(data):
    m = to_map(data, "map_values")
    return [m[k] for k in sorted_keys(m)]


def map_to_entries(data):
    m = to_map(data, "map_to_entries")
    return [{"key": k, "value": m[k]} for k in sorted_keys(m)]


# -- arrays -------------------------------------------------------------------------------------

def _list(function: str, args, lst) -> None:
    if type(lst) is not list:
        raise bad_arg(function, args, "an array is expected")


def nth(n, lst):
    """The n-th element (from 1); out of range is an error, as lists:nth makes it."""
    _list("nth", (n, lst), lst)
    if not is_int(n) or not 1 <= n <= len(lst):
        raise bad_arg("nth", (n, lst), "the index is not a position in the array")
    return lst[n - 1]


@sql_name("length")
def length(lst):
    _list("length", (lst,), lst)
    return len(lst)


def sublist(a, b, *c):
    """sublist(Len, List): the first Len elements; sublist(Start, Len, List): Len elements
    from position Start (from 1; a start just past the end gives [])."""
    if c:
        if len(c) > 1:
            raise TypeError(f"sublist() takes 2 or 3 arguments but {2 + len(c)} were given")
        start, count, lst = a, b, c[0]
        args = (a, b, c[0])
        _list("sublist", args, lst)
        if not (is_int(start) and is_int(count)) or start < 1:
            raise bad_arg("sublist", args, "bad start or length")
        skip = start - 1
        if skip > len(lst):
            return []
        if count < 0:
            raise bad_arg("sublist", args, "negative length")
        return lst[skip:skip + count]
    count, lst = a, b
    _list("sublist", (a, b), lst)
    if not is_int(count) or count < 0:
        raise bad_arg("sublist", (a, b), "bad length")
    return lst[:count]


def first(lst):
    _list("first", (lst,), lst)
    if not lst:
        raise bad_arg("first", (lst,), "the array is empty")
    return lst[0]


def last(lst):
    _list("last", (lst,), lst)
    if not lst:
        raise bad_arg("last", (lst,), "the array is empty")
    return lst[-1]


def contains(elem, lst):
    """Whether the array holds `elem` exactly (1 and 1.0 differ)."""
    _list("contains", (elem, lst), lst)
    return any(exact_eq(elem, x) for x in lst)


FUNCTIONS = {
    "map_new": map_new, "map_get": map_get, "map_put": map_put, "mget": mget, "mput": mput,
    "map_keys": map_keys, "map_values": map_values, "map_to_entries": map_to_entries,
    "nth": nth, "length": length, "sublist": sublist, "first": first, "last": last,
    "contains": contains,
}
