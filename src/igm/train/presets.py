"""Presets: YAML run configs shipped in the package (``src/igm/presets``).

A preset may start with ``extends: OTHER`` to inherit another preset file (deep-merged; files whose
name starts with ``_`` are bases, not listed). Every preset is validated against
:class:`RunConfig` when the registry is first used.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from igm.registry import Registry
from igm.train.config import ConfigError, RunConfig, from_dict

__all__ = ["get", "names", "describe", "raw", "registry"]

_PACKAGE = "igm.presets"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("params", "generator_params", "critic_params", "extractor_params"):
            out[key] = _merge(out[key], value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _read(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    if name in seen:
        raise ConfigError(f"preset inheritance loop: {' → '.join(seen + (name,))}")
    path = resources.files(_PACKAGE) / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"preset file {name}.yaml is missing from the package")
    data = yaml.safe_load(path.read_text()) or {}
    parent = data.pop("extends", None)
    return _merge(_read(parent, seen + (name,)), data) if parent else data


def _validate(name: str, _entry: str) -> None:
    from_dict(RunConfig, _read(name))


registry: Registry[str] = Registry("preset", validator=_validate)
_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for item in sorted(resources.files(_PACKAGE).iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml") and not item.name.startswith("_"):
            name = item.name[: -len(".yaml")]
            registry.register(name, name)
    _loaded = True


def names() -> list[str]:
    _load_all()
    return registry.names()


def raw(name: str) -> dict[str, Any]:
    _load_all()
    registry.get(name)
    return _read(name)


def get(name: str) -> RunConfig:
    """The preset's validated RunConfig (unknown names list the valid ones)."""
    return from_dict(RunConfig, raw(name))


def describe(name: str) -> str:
    return get(name).description
