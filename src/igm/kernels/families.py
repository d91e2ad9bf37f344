"""The kernel families: Gaussian mixtures, rational quadratic, linear, polynomial, distance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import torch
from torch import Tensor

from igm.checks import positive, positive_tuple
from igm.kernels.base import Kernel, Radial
from igm.kernels.pairwise import Pairwise, safe_sqrt

__all__ = ["RBFMixture", "Gaussian", "RationalQuadratic", "Linear", "Polynomial", "Distance"]


def _positive_tuple(name: str, values: Iterable[float]) -> tuple[float, ...]:
    if isinstance(values, (int, float)):
        values = (values,)
    return positive_tuple(name, tuple(float(v) for v in values))  # float(): numeric strings from YAML pass


@dataclass(frozen=True)
class RBFMixture(Radial):
    """``Σ_σ exp(−‖a − b‖² / (2σ²))``."""

    sigmas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigmas", _positive_tuple("sigmas", self.sigmas))

    def profile(self, r: Tensor, order: int = 0) -> Tensor:
        out = None
        for s in self.sigmas:
            gamma = 1.0 / (2.0 * s * s)
            term = torch.exp(-gamma * r) * (-gamma) ** order
            out = term if out is None else out + term
        return out


@dataclass(frozen=True)
class Gaussian(RBFMixture):
    """``exp(−‖a − b‖² / (2σ²))``. SMMD's default kernel (σ = 1)."""

    sigma: float = 1.0
    sigmas: tuple[float, ...] = field(init=False, repr=False, default=(1.0,))

    def __post_init__(self) -> None:
        (sigma,) = _positive_tuple("sigma", (self.sigma,))
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "sigmas", (sigma,))


@dataclass(frozen=True)
class RationalQuadratic(Radial):
    """``Σ_α (1 + ‖a − b‖² / (2α))^(−α)``."""

    alphas: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "alphas", _positive_tuple("alphas", self.alphas))

    def profile(self, r: Tensor, order: int = 0) -> Tensor:
        out = None
        for alpha in self.alphas:
            base = 1.0 + r / (2.0 * alpha)
            if order == 0:
                term = base ** (-alpha)
            elif order == 1:
                term = -0.5 * base ** (-alpha - 1.0)
            else:
                term = (alpha + 1.0) / (4.0 * alpha) * base ** (-alpha - 2.0)
            out = term if out is None else out + term
        return out


# ----------------------------------------------------------------------------------------------
# dot-product and distance kernels


@dataclass(frozen=True)
class Linear(Kernel):
    """``aᵀ b``."""

    def gram(self, pw: Pairwise) -> Tensor:
        return pw.dot

    def diag(self, a: Tensor) -> Tensor:
        return (a * a).sum(1)

    @property
    def jacobian_weight(self) -> float:
        return 1.0

    def derivatives(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n, m, d = a.shape[0], b.shape[0], a.shape[1]
        k = a @ b.T
        dk = b[None, :, :].expand(n, m, d)
        d2k = torch.eye(d, dtype=a.dtype, device=a.device).expand(n, m, d, d)
        return k, dk, d2k


@dataclass(frozen=True)
class Polynomial(Kernel):
    """``(γ aᵀb + c)^degree``; ``gamma=None`` means ``1/d`` (the KID kernel)."""

    degree: int = 3
    gamma: float | None = None
    coef0: float = 1.0

    def __post_init__(self) -> None:
        if int(self.degree) != self.degree or self.degree < 1:
            raise ValueError(f"degree must be a positive integer; got {self.degree}")
        positive("gamma", self.gamma, optional=True)

    def _gamma(self, d: int) -> float:
        return 1.0 / d if self.gamma is None else float(self.gamma)

    def gram(self, pw: Pairwise) -> Tensor:
        return (self._gamma(pw.dim) * pw.dot + self.coef0) ** self.degree

    def diag(self, a: Tensor) -> Tensor:
        return (self._gamma(a.shape[1]) * (a * a).sum(1) + self.coef0) ** self.degree

    def derivatives(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        g, p, d = self._gamma(a.shape[1]), self.degree, a.shape[1]
        base = g * (a @ b.T) + self.coef0
        k = base**p
        d1 = p * base ** (p - 1) * g  # dK/d(aᵀb) · γ
        dk = d1[..., None] * b[None, :, :]
        d2 = p * (p - 1) * base ** (p - 2) * g * g if p > 1 else torch.zeros_like(base)
        eye = torch.eye(d, dtype=a.dtype, device=a.device)
        d2k = d2[..., None, None] * b[None, :, None, :].transpose(-1, -2) * a[:, None, None, :] + d1[..., None, None] * eye
        return k, dk, d2k


@dataclass(frozen=True)
class Distance(Kernel):
    """Energy-distance kernel ``½(‖a‖ + ‖b‖ − ‖a − b‖)``; MMD² with it is the energy distance / 2."""

    def gram(self, pw: Pairwise) -> Tensor:
        return 0.5 * (safe_sqrt(pw.sqnorm_a)[:, None] + safe_sqrt(pw.sqnorm_b)[None, :] - pw.dist)

    def diag(self, a: Tensor) -> Tensor:
        return safe_sqrt((a * a).sum(1))


# ----------------------------------------------------------------------------------------------
# algebra
