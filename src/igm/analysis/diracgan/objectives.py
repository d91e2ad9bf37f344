"""The DiracGAN figure's objectives: library pieces assembled where seed 000's variant is not a
registered objective (``igm.objectives``). See :mod:`igm.analysis.diracgan` for what each panel uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from igm import kernels
from igm.checks import positive
from igm.objectives.base import Objective, Stats, critic_features

__all__ = [
    "MMDGradientPenaltyAtTarget",
    "SobolevMMD",
    "GCMMDInterpolates",
    "LipschitzMMDLoss",
    "lipschitz_value",
    "midpoint_interpolates",
]


class _Witness(nn.Module):
    """η(t) = mean_i K(φ(x_i), φ(t)) − mean_j K(φ(y_j), φ(t)) as a scalar critic of t."""

    def __init__(self, critic: nn.Module, real: Tensor, fake: Tensor, kernel: kernels.Kernel):
        super().__init__()
        from igm.mmd import witness

        self.critic = critic
        self._f = witness(critic_features(critic, real), critic_features(critic, fake), kernel)

    def forward(self, t: Tensor) -> Tensor:
        return self._f(critic_features(self.critic, t))


def _plain_mmd(kernel: kernels.Kernel) -> Objective:
    from igm import objectives as O

    return O.get("mmd-gan-gp", kernel=kernel, gp_weight=0.0, l2_weight=0.0)


@dataclass
class MMDGradientPenaltyAtTarget(Objective):
    """MMD-GP of seed 000's appendix B: critic −MMD²_u + w E_P (‖∇η(x)‖ − 1)², η the batch witness in
    the critic's feature space (as ``mmd-gan-gp``, whose penalty is at the interpolates instead);
    generator MMD²_u."""

    kernel: Any = field(default_factory=lambda: kernels.Gaussian(1.0))
    gp_weight: float = 1.0

    def __post_init__(self) -> None:
        self.kernel = kernels.build(self.kernel)
        if not self.gp_weight >= 0:
            raise ValueError(f"gp_weight must be non-negative; got {self.gp_weight}")
        self._mmd = _plain_mmd(self.kernel)

    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        from igm.penalties import gradient_penalty, input_gradient

        loss, stats = self._mmd.critic_loss(critic, real, fake)
        points = real.detach().requires_grad_(True)
        wit = _Witness(critic, real, fake.detach(), self.kernel)(points)
        pen = gradient_penalty(input_gradient(wit, points), "gp")
        return loss + self.gp_weight * pen, {**stats, "penalty": pen.detach()}

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        return self._mmd.generator_loss(critic, real, fake)


@dataclass
class SobolevMMD(Objective):
    """Sobolev-MMD of seed 000's appendix B: the registered ``sobolev`` critic loss with the MMD
    witness as its critic function (IPM E_P η − E_Q η = MMD²_b, constraint Ω = E_{(P+Q)/2} ‖∇η‖²),
    i.e. −MMD² + (ρ/2)(1 − Ω)²; the multiplier stays 0 ("quadratic penalty only"). Generator: MMD²_u."""

    kernel: Any = field(default_factory=lambda: kernels.Gaussian(1.0))
    rho: float = 2.0

    def __post_init__(self) -> None:
        from igm import objectives as O

        self.kernel = kernels.build(self.kernel)
        self._sobolev = O.get("sobolev", rho=self.rho)
        self._mmd = _plain_mmd(self.kernel)

    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        return self._sobolev.critic_loss(_Witness(critic, real, fake.detach(), self.kernel), real, fake)

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        return self._mmd.generator_loss(critic, real, fake)

    def after_critic_step(self, critic: nn.Module, stats: Stats) -> None:
        """No multiplier update: the paper's Sobolev-MMD keeps only the quadratic penalty."""


def _at_least_two(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValueError(f"{key} must be an integer of at least 2; got {value!r}")


def midpoint_interpolates(real: Tensor, fake: Tensor, points: int | None = None) -> Tensor:
    """``points`` (default: the batch size) points ε_i x_i + (1 − ε_i) y_i with ε_i = (i + ½)/points,
    the pairs (x_i, y_i) taken cyclically from the batches: a deterministic WGAN-GP measure."""
    n = min(real.shape[0], fake.shape[0])
    points = n if points is None else points
    idx = torch.arange(points, device=real.device) % n
    eps = (torch.arange(points, dtype=real.dtype, device=real.device) + 0.5) / points
    eps = eps.reshape((points,) + (1,) * (real.dim() - 1))
    return (eps * real[idx] + (1.0 - eps) * fake[idx]).detach()


@dataclass
class GCMMDInterpolates(Objective):
    """critic −GCMMD², generator +GCMMD² (``igm.constrained.gcmmd2_critic``) with μ the WGAN-GP
    measure: ``points`` points uniformly between real and fake samples (a midpoint grid, held fixed —
    μ is not differentiated through). The grid must be fine compared with the kernel's width on the
    inputs (1/ψ here): a sharp kernel otherwise slips between the μ points."""

    aliases: ClassVar[dict[str, str]] = {"lam": "rkhs_weight"}  # as the library's gcmmd

    kernel: Any = field(default_factory=lambda: kernels.Gaussian(1.0))
    rkhs_weight: float = 1.0
    points: int = 64

    def __post_init__(self) -> None:
        self.kernel = kernels.build(self.kernel)
        self.rkhs_weight = positive("rkhs_weight", self.rkhs_weight)
        _at_least_two("points", self.points)

    def measure_points(self, real: Tensor, fake: Tensor) -> Tensor:
        """The μ points: :func:`midpoint_interpolates` of the batches."""
        return midpoint_interpolates(real, fake, self.points)

    def _value(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        from igm.constrained import gcmmd2_critic

        self._check(real, fake)
        points = self.measure_points(real, fake)
        value, stats = gcmmd2_critic(critic, real, fake, self.kernel, self.rkhs_weight, measure_points=points)
        return value, self._stats(**stats)

    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        value, stats = self._value(critic, real, fake.detach())
        return -value, stats

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        return self._value(critic, real, fake)


class _PsiKernel:
    """k_ψ(a, b) = K(ψa, ψb) for ``lipschitz_mmd`` (which takes a kernel on the inputs)."""

    def __init__(self, kernel: kernels.Kernel, psi: float):
        self.kernel, self.psi = kernel, float(psi)

    def __call__(self, a: Tensor, b: Tensor) -> Tensor:
        return self.kernel(self.psi * a, self.psi * b)


def lipschitz_value(theta: float, psi: float, *, kernel: kernels.Kernel | None = None, lipschitz: float = 1.0,
                    points: int = 16, rkhs_bound: float = 1.0):
    """``igm.constrained.lipschitz_mmd`` between δ₀ and δ_θ with kernel k_ψ, the gradient constraint
    on ``points`` grid points over the bounding box of {0, θ} padded by 10% (the library's default
    grid rule with a chosen count). Returns the :class:`LipschitzMMDResult`."""
    from igm.constrained import lipschitz_mmd

    kernel = kernels.Gaussian(1.0) if kernel is None else kernel
    lo, hi = min(0.0, theta), max(0.0, theta)
    pad = max(0.1 * (hi - lo), 1e-3)
    grid = np.linspace(lo - pad, hi + pad, points)[:, None]
    return lipschitz_mmd(np.zeros((1, 1)), np.full((1, 1), float(theta)), _PsiKernel(kernel, psi),
                         lipschitz=lipschitz, grid=grid, rkhs_bound=rkhs_bound)


class _LipschitzSquared(torch.autograd.Function):
    """LipMMD²(θ, ψ) with central finite-difference gradients (the solver gives no autograd graph)."""

    @staticmethod
    def forward(ctx, psi: Tensor, theta: Tensor, loss: "LipschitzMMDLoss") -> Tensor:  # type: ignore[override]
        ctx.loss = loss
        ctx.point = (float(theta), float(psi))
        return torch.tensor(loss.squared(*ctx.point), dtype=theta.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        loss, (theta, psi), h = ctx.loss, ctx.point, ctx.loss.fd_step
        d_psi = d_theta = None
        if ctx.needs_input_grad[0]:
            d_psi = grad * (loss.squared(theta, psi + h) - loss.squared(theta, psi - h)) / (2 * h)
        if ctx.needs_input_grad[1]:
            d_theta = grad * (loss.squared(theta + h, psi) - loss.squared(theta - h, psi)) / (2 * h)
        return d_psi, d_theta, None


@dataclass
class LipschitzMMDLoss(Objective):
    """critic −LipMMD², generator +LipMMD² on the DiracGAN only (P = δ₀, Q = δ_θ, a critic with a
    scalar parameter ``.psi`` entering as k_ψ(a, b) = K(ψa, ψb))."""

    kernel: Any = field(default_factory=lambda: kernels.Gaussian(1.0))
    lipschitz: float = 1.0
    points: int = 16
    fd_step: float = 1e-3
    rkhs_bound: float = 1.0

    def __post_init__(self) -> None:
        self.kernel = kernels.build(self.kernel)
        for key in ("lipschitz", "fd_step", "rkhs_bound"):
            if not getattr(self, key) > 0:
                raise ValueError(f"{key} must be positive; got {getattr(self, key)}")
        _at_least_two("points", self.points)
        self._cache: dict[tuple[float, float], float] = {}

    def solve(self, theta: float, psi: float):
        """:func:`lipschitz_value` at (θ, ψ) with this loss's kernel, constraint grid and bounds."""
        return lipschitz_value(theta, psi, kernel=self.kernel, lipschitz=self.lipschitz, points=self.points,
                               rkhs_bound=self.rkhs_bound)

    def squared(self, theta: float, psi: float) -> float:
        key = (theta, abs(psi))  # k_ψ = k_{−ψ}
        if key not in self._cache:
            if len(self._cache) > 100_000:
                self._cache.clear()
            with torch.enable_grad():  # the solver's kernel gradients use autograd; Function.forward disables it
                res = self.solve(theta, psi)
            self._cache[key] = res.value**2
        return self._cache[key]

    def _value(self, critic: nn.Module, real: Tensor, fake: Tensor, psi: Tensor) -> Tensor:
        self._check(real, fake)
        if bool(real.detach().abs().max() > 0) or bool((fake.detach() - fake.detach()[0]).abs().max() > 0):
            raise ValueError("the Lipschitz MMD loss is for the DiracGAN only: P = δ₀ and a constant fake batch")
        return _LipschitzSquared.apply(psi, fake.reshape(-1).mean(), self)

    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        value = self._value(critic, real, fake.detach(), critic.psi)
        return -value, self._stats(lipmmd2=value)

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        value = self._value(critic, real, fake, critic.psi.detach())
        return value, self._stats(lipmmd2=value)
