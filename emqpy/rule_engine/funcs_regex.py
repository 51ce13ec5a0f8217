"""`regex_match`, `regex_replace` and `regex_extract`: Erlang's `re` (PCRE) run by the
`regex` module.

EMQX calls `re` without the ``unicode`` option, so patterns and subjects are bytes: ``.``
matches one byte and ``\\w`` only ASCII word characters. Both are run on the UTF-8 bytes here
too. PCRE syntax that Python's engines spell differently is rewritten first (``\\z``, ``\\Z``,
``\\Q...\\E``, ``\\h``, ``\\v``, ``\\R``, ``\\e``, ``\\cX``, ``\\k<name>``, ``\\g{N}``), and
the replacement string follows `re:replace`: ``&`` is the whole match, ``\\N``, ``\\gN`` and
``\\g{N}`` a group, a backslash before any other character makes it literal.
"""
from __future__ import annotations

import functools
import re as _stdre

import regex

from emqpy.rule_engine.funcs_base import bad_arg, from_bytes, to_bytes

_CLASS_ESCAPES = {b"h": rb" \t\xa0", b"v": rb"\n\x0b\f\r\x85"}
_NAMED = _stdre.compile(rb"k(?:<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)'|\{([A-Za-z_]\w*)\})")
_GROUP_REF = _stdre.compile(rb"g(?:\{(\d+)\}|(\d+))")


def _translate(pat: bytes) -> bytes:
    out = bytearray()
    i, n, in_class = 0, len(pat), False
    while i < n:
        c = pat[i:i + 1]
        if c == b"\\" and i + 1 < n:
            e = pat[i + 1:i + 2]
            if e == b"Q":
                end = pat.find(b"\\E", i + 2)
                lit = pat[i + 2:] if end < 0 else pat[i + 2:end]
                out += regex.escape(lit) if not in_class else lit.replace(b"\\", b"\\\\")
                i = n if end < 0 else end + 2
                continue
            if e == b"E":                      # a \E without \Q is ignored by PCRE
                i += 2
                continue
            if e == b"e":
                out += rb"\x1b"
            elif e == b"c" and i + 2 < n:
                out += b"\\x%02x" % (pat[i + 2] & 0xDF ^ 0x40 if 97 <= pat[i + 2] <= 122
                                     else pat[i + 2] ^ 0x40)
                i += 3
                continue
            elif e in _CLASS_ESCAPES:
                chars = _CLASS_ESCAPES[e]
                out += chars if in_class else b"[" + chars + b"]"
            elif e in (b"H", b"V") and not in_class:
                out += b"[^" + _CLASS_ESCAPES[e.lower()] + b"]"
            elif e == b"R" and not in_class:
                out += rb"(?:\r\n|[\n\x0b\f\r\x85])"
            elif e == b"z" and not in_class:
                out += rb"\Z"
            elif e == b"Z" and not in_class:
                out += rb"(?=\n?\Z)"
            elif e == b"k" and (m := _NAMED.match(pat, i + 1)):
                out += b"(?P=" + (m.group(1) or m.group(2) or m.group(3)) + b")"
                i = m.end()
                continue
            elif e == b"g" and (m := _GROUP_REF.match(pat, i + 1)):
                out += b"(?:\\g<" + (m.group(1) or m.group(2)) + b">)"
                i = m.end()
                continue
            else:
                out += pat[i:i + 2]
            i += 2
            continue
        if in_class:
            if c == b"]":
                in_class = False
        elif c == b"[":
            in_class = True
            out += c
            i += 1
            # a "]" (after an optional "^") right after "[" is a literal member
            if pat[i:i + 1] == b"^":
                out += b"^"
                i += 1
            if pat[i:i + 1] == b"]":
                out += rb"\]"
                i += 1
            continue
        out += c
        i += 1
    return bytes(out)


@functools.lru_cache(maxsize=512)
def _compile(pattern: str):
    return regex.compile(_translate(to_bytes(pattern)), regex.VERSION0)


def _regex(function: str, args, pattern):
    if type(pattern) is not str:
        raise bad_arg(function, args, "the regular expression must be a string")
    try:
        return _compile(pattern)
    except (regex.error, OverflowError, ValueError) as e:
        raise bad_arg(function, args, f"invalid regular expression: {e}") from None


def regex_match(s, pattern):
    args = (s, pattern)
    if type(s) is not str:
        raise bad_arg("regex_match", args, "a string is expected")
    return _regex("regex_match", args, pattern).search(to_bytes(s)) is not None


@functools.lru_cache(maxsize=512)
def _replacement(rep: str) -> tuple:
    """`re:replace`'s replacement as a tuple of bytes literals and int group numbers."""
    b = to_bytes(rep)
    parts: list = []
    lit = bytearray()
    i, n = 0, len(b)
    while i < n:
        c = b[i]
        if c == 0x26:                                    # &
            parts += [bytes(lit), 0]
            lit.clear()
            i += 1
        elif c == 0x5C and i + 1 < n:                    # backslash
            m = _REPL_GROUP.match(b, i + 1)
            if m:
                parts += [bytes(lit), int(m.group(1) or m.group(2) or m.group(3))]
                lit.clear()
                i = m.end()
            else:
                lit.append(b[i + 1])
                i += 2
        else:
            lit.append(c)
            i += 1
    parts.append(bytes(lit))
    return tuple(p for p in parts if p != b"")


_REPL_GROUP = _stdre.compile(rb"([1-9][0-9]*)|g\{([0-9]+)\}|g([0-9]+)")


def regex_replace(s, pattern, rep):
    args = (s, pattern, rep)
    if type(s) is not str or type(rep) is not str:
        raise bad_arg("regex_replace", args, "strings are expected")
    rx = _regex("regex_replace", args, pattern)
    parts = _replacement(rep)

    def expand(m):
        out = []
        for p in parts:
            if type(p) is int:
                if p <= rx.groups:
                    out.append(m.group(p) or b"")
            else:
                out.append(p)
        return b"".join(out)
    return from_bytes(rx.sub(expand, to_bytes(s)))


def regex_extract(s, pattern):
    """The groups of the first match (unset ones empty), [] when nothing matches."""
    args = (s, pattern)
    if type(s) is not str:
        raise bad_arg("regex_extract", args, "a string is expected")
    m = _regex("regex_extract", args, pattern).search(to_bytes(s))
    if m is None:
        return []
    return [from_bytes(g or b"") for g in m.groups()]


FUNCTIONS = {"regex_match": regex_match, "regex_replace": regex_replace,
             "regex_extract": regex_extract}
