"""One small registry type for objectives, kernels, feature extractors and presets.

Entries are validated when they are registered; unknown names and unknown hyperparameters are
errors that list the valid choices.

Renamed hyperparameters: a class declares ``aliases = {"old": "new"}`` (a ``ClassVar``). For one
release the old spelling still works wherever :func:`construct` builds the class (and, for
objectives, in a direct constructor call): it is renamed with a ``DeprecationWarning`` that names
the new spelling; giving both spellings is an error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import sys
import warnings
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

T = TypeVar("T")

__all__ = ["Registry", "construct", "hyperparameter_names", "resolve_aliases", "naming_aliases", "spellings"]


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

    def unregister(self, name: str) -> T:
        """Remove ``name`` (a plugin's or a test's registration) and return its entry."""
        self.get(name)  # an unknown name: the same error as get
        return self._entries.pop(name)

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


def _aliases(cls: type) -> Mapping[str, str]:
    return getattr(cls, "aliases", None) or {}


def _warn_deprecated(message: str) -> None:
    """A DeprecationWarning attributed to the first caller outside igm (the user's line), so that
    Python's default filters show it for a script or the ``igm`` command."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "igm":
        frame, level = frame.f_back, level + 1
    warnings.warn(message, DeprecationWarning, stacklevel=level)


def resolve_aliases(cls: type, params: Mapping[str, Any], *, what: str) -> tuple[dict[str, Any], dict[str, str]]:
    """``(params, renamed)``: ``params`` with each deprecated spelling in ``cls.aliases`` renamed to
    its new one (a DeprecationWarning each), and ``renamed`` = {new: old} of those renamed. Both
    spellings of one hyperparameter is a ValueError."""
    out, renamed = dict(params), {}
    for old, new in _aliases(cls).items():
        if old not in out:
            continue
        if new in out:
            raise ValueError(f"{what}: {old!r} is the deprecated spelling of {new!r}; give only {new!r}")
        _warn_deprecated(f"{what}: hyperparameter {old!r} is deprecated and will be removed in the next release; "
                         f"write {new!r}")
        out[new] = out.pop(old)
        renamed[new] = old
    return out, renamed


@contextlib.contextmanager
def naming_aliases(renamed: Mapping[str, str]) -> Iterator[None]:
    """A ValueError raised inside about a renamed hyperparameter also names the spelling the caller
    used: ``gp_weight must be ...; got -1 (given as 'lam', the deprecated spelling of 'gp_weight')``."""
    try:
        yield
    except ValueError as err:
        notes = [f"given as {old!r}, the deprecated spelling of {new!r}" for new, old in renamed.items() if new in str(err)]
        if not notes:
            raise
        raise ValueError(f"{err} ({'; '.join(notes)})") from None


def spellings(cls: type, name: str) -> set[str]:
    """Every spelling of the hyperparameter ``name`` (itself, its new name, its deprecated aliases)."""
    aliases = _aliases(cls)
    new = aliases.get(name, name)
    return {new} | {old for old, target in aliases.items() if target == new}


def construct(cls: type, params: dict[str, Any], *, what: str) -> Any:
    """``cls(**params)``, renaming deprecated spellings (``cls.aliases``) and rejecting unknown keys
    with the valid ones listed."""
    params, renamed = resolve_aliases(cls, params, what=what)
    valid = hyperparameter_names(cls)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for {what}; valid: {', '.join(valid) if valid else '(none)'}"
        )
    with naming_aliases(renamed):
        return cls(**params)
