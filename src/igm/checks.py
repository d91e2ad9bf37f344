"""Input validation shared by the estimators and objectives. Every failure is a ValueError that
names the problem and, where it helps, the fix."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["as_features", "critic_features", "check_pair", "check_finite", "check_batch_size"]


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
