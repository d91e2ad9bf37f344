"""Input validation shared by the estimators and objectives. Every failure is a ValueError that
names the problem and, where it helps, the fix.

Field checks (hyperparameters, options): :func:`positive`, :func:`non_negative`, :func:`in_range`
return the value as a float, :func:`positive_int` as an int; a failure names the field, the value
and the valid range. Booleans and strings are not numbers here (a YAML value such as ``1e-5``, with no
dot, is read as a string: the message says so).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable

import torch
from torch import Tensor

__all__ = [
    "int_at_least",
    "as_features",
    "critic_features",
    "check_pair",
    "check_finite",
    "check_batch_size",
    "positive",
    "non_negative",
    "in_range",
    "positive_int",
    "positive_tuple",
]


def as_features(t: Tensor, what: str = "features") -> Tensor:
    """(n,) or (n, ...) → (n, d) by flattening everything after the batch dimension."""
    if not isinstance(t, Tensor):
        raise ValueError(f"{what} must be a torch.Tensor; got {type(t).__name__}")
    if t.dim() == 0:
        raise ValueError(f"{what} must have a batch dimension; got a 0-d tensor")
    if t.dim() == 1:
        return t[:, None]
    return t.reshape(t.shape[0], -1)


def critic_features(critic: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``critic(x)`` flattened to (n, d), checked to hold one output per sample."""
    out = critic(x)
    if not isinstance(out, Tensor) or out.dim() == 0 or out.shape[0] != x.shape[0]:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"the critic must return one output per sample; got {shape} for a batch of {x.shape[0]}")
    return as_features(out, "critic output")


def check_pair(real: Tensor, fake: Tensor, what: str = "real and fake batches") -> None:
    """Same per-sample shape and dtype; floating point."""
    if not isinstance(real, Tensor) or not isinstance(fake, Tensor):
        raise ValueError(f"{what} must be torch.Tensors; got {type(real).__name__} and {type(fake).__name__}")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(
            f"{what} have different per-sample shapes: {tuple(real.shape[1:])} vs {tuple(fake.shape[1:])}"
        )
    if real.dtype != fake.dtype:
        raise ValueError(f"{what} have different dtypes: {real.dtype} vs {fake.dtype}; cast one of them")
    if not real.is_floating_point():
        raise ValueError(f"{what} must be floating point; got {real.dtype}")
    if real.device != fake.device:
        raise ValueError(f"{what} are on different devices: {real.device} vs {fake.device}")


def check_finite(*tensors: Tensor, what: str = "input") -> None:
    for i, t in enumerate(tensors):
        if not torch.isfinite(t).all():
            bad = int((~torch.isfinite(t)).sum())
            raise ValueError(f"{what} {i} contains {bad} non-finite value(s) (NaN or inf)")


def check_batch_size(n: int, minimum: int, what: str) -> None:
    if n < minimum:
        raise ValueError(f"{what} needs at least {minimum} samples per batch; got {n}")


# -- field checks ---------------------------------------------------------------------------------


def _fail(name: str, value: Any, valid: str, optional: bool) -> ValueError:
    hint = ""
    if isinstance(value, str):
        hint = " (a string; YAML reads a number such as 1e-5 without a dot as text: write 1.0e-5)"
    return ValueError(f"{name} must be {valid}{' or None' if optional else ''}; got {value!r}{hint}")


def _number(name: str, value: Any, valid: str, optional: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(name, value, valid, optional)
    return float(value)


def positive(name: str, value: Any, *, optional: bool = False) -> float | None:
    """``value`` as a float if it is a finite number > 0 (``None`` passes when ``optional``)."""
    if optional and value is None:
        return None
    valid = "a positive finite number, in (0, inf)"
    v = _number(name, value, valid, optional)
    if not (math.isfinite(v) and v > 0):
        raise _fail(name, value, valid, optional)
    return v


def non_negative(name: str, value: Any, *, optional: bool = False) -> float | None:
    """``value`` as a float if it is a finite number ≥ 0 (``None`` passes when ``optional``)."""
    if optional and value is None:
        return None
    valid = "a non-negative finite number, in [0, inf)"
    v = _number(name, value, valid, optional)
    if not (math.isfinite(v) and v >= 0):
        raise _fail(name, value, valid, optional)
    return v


def in_range(name: str, value: Any, low: float, high: float, *, low_open: bool = False, high_open: bool = False,
             optional: bool = False) -> float | None:
    """``value`` as a float if it lies in the interval from ``low`` to ``high`` (closed unless
    ``low_open`` / ``high_open``); NaN never does."""
    if optional and value is None:
        return None
    valid = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    v = _number(name, value, valid, optional)
    above = v > low if low_open else v >= low
    below = v < high if high_open else v <= high
    if not (above and below):
        raise _fail(name, value, valid, optional)
    return v


def positive_int(name: str, value: Any, *, optional: bool = False) -> int | None:
    """``value`` if it is an integer ≥ 1 (not a bool; ``None`` passes when ``optional``)."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise _fail(name, value, "a positive integer", optional)
    return int(value)


def int_at_least(value: Any, what: str, low: int) -> int:
    """``value`` as an int if it is an integer ≥ ``low`` (not a bool), else a ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < low:
        raise ValueError(f"{what} must be an integer >= {low}; got {value!r}")
    return int(value)


def positive_tuple(name: str, values: Any) -> tuple[float, ...]:
    """A number or a non-empty sequence of them, each a positive finite number, as a tuple of floats."""
    items = (values,) if isinstance(values, numbers.Real) and not isinstance(values, bool) else values
    try:
        items = tuple(items)
    except TypeError:
        raise _fail(name, values, "a positive finite number or a non-empty sequence of them", False) from None
    if not items:
        raise _fail(name, values, "a non-empty sequence of positive finite numbers", False)
    return tuple(positive(f"{name}[{i}]", v) for i, v in enumerate(items))
