"""String functions (EMQX's emqx_variform_bif over Erlang's `string` module).

Erlang's `string` counts and cuts grapheme clusters, not code points: ``strlen`` of "e" plus a
combining accent is 1, ``"\\r\\n"`` is one character, and a search pattern only matches where
its last character is a whole cluster. `tokens` is the exception: EMQX runs it on the bytes,
so its separators are single bytes.
"""
from __future__ import annotations

import regex

from emqpy.rule_engine.funcs_base import (
    SQLFunctionError, bad_arg, from_bytes, is_int, sql_name, to_bytes, write_term,
)
from emqpy.rule_engine.funcs_conv import float_decimals, to_str
from emqpy.rule_engine import funcs_json

_GC = regex.compile(r"\X")
# unicode_util:whitespace(): what trim/ltrim/rtrim remove ("\r\n" is one of them, as a cluster)
_WHITESPACE = frozenset(["\r\n", "\t", "\n", "\v", "\f", "\r", " ", "\x85", "\u200e", "\u200f",
                         "\u2028", "\u2029"])
_ASCII_WS = " \t\n\v\f\r"


def graphemes(s: str) -> list[str]:
    return _GC.findall(s)


def _need_str(name, args, *values):
    if not all(type(v) is str for v in values):
        raise bad_arg(name, args, "strings expected")


def lower(s):
    _need_str("lower", (s,), s)
    return s.lower()


def upper(s):
    _need_str("upper", (s,), s)
    return s.upper()


def reverse(s):
    _need_str("reverse", (s,), s)
    if s.isascii() and "\r\n" not in s:
        return s[::-1]
    return "".join(reversed(graphemes(s)))


def strlen(s):
    _need_str("strlen", (s,), s)
    if s.isascii() and "\r\n" not in s:
        return len(s)
    return len(graphemes(s))


def _trim(s: str, leading: bool, trailing: bool, drop=_WHITESPACE) -> str:
    if drop is _WHITESPACE and s.isascii():
        return s.strip(_ASCII_WS) if leading and trailing else (
            s.lstrip(_ASCII_WS) if leading else s.rstrip(_ASCII_WS))
    gcs = graphemes(s)
    start, end = 0, len(gcs)
    while leading and start < end and gcs[start] in drop:
        start += 1
    while trailing and end > start and gcs[end - 1] in drop:
        end -= 1
    return "".join(gcs[start:end])


def trim(s):
    _need_str("trim", (s,), s)
    return _trim(s, True, True)


def ltrim(s):
    _need_str("ltrim", (s,), s)
    return _trim(s, True, False)


def rtrim(s, *chars):
    """rtrim(S) trims whitespace; rtrim(S, Chars) hands Chars to Erlang's string:trim/3, which
    takes a list of character codes: EMQX fails on a string there, and so does this."""
    if not chars:
        _need_str("rtrim", (s,), s)
        return _trim(s, False, True)
    if len(chars) > 1:
        raise TypeError(f"rtrim() takes 1 or 2 arguments but {1 + len(chars)} were given")
    cs = chars[0]
    if type(s) is not str or type(cs) is not list:
        raise bad_arg("rtrim", (s, cs), "a string and a list of character codes expected")
    drop = frozenset(chr(c) for c in cs if is_int(c) and 0 <= c <= 0x10FFFF)
    return _trim(s, False, True, drop)


def rm_prefix(s, prefix):
    if type(prefix) is not str:
        raise bad_arg("rm_prefix", (s, prefix), "the prefix must be a string")
    if type(s) is not str:
        return s
    b, p = to_bytes(s), to_bytes(prefix)
    return from_bytes(b[len(p):]) if b.startswith(p) else s


def substr(s, start, *length):
    args = (s, start, *length)
    if len(length) > 1:
        raise TypeError(f"substr() takes 2 or 3 arguments but {len(args)} were given")
    if type(s) is not str or not is_int(start) or (length and not is_int(length[0])):
        raise bad_arg("substr", args, "a string and integer positions expected")
    if start < 0 or (length and length[0] < 0):
        raise bad_arg("substr", args, "negative start or length")
    simple = s.isascii() and "\r\n" not in s
    gcs = s if simple else graphemes(s)
    part = gcs[start:start + length[0]] if length else gcs[start:]
    return part if simple else "".join(part)


# -- searching: split, replace, find ------------------------------------------------------------

def _whole_cluster_end(s: str, j: int) -> bool:
    """Whether the character at `j` (a pattern's last character) is a cluster of its own."""
    nxt = j + 1
    if nxt >= len(s):
        return True
    if ord(s[nxt]) < 0x300:
        return not (s[j] == "\r" and s[nxt] == "\n")
    m = _GC.match(s, j)
    return m.end() == nxt


def _matches(s: str, p: str, where: str) -> list[int]:
    """Start positions where Erlang's string:split/find see `p` in `s`."""
    n = len(p)
    found = []
    if where == "trailing":
        i = s.rfind(p)
        while i >= 0:
            if _whole_cluster_end(s, i + n - 1):
                return [i]
            i = s.rfind(p, 0, i + n - 1)
        return found
    i = s.find(p)
    while i >= 0:
        if _whole_cluster_end(s, i + n - 1):
            found.append(i)
            if where == "leading":
                return found
            i = s.find(p, i + n)
        else:
            i = s.find(p, i + 1)
    return found


def _split(s: str, p: str, where: str) -> list[str]:
    if not p:
        return [s]
    parts, prev = [], 0
    for i in _matches(s, p, where):
        parts.append(s[prev:i])
        prev = i + len(p)
    parts.append(s[prev:])
    return parts


_SPLIT_MODES = {"notrim": ("all", False), "leading_notrim": ("leading", False),
                "leading": ("leading", True), "trailing_notrim": ("trailing", False),
                "trailing": ("trailing", True)}


def split(s, p, *mode):
    args = (s, p, *mode)
    if len(mode) > 1:
        raise TypeError(f"split() takes 2 or 3 arguments but {len(args)} were given")
    if mode:
        if mode[0] not in _SPLIT_MODES:
            raise bad_arg("split", args, "the mode must be notrim, leading, leading_notrim, "
                                         "trailing or trailing_notrim")
        where, drop_empty = _SPLIT_MODES[mode[0]]
    else:
        where, drop_empty = "all", True
    _need_str("split", args, s, p)
    parts = _split(s, p, where)
    return [x for x in parts if x] if drop_empty else parts


def replace(s, p, rep, *where):
    args = (s, p, rep, *where)
    if len(where) > 1:
        raise TypeError(f"replace() takes 3 or 4 arguments but {len(args)} were given")
    w = where[0] if where else "all"
    if w not in ("all", "leading", "trailing"):
        raise bad_arg("replace", args, "the position must be all, leading or trailing")
    _need_str("replace", args, s, p, rep)
    return rep.join(_split(s, p, w))


def find(s, p, *where):
    args = (s, p, *where)
    if len(where) > 1:
        raise TypeError(f"find() takes 2 or 3 arguments but {len(args)} were given")
    w = where[0] if where else "leading"
    if w not in ("leading", "trailing"):
        raise bad_arg("find", args, "the position must be leading or trailing")
    _need_str("find", args, s, p)
    if not p:
        return s
    found = _matches(s, p, w)
    return s[found[0]:] if found else ""


def tokens(s, separators, *nocrlf):
    """Erlang's string:lexemes on the bytes of `s`: any byte of `separators` separates, and a
    "\\r\\n" pair is one cluster that only the ``nocrlf`` variant treats as a separator."""
    args = (s, separators, *nocrlf)
    if len(nocrlf) > 1:
        raise TypeError(f"tokens() takes 2 or 3 arguments but {len(args)} were given")
    if nocrlf and nocrlf[0] != "nocrlf":
        raise bad_arg("tokens", args, "the third argument can only be nocrlf")
    _need_str("tokens", args, s, separators)
    data = to_bytes(s).decode("latin-1")
    seps = set(to_bytes(separators).decode("latin-1"))
    if nocrlf:
        seps.update(("\r", "\n", "\r\n"))
    out, cur, i, n = [], [], 0, len(data)
    while i < n:
        c = "\r\n" if data.startswith("\r\n", i) else data[i]
        i += len(c)
        if c in seps:
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(c)
    if cur:
        out.append("".join(cur))
    return [from_bytes(t.encode("latin-1")) for t in out]


def pad(s, length, *opts):
    args = (s, length, *opts)
    if len(opts) > 2:
        raise TypeError(f"pad() takes 2 to 4 arguments but {len(args)} were given")
    where = opts[0] if opts else "trailing"
    char = opts[1] if len(opts) > 1 else " "
    if where not in ("trailing", "leading", "both"):
        raise bad_arg("pad", args, "the position must be trailing, leading or both")
    if type(s) is not str or not is_int(length) or type(char) is not str:
        raise bad_arg("pad", args, "a string, an integer length and a string to pad with "
                                   "expected")
    missing = max(0, length - strlen(s))
    if where == "trailing":
        return s + char * missing
    if where == "leading":
        return char * missing + s
    half = char * (missing // 2)
    return half + s + half + (char if missing % 2 else "")


def ascii(char):
    if type(char) is not str or not char:
        raise bad_arg("ascii", (char,), "a non-empty string expected")
    return to_bytes(char)[0]


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
                value = float_decimals(v, 6, True)
            else:
                continue
            fields[:0] = [k, value]          # EMQX folds the map, prepending each pair
    return ["map_to_redis_hset_args", *fields]


def unescape(s):
    """C-style escapes (\\n, \\t, \\\\, \\xHH..., ...) turned into the characters they name;
    an unknown escape is an error, as in EMQX."""
    if type(s) is not str:
        raise bad_arg("unescape", (s,), "a string is expected")
    if "\\" not in s:
        return s
    out, i, n = [], 0, len(s)
    while i < n:
        c = s[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        e = s[i + 1]
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
            i += 2
        elif e == "x" and i + 2 < n and s[i + 2] in _HEX:
            j = i + 2
            while j < n and s[j] in _HEX:
                j += 1
            code = int(s[i + 2:j], 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise bad_arg("unescape", (s,), f"invalid_unicode_character: {s[i:j]}")
            out.append(chr(code))
            i = j
        else:
            raise bad_arg("unescape", (s,), f"unrecognized_escape_sequence: \\{e}")
    return "".join(out)


_SIMPLE_ESCAPES = {"\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v",
                   "'": "'", '"': '"', "?": "?", "a": "\x07"}
_HEX = frozenset("0123456789abcdefABCDEF")


FUNCTIONS = {
    "lower": lower, "upper": upper, "reverse": reverse, "strlen": strlen, "trim": trim,
    "ltrim": ltrim, "rtrim": rtrim, "rm_prefix": rm_prefix, "substr": substr, "split": split,
    "replace": replace, "find": find, "tokens": tokens, "pad": pad, "ascii": ascii,
    "concat": concat, "join_to_string": join_to_string,
    "join_to_sql_values_string": join_to_sql_values_string,
    "map_to_redis_hset_args": map_to_redis_hset_args, "unescape": unescape,
}

__all__ = ["FUNCTIONS", "graphemes", "SQLFunctionError", "sql_name", "write_term"]
