"""Reading EMQX config keys from whatever the broker holds (the emqpy.config model with attribute
access, a nested dict, or a SimpleNamespace), with defaults, and EMQX duration strings."""
from __future__ import annotations

import re
from typing import Any

_MISSING = object()


def cfg_get(config: Any, dotted: str, default: Any = None) -> Any:
    node = config
    for part in dotted.split("."):
        if node is None:
            return default
        if isinstance(node, dict):
            node = node.get(part, _MISSING)
        else:
            node = getattr(node, part, _MISSING)
        if node is _MISSING:
            return default
    return default if node is None else node


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DUR = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", re.I)


def duration_seconds(value: Any, default: float) -> float:
    """EMQX duration ("60m", "1h30m", "500ms") to seconds. A number is already seconds (the
    config model parses durations to float seconds); a digits-only string is milliseconds,
    as in EMQX's HOCON."""
    if value is None or isinstance(value, bool):
        return default
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().lower()
    if text.isdigit():
        return int(text) / 1000.0
    pos, total = 0, 0.0
    for m in _DUR.finditer(text):
        if m.start() != pos:
            return default
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and pos else default
