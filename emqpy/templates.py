"""`${...}` templates of rule actions and data-integration actions (EMQX's emqx_template over
emqx_jsonish): the one implementation of both. A template is parsed once (when the rule or
action is created) into literal text and variable paths; rendering looks each path up in the
rule's output.

A path is dot-separated keys (``${payload.x}``), a key may be quoted (``${pub_props.'User-
Property'}``), ``${.}`` is the whole output and ``${.a}`` the same as ``${a}``. Going into a
string that holds JSON decodes it (so ``${payload.x}`` works on a raw JSON payload). A path
that finds nothing renders as ``undefined``, as in EMQX.
"""
from __future__ import annotations

import json
import re

import orjson

_VAR = re.compile(r"\$\{([^}]*)\}")
_MISSING = object()


class TemplateError(ValueError):
    pass


def parse_path(text: str) -> tuple:
    """``payload.'a b'.c`` -> ("payload", "a b", "c"); ``.`` -> ()."""
    text = text.strip()
    if text.startswith("."):
        text = text[1:]
    out = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in "'\"":
            q = text[i]
            j = text.find(q, i + 1)
            if j < 0:
                raise TemplateError(f"unterminated quote in ${{{text}}}")
            out.append(text[i + 1:j])
            i = j + 1
            if i < n and text[i] != ".":
                raise TemplateError(f"bad path ${{{text}}}")
            i += 1
        else:
            j = text.find(".", i)
            j = n if j < 0 else j
            key = text[i:j]
            if not key:
                raise TemplateError(f"empty key in ${{{text}}}")
            out.append(key)
            i = j + 1
    return tuple(out)


def lookup(path: tuple, data):
    """The value at `path` in `data` (dicts and lists, JSON text decoded on the way), or
    _MISSING."""
    value = data
    for key in path:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return _MISSING
        if isinstance(value, dict):
            if key not in value:
                return _MISSING
            value = value[key]
        elif isinstance(value, list) and key.isdigit():  # EMQX's lists are 1-based
            i = int(key)
            if not 1 <= i <= len(value):
                return _MISSING
            value = value[i - 1]
        else:
            return _MISSING
    return value


def to_text(value) -> str:
    """A value as EMQX puts it in a rendered template."""
    if value is None:
        return "undefined"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # surrogate-escaped payload bytes: the standard library escapes them
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Template:
    """A parsed template: ``render(data) -> str``; ``simple_var`` is the path when the whole
    template is one placeholder (then `value` gives the value itself, not its text); ``names``
    the top-level names it reads (``${.}`` reads the whole data, no name)."""

    __slots__ = ("parts", "simple_var", "text", "names", "_static")

    def __init__(self, text: str):
        self.text = text
        parts: list = []
        pos = 0
        for m in _VAR.finditer(text):
            if m.start() > pos:
                parts.append(text[pos:m.start()])
            parts.append(parse_path(m.group(1)))
            pos = m.end()
        if pos < len(text):
            parts.append(text[pos:])
        self.parts = parts
        self.simple_var = parts[0] if len(parts) == 1 and isinstance(parts[0], tuple) else None
        self.names = frozenset(p[0] for p in parts if isinstance(p, tuple) and p)
        self._static = text if all(isinstance(p, str) for p in parts) else None

    def render(self, data, fallback: dict | None = None, missing: str = "undefined") -> str:
        """The text for `data`; a top-level name absent from it is looked up in `fallback`
        (an action's envelope: the event's columns besides the rule's output); a path that
        finds nothing renders as `missing` (EMQX's MQTT action: empty)."""
        if self._static is not None:
            return self._static
        out = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
            else:
                src = data if fallback is None or not p or p[0] in data else fallback
                v = lookup(p, src)
                out.append(missing if v is _MISSING or v is None else to_text(v))
        return "".join(out)

    def value(self, data, default):
        """The value of a one-placeholder template (`default` when the path finds nothing);
        a template with literal text renders as text."""
        if self.simple_var is None:
            return self.render(data)
        v = lookup(self.simple_var, data)
        return default if v is _MISSING else v
