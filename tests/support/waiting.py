"""Waiting for something that happens in the broker's thread, without sleeping blindly."""
from __future__ import annotations

import time

WAIT = 10.0  # generous: the test machine may be loaded; passing tests never wait this long
# How long "nothing arrives" checks listen; only used where no positive event can be awaited.
QUIET = 0.5


def wait_until(pred, timeout: float = 15.0, what: str = "condition", interval: float = 0.02):
    """Poll `pred()` until it returns a truthy value (returned); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                 f"last value {value!r}")
        time.sleep(interval)
