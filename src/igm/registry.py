"""One small registry type for objectives, kernels, feature extractors and presets.

Entries are validated when they are registered; unknown names and unknown hyperparameters are
errors that list the valid choices.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry", "construct", "hyperparameter_names"]


class Registry(Generic[T]):
    def __init__(self, kind: str, validator: Callable[[str, T], None] | None = None):
        self.kind = kind
        self._validator = validator
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T | None = None):
        """``registry.register("name", obj)`` or as a decorator ``@registry.register("name")``."""

        def add(obj: T) -> T:
            if not isinstance(name, str) or not name or name != name.strip().lower():
                raise ValueError(f"{self.kind} names are non-empty lower-case strings; got {name!r}")
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            if self._validator is not None:
                self._validator(name, obj)
            self._entries[name] = obj
            return obj

        return add if entry is None else add(entry)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def items(self):
        return sorted(self._entries.items())


def hyperparameter_names(cls: type) -> list[str]:
    """The constructor arguments of a dataclass or a class with an explicit ``__init__``."""
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls) if f.init]
    params = inspect.signature(cls).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def construct(cls: type, params: dict[str, Any], *, what: str) -> Any:
    """``cls(**params)``, rejecting unknown keys with the valid ones listed."""
    valid = hyperparameter_names(cls)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for {what}; valid: {', '.join(valid) if valid else '(none)'}"
        )
    return cls(**params)
