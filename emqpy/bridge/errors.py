"""What the bridge service raises; the API turns each into EMQX's answer."""
from __future__ import annotations


class NotFound(LookupError):
    pass


class AlreadyExists(ValueError):
    pass


class Invalid(ValueError):
    """A bad config or request; the message is what the API answers."""


class InUse(ValueError):
    """Deleting something others depend on; `ids` are the dependents."""

    def __init__(self, message: str, ids: list[str]):
        super().__init__(message)
        self.ids = ids


class Disabled(ValueError):
    pass
