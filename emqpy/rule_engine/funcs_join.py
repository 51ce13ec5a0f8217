"""Functions that join values into one string: `concat` (and the `+` of strings),
`join_to_string`, `join_to_sql_values_string` and `map_to_redis_hset_args`, each writing values
the way its EMQX counterpart does."""
from __future__ import annotations

from emqpy.rule_engine import funcs_json
from emqpy.rule_engine.funcs_base import bad_arg, to_bytes
from emqpy.rule_engine.funcs_conv import float_decimals, to_str


def concat(a, *b):
    """concat(List) joins a list's elements as strings; concat(A, B) is concat([A, B])."""
    if b:
        if len(b) > 1:
            raise TypeError(f"concat() takes 1 or 2 arguments but {1 + len(b)} were given")
        items = (a, b[0])
    elif type(a) is list:
        items = a
    else:
        raise bad_arg("concat", (a,), "a list is expected")
    return "".join(to_str(x, "concat") for x in items)


def join_to_string(a, *b):
    """join_to_string(List) joins with ", "; join_to_string(Sep, List) with Sep."""
    if b:
        if len(b) > 1:
            raise TypeError(f"join_to_string() takes 1 or 2 arguments but {1 + len(b)} "
                            "were given")
        sep, items = a, b[0]
    else:
        sep, items = ", ", a
    if type(sep) is not str or type(items) is not list:
        raise bad_arg("join_to_string", (a, *b), "a separator string and a list expected")
    return sep.join(to_str(x, "join_to_string") for x in items)


def _sql_quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sql_value(v) -> str:
    t = type(v)
    if t is list:
        return _sql_quote(funcs_json.json_encode(v))
    if v is None:
        return "NULL"
    if t is str:
        return _sql_quote(v)
    if t is bool or t is dict:
        return _sql_quote(to_str(v, "join_to_sql_values_string"))
    if t is int or t is float:
        return to_str(v, "join_to_sql_values_string")
    raise bad_arg("join_to_sql_values_string", (v,), "cannot be written as an SQL value")


def join_to_sql_values_string(items):
    """A list as an SQL VALUES list: strings, maps, lists and booleans quoted (backslash and
    quote escaped), numbers bare, null as NULL."""
    if type(items) is not list:
        raise bad_arg("join_to_sql_values_string", (items,), "a list is expected")
    return ", ".join(_sql_value(v) for v in items)


def map_to_redis_hset_args(data):
    """A map (or a JSON object's text) as the field/value arguments of Redis HSET, after the
    marker "map_to_redis_hset_args" the Redis action looks for. Non-string keys and values that
    are not strings, numbers or booleans are dropped; floats get 6 decimals at most."""
    if type(data) is str:
        try:
            data = funcs_json.decode(data)
        except ValueError:
            return ["map_to_redis_hset_args"]
    fields: list = []
    if type(data) is dict:
        for k in sorted(data, key=lambda k: to_bytes(k) if type(k) is str else b""):
            v = data[k]
            if type(k) is not str:
                continue
            t = type(v)
            if t is str:
                value = v
            elif t is bool:
                value = "true" if v else "false"
            elif t is int:
                value = str(v)
            elif t is float:
                try:
                    value = float_decimals(v, 6, True)
                except ValueError:          # too long to print: EMQX drops the field too
                    continue
            else:
                continue
            fields[:0] = [k, value]          # EMQX folds the map, prepending each pair
    return ["map_to_redis_hset_args", *fields]


FUNCTIONS = {
    "concat": concat, "join_to_string": join_to_string,
    "join_to_sql_values_string": join_to_sql_values_string,
    "map_to_redis_hset_args": map_to_redis_hset_args,
}
