"""The one pairwise computation every Gram block of an estimate comes from."""

from __future__ import annotations

from functools import cached_property

import torch
from torch import Tensor

__all__ = ["Pairwise", "safe_sqrt", "NEAR"]


def safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(x)`` for ``x ≥ 0`` whose gradient at 0 is 0 instead of inf/NaN."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


class Pairwise:
    """Lazily computed pairwise quantities between rows of ``a`` (n, d) and ``b`` (m, d).

    ``b=None`` means ``a`` against itself: the squared-distance diagonal is then exactly 0.
    """

    def __init__(self, a: Tensor, b: Tensor | None = None):
        if a.dim() != 2 or (b is not None and b.dim() != 2):
            raise ValueError(
                f"kernels take 2-D inputs (n, d); got shapes {tuple(a.shape)}"
                f"{'' if b is None else ' and ' + str(tuple(b.shape))}"
            )
        if b is not None and a.shape[1] != b.shape[1]:
            raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
        if b is not None and a.dtype != b.dtype:
            raise ValueError(f"dtypes differ: {a.dtype} vs {b.dtype}")
        self.a = a
        self.b = a if b is None else b
        self.symmetric = b is None

    @property
    def dim(self) -> int:
        return self.a.shape[1]

    @cached_property
    def dot(self) -> Tensor:
        return self.a @ self.b.T

    @cached_property
    def sqnorm_a(self) -> Tensor:
        return (self.a * self.a).sum(1)

    @cached_property
    def sqnorm_b(self) -> Tensor:
        return self.sqnorm_a if self.symmetric else (self.b * self.b).sum(1)

    @cached_property
    def _centred(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        # a common shift changes no distance, but the expansion's cancellation error, of the order
        # eps·‖a‖², becomes eps·spread², so features far from the origin (a critic that drifts)
        # still give a positive semi-definite Gaussian Gram matrix
        shift = self.a.detach().mean(0)
        a = self.a - shift
        b = a if self.symmetric else self.b - shift
        sq_a = (a * a).sum(1)
        sq_b = sq_a if self.symmetric else (b * b).sum(1)
        return a, b, sq_a, sq_b

    @cached_property
    def sqdist(self) -> Tensor:
        """‖a_i − b_j‖² by the expansion ‖a‖² + ‖b‖² − 2a·b (one matrix product): its absolute error is
        a few eps·(‖a_i‖² + ‖b_j‖²) about the batch mean, harmless inside exp(−d²/2σ²)."""
        a, b, sq_a, sq_b = self._centred
        d = (sq_a[:, None] + sq_b[None, :] - 2.0 * (a @ b.T)).clamp_min(0.0)
        if self.symmetric:
            eye = torch.eye(d.shape[0], dtype=torch.bool, device=d.device)
            d = d.masked_fill(eye, 0.0)
        return d

    @cached_property
    def dist(self) -> Tensor:
        """‖a_i − b_j‖, accurate to a few eps relative at every pair, coincident ones included.

        The square root turns the expansion's absolute error δ ≈ eps·(‖a‖² + ‖b‖²) into an error of
        √δ ≈ √eps·‖a‖ at coincident points (1e-8 in float64, 3e-4·‖a‖ in float32). So the pairs where
        the expansion cancels, d² ≤ NEAR·(‖a_i‖² + ‖b_j‖²), are recomputed from their differences:
        there the relative error is a few eps, and elsewhere the expansion's is at most
        ~2·d·eps / NEAR. Differentiable twice, like the expansion; memory is the number of near
        pairs times d."""
        a, b, sq_a, sq_b = self._centred
        d2 = self.sqdist
        near = d2 <= NEAR * (sq_a[:, None] + sq_b[None, :])
        if self.symmetric:
            near.fill_diagonal_(False)  # exactly 0 already
        i, j = near.nonzero(as_tuple=True)
        if i.numel():
            diff = self.a[i] - self.b[j]  # not the shifted copies: the shift's rounding is ~eps·‖a‖
            d2 = d2.index_put((i, j), (diff * diff).sum(1))
        return safe_sqrt(d2)


NEAR = 1.0 / 16
"""Pairs with d² ≤ NEAR·(‖a‖² + ‖b‖²) (about the batch mean) get their distance from the difference."""
