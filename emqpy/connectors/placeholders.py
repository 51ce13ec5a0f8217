"""EMQX `${var}` placeholders in authenticator/authorizer templates (URLs, bodies, commands,
queries)."""
from __future__ import annotations

import re

VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def client_vars(ch, password: str | None = None, **extra) -> dict:
    attrs = getattr(ch, "client_attrs", None) or {}
    cert = getattr(ch, "_peer_cert", None) or {}
    out = {
        "clientid": ch.clientid or "", "username": ch.username or "",
        "peerhost": ch.peerhost or "", "peerport": str(ch.peerport or ""),
        "cert_subject": cert.get("subject", "") if isinstance(cert, dict) else "",
        "cert_common_name": cert.get("common_name", "") if isinstance(cert, dict) else "",
    }
    if password is not None:
        out["password"] = password
    for k, v in attrs.items():
        out["client_attrs." + k] = str(v)
    out.update({k: "" if v is None else str(v) for k, v in extra.items()})
    return out


def render(template: str, variables: dict) -> str:
    """Replace known placeholders; unknown ones become empty, as EMQX renders undefined vars."""
    return VAR.sub(lambda m: variables.get(m.group(1), ""), template)


def render_obj(obj, variables: dict):
    if isinstance(obj, str):
        return render(obj, variables)
    if isinstance(obj, dict):
        return {render(str(k), variables): render_obj(v, variables) for k, v in obj.items()}
    if isinstance(obj, list):
        return [render_obj(v, variables) for v in obj]
    return obj


# -- data templates (data integration: action URLs, headers, bodies) -------------------------
# EMQX's emqx_template over a rule's output: `${path.to.value}` reads nested keys, going into a
# string that holds JSON (`${payload.x}` when the payload is a JSON object), `${.}` is the whole
# data as JSON; a missing value renders as "undefined", as EMQX renders it.
DATA_VAR = re.compile(r"\$\{\s*([^{}\s]*)\s*\}")
UNDEFINED = "undefined"


def _dumps(value) -> str:
    import json
    try:
        import orjson
        return orjson.dumps(value).decode()
    except (ImportError, TypeError):  # surrogate-escaped payload bytes: json escapes them
        return json.dumps(value, separators=(",", ":"))


def text(value) -> str:
    """A value as a template shows it: strings as they are, maps and lists as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return UNDEFINED
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return _dumps(value)


def lookup(path: tuple[str, ...], data):
    """The value at `path` in `data` (None if absent); a string met on the way is read as JSON."""
    value = data
    for key in path:
        if isinstance(value, str):
            import json
            try:
                value = json.loads(value)
            except ValueError:
                return None
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and 0 < int(key) <= len(value):
            value = value[int(key) - 1]  # EMQX indexes lists from 1
        else:
            return None
        if value is None:
            return None
    return value


class DataTemplate:
    """A template compiled once: literal text and variable paths, rendered per message."""

    __slots__ = ("source", "_parts", "_static", "names")

    def __init__(self, source: str):
        self.source = source
        parts: list = []
        pos = 0
        for m in DATA_VAR.finditer(source):
            if m.start() > pos:
                parts.append(source[pos:m.start()])
            name = m.group(1)
            parts.append(() if name == "." else tuple(name.split(".")))
            pos = m.end()
        if pos < len(source):
            parts.append(source[pos:])
        self._parts = parts
        self._static = source if all(isinstance(p, str) for p in parts) else None
        # the top-level names it reads (`${.}` reads the data, not a name)
        self.names = frozenset(p[0] for p in parts if isinstance(p, tuple) and p)

    def render(self, data: dict, fallback: dict | None = None,
               missing: str = UNDEFINED) -> str:
        """Render against `data`; a top-level name absent from it is looked up in `fallback`;
        a value found in neither renders as `missing`."""
        if self._static is not None:
            return self._static
        out = []
        for p in self._parts:
            if isinstance(p, str):
                out.append(p)
            elif not p:
                out.append(_dumps(data))
            else:
                src = data if fallback is None or p[0] in data else fallback
                value = lookup(p, src)
                out.append(missing if value is None else text(value))
        return "".join(out)

    def value(self, data: dict, fallback: dict | None = None):
        """A template that is one variable (``${qos}``): the variable's value as it is (None
        when absent); any other template: its rendered text."""
        parts = self._parts
        if len(parts) == 1 and isinstance(parts[0], tuple) and parts[0]:
            p = parts[0]
            return lookup(p, data if fallback is None or p[0] in data else fallback)
        return self.render(data, fallback)
