"""Common base for config sections and the ConfigError exception."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator


class ConfigError(ValueError):
    """A bad config value. ``str(err)`` is one line naming the full key path,
    e.g. ``mqtt.max_packet_size: invalid byte size 'abc'``; ``err.path`` is
    that path (``""`` when not about one key)."""

    def __init__(self, path: str, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class Section(BaseModel):
    """One EMQX config struct: keys exactly EMQX's, unknown keys rejected.

    ``ignored_keys`` are keys EMQX accepts in the struct but hides (deprecated
    or internal tuning knobs emqpy has no use for); they are accepted so real
    emqx.conf files load, and dropped.  Defaults are written as EMQX writes
    them (``"15s"``) and validated like user input.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_default=True,
        populate_by_name=True,
        revalidate_instances="never",
    )

    ignored_keys: ClassVar[frozenset[str]] = frozenset()
    # Modelled but left out of public dumps (EMQX hides them from its API).
    hidden_fields: ClassVar[frozenset[str]] = frozenset()
    # Shown as "******" in redacted dumps.
    sensitive_fields: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _drop_ignored(cls, data: Any) -> Any:
        if cls.ignored_keys and isinstance(data, dict) and not cls.ignored_keys.isdisjoint(data):
            data = {k: v for k, v in data.items() if k not in cls.ignored_keys}
        return data
