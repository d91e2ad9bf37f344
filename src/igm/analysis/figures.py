"""The ``igm figure NAME`` registry: each of the papers' analyses as one function.

A figure is registered with a dataclass of options (every default visible in one place) and a
``quick`` set of overrides that the test suite uses (small grids, few steps). The function writes
its PNG(s) and a ``NAME.json`` of the numbers it drew into ``out_dir`` and returns those numbers.

    @register("gaussians", GaussiansOptions, quick={"points": 5}, help="...")
    def gaussians(opts: GaussiansOptions, out_dir: Path) -> dict: ...

    run("gaussians", "figures/", quick=True, overrides=["points=7"])
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from igm.registry import Registry

__all__ = ["Figure", "register", "get", "names", "build_options", "run", "parse_overrides", "write_json"]

# modules that register figures; imported lazily so `igm --help` stays fast
_MODULES = (
    "igm.analysis.diracgan",
    "igm.analysis.gaussians",
    "igm.analysis.ring_stability",
    "igm.analysis.lgan_gradients",
    "igm.analysis.critic_spectrum",
    "igm.analysis.comparison",
    "igm.analysis.mnist_figures",
    "igm.analysis.wgan_optimizers",
    "igm.analysis.wgan_figures",
    "igm.analysis.wgan_critics",
    "igm.analysis.wgan_quality",
    "igm.analysis.wgan_architectures",
)


@dataclass(frozen=True)
class Figure:
    name: str
    options: type
    fn: Callable[[Any, Path], dict]
    quick: dict[str, Any] = field(default_factory=dict)
    help: str = ""


def _validate(name: str, fig: Figure) -> None:
    if not dataclasses.is_dataclass(fig.options):
        raise ValueError(f"figure {name!r}: options must be a dataclass")
    known = {f.name for f in dataclasses.fields(fig.options)}
    unknown = set(fig.quick) - known
    if unknown:
        raise ValueError(f"figure {name!r}: quick overrides {sorted(unknown)} are not options")


FIGURES: Registry[Figure] = Registry("figure", _validate)


def register(name: str, options: type, *, quick: dict[str, Any] | None = None, help: str = ""):
    def deco(fn):
        FIGURES.register(name, Figure(name, options, fn, dict(quick or {}), help))
        return fn

    return deco


def _load_all() -> None:
    for module in _MODULES:
        importlib.import_module(module)


def get(name: str) -> Figure:
    _load_all()
    return FIGURES.get(name)


def names() -> list[str]:
    _load_all()
    return FIGURES.names()


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check a parsed YAML value against a field's annotation; ints are accepted as floats and
    scalars as one-element tuples."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):  # e.g. int | None
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None and len(args) < len(typing.get_args(annotation)):
            return None
        return _coerce(value, args[0], key) if len(args) == 1 else value
    if origin is tuple or annotation is tuple:
        items = value if isinstance(value, (list, tuple)) else [value]
        args = typing.get_args(annotation)
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, key) for v in items)
    if annotation is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if annotation is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError(f"option {key} must be an integer; got {value!r}")
    if annotation is bool and not isinstance(value, bool):
        raise ValueError(f"option {key} must be true or false; got {value!r}")
    if annotation is str and not isinstance(value, str):
        return str(value)
    return value


def parse_overrides(options: type, overrides: list[str] | tuple[str, ...] | dict[str, Any]) -> dict[str, Any]:
    """``["key=value", ...]`` → typed values, rejecting unknown keys with the valid ones listed."""
    hints = typing.get_type_hints(options)
    fields = dataclasses.fields(options)
    valid = [f.name for f in fields]
    listed = [f.name for f in fields if not f.metadata.get("deprecated")]  # deprecated aliases: accepted, not listed
    items = overrides.items() if isinstance(overrides, dict) else []
    if not isinstance(overrides, dict):
        parsed = []
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(f"figure option {item!r} must look like key=value")
            try:
                parsed.append((key.strip(), yaml.safe_load(value)))
            except yaml.YAMLError as err:
                raise ValueError(f"figure option {item!r}: the value is not valid YAML ({str(err).splitlines()[0]})") from None
        items = parsed
    out = {}
    for key, value in items:
        if key not in valid:
            raise ValueError(f"unknown option {key!r}; valid: {', '.join(listed)}")
        out[key] = _coerce(value, hints[key], key)
    return out


def build_options(name: str, *, quick: bool = False, overrides=()) -> Any:
    """A figure's options: its defaults, then ``quick``, then ``overrides``."""
    fig = get(name)
    values = dict(fig.quick) if quick else {}
    values.update(parse_overrides(fig.options, overrides))
    return fig.options(**values)


def run(name: str, out_dir: str | Path, *, quick: bool = False, overrides=(), options: Any = None) -> dict:
    """Draw the figure with ``options``, or those :func:`build_options` makes of ``quick`` and ``overrides``."""
    fig = get(name)
    opts = build_options(name, quick=quick, overrides=overrides) if options is None else options
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return fig.fn(opts, out)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_json(path: str | Path, payload: dict) -> Path:
    path = Path(path)
    path.write_text(json.dumps(_jsonable(payload), indent=2) + "\n")
    return path
