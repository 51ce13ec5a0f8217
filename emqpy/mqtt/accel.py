"""The optional compiled accelerator for the per-message codec functions.

`emqpy.mqtt._speedups` is Cython, built from `_speedups.pyx` by pip when emqpy is installed (as
aiohttp, yarl and frozenlist build theirs). Each of its functions has a pure-Python original
that stays in the codec and is used when the extension was not built or when the environment
sets EMQPY_NO_EXTENSIONS=1 (read once, at import). Both are tested against each other.
"""
from __future__ import annotations

import os

NO_EXTENSIONS = os.environ.get("EMQPY_NO_EXTENSIONS", "") not in ("", "0")

speedups = None
if not NO_EXTENSIONS:
    try:
        from emqpy.mqtt import _speedups as speedups
    except ImportError:  # not built (no compiler at install time): the pure-Python code serves
        speedups = None


def pick(python_version):
    """The compiled twin of `python_version` (same name in _speedups) if in use, else itself."""
    if speedups is None:
        return python_version
    return getattr(speedups, python_version.__name__, python_version)
