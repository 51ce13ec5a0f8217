"""Nested get/put into rule values (EMQX's emqx_rule_maps), on the value model of the package.

A path is a tuple of steps: ``('key', str)`` or ``('index', idx)``, ``idx`` being
``('const', n)`` (1-based, negative from the end; ``'head'``/``'tail'`` put before the first or
after the last element) or a ``('var', name)``/``('path', steps)`` read from the root the walk
started at. As EMQX, a string met on the way is read as JSON (left as is when it is not), a
missing key or index gives ``None``, and a put builds what is missing. Puts never change the
containers they are given (they may be shared, e.g. a cached decoded payload): every container
on the path is copied.
"""
from __future__ import annotations

import orjson

__all__ = ["nested_get", "nested_put", "get_step", "put_path", "getnth", "setnth", "range_get",
           "range_gen", "as_json"]

_NOT_FOUND = object()


def as_json(value):
    """A string read as JSON, as EMQX's general_find does; `_NOT_FOUND` when it is not JSON."""
    try:
        return orjson.loads(value)
    except (orjson.JSONDecodeError, TypeError):
        return _NOT_FOUND


def getnth(index, items: list):
    """1-based element, negative from the end; None out of range or for a non-integer."""
    if index.__class__ is not int or index == 0:
        return None
    if index > 0:
        return items[index - 1] if index <= len(items) else None
    return items[index] if -index <= len(items) else None


def _index_value(idx, org):
    if idx[0] == "const":
        return idx[1]
    return nested_get(idx, org)


def get_step(step, data, org):
    """One step of a walk: the value under `step` in `data`, None if there is none; an index
    that is a name or path is read from `org`, the map the walk started at."""
    if isinstance(data, str):
        data = as_json(data)
        if data is _NOT_FOUND:
            return None
    kind, arg = step
    if kind == "key":
        return data.get(arg) if isinstance(data, dict) else None
    if isinstance(data, list):
        return getnth(_index_value(arg, org), data)
    return None


def nested_get(ref, data, default=None):
    """EMQX's nested_get/3: `ref` is ('var', name) or ('path', steps)."""
    if ref[0] == "var":
        if ref[1] == "$_THIS_":
            return data
        value = get_step(("key", ref[1]), data, data)
        return default if value is None else value
    value = data
    for step in ref[1]:
        value = get_step(step, value, data)
        if value is None:
            return default
    return value


def setnth(index, data, value):
    """A copy of list `data` with `index` (1-based, negative from the end, 'head'/'tail')
    set; out of range or a non-integer index leave it unchanged; a non-list becomes [value]."""
    if not isinstance(data, list):
        return [value]
    if index == "head":
        return [value] + data
    if index == "tail":
        return data + [value]
    if index.__class__ is not int or index == 0:
        return data
    n = len(data)
    pos = index - 1 if index > 0 else n + index
    if not 0 <= pos < n:
        return data
    new = list(data)
    new[pos] = value
    return new


def _put(step, value, data, org):
    kind, arg = step
    if kind == "key":
        if isinstance(data, dict):
            new = dict(data)
            new[arg] = value
            return new
        return {arg: value}
    return setnth(_index_value(arg, org), data, value)


def put_path(steps, value, data, org):
    """`data` (copied) with `value` at `steps`; indexes that are names are read from `org`."""
    if not steps:
        return value
    step = steps[0]
    sub = get_step(step, data, org)
    return _put(step, put_path(steps[1:], value, sub, org), data, org)


def nested_put(ref, value, data):
    """EMQX's nested_put/3 without changing `data`: the new root."""
    if not isinstance(data, (dict, list)):
        data = {}
    if ref[0] == "var":
        return _put(("key", ref[1]), value, data, data)
    return put_path(ref[1], value, data, data)


def range_gen(begin: int, end: int) -> list:
    """``[begin..end]``: lists:seq/2, which refuses an end below begin - 1."""
    if end < begin - 1:
        raise ValueError(f"bad range [{begin}..{end}]")
    return list(range(begin, end + 1))


def range_get(begin: int, end: int, data) -> list:
    """``x[begin..end]`` (1-based, inclusive, negative from the end)."""
    if not isinstance(data, list):
        raise ValueError("range_get: non_list_data")
    n = len(data)

    def position(i):
        if i == 0:
            raise ValueError("range_get: invalid_index 0")
        return i if i > 0 else n + i + 1
    first, last = position(begin), position(end)
    count = last - first + 1
    if not 1 <= first <= n + 1 or count < 0:
        raise ValueError(f"range_get: bad range [{begin}..{end}] of a list of {n}")
    return data[first - 1:first - 1 + count]
