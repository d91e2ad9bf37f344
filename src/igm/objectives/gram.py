"""GRAM: generative ratio matching networks (seed 003, Srivastava et al.).

The critic ``f_θ : R^D → R^K`` is trained to *preserve density ratios*: it maximises an estimate of the
Pearson divergence between the projected real and generated distributions, with the ratio at the
generated points estimated in closed form by kernel mean matching (KMM). The generator minimises the
MMD² in the critic's space. Both use the same Gaussian Gram matrices and are updated simultaneously.

With X the real batch (m points), Y the fake batch (n points), features ``fx = f(X)``, ``fy = f(Y)``
and one Gaussian kernel ``k_σ(a, b) = exp(−‖a − b‖² / (2σ²))`` per bandwidth:

- ratio (paper eq. 8 with Sugiyama's n/m and the authors' ridge ε):
  ``r_σ = (n/m) (K_yy + εI)⁻¹ K_yx 1_m`` and ``r = mean_σ r_σ`` (one Cholesky solve per σ);
- critic loss (minimised): ``−mean_j (r_j − 1)² − λ Σ_j r_j`` (the negative of paper eq. 9);
- generator loss: biased MMD² (paper eq. 10) with ``Σ_σ k_σ`` (``RBFMixture(sigmas)``), optionally
  ``sqrt(max(MMD², 1e-12))`` as in the authors' code.

The positivity term. Paper eq. 9 *adds* ``λ r̂ᵀ1`` (a sum over the n generated points, λ = 1 in all
experiments) to the maximised Pearson estimate; SPEC states the same, and that is what ``positivity``
weights here (0 turns it off). The authors' code differs: the Julia code (JuliaGRAM) has no such term
and clips r to [0, 1e9] instead; the PyTorch code (GRAMTorch) either ReLU-clips r or subtracts
``mean(r)`` (not the sum) from the critic loss, and averages nothing over σ (it sums the r_σ).

Bandwidths. ``sigmas=None`` uses a median heuristic on the *detached* critic features of the
concatenated batch: ``σ² = median{‖z_a − z_b‖² : a < b} / 2`` over the distinct pairs of
``z = cat(fx, fy)`` (diagonal zeros excluded; the numpy-style median, averaging the two middle values),
so that ``k_σ = exp(−‖a − b‖² / median)``. If that median is 0 (more than half the pairs coincide), the
median of the positive squared distances is used; if all points coincide, σ = 1. (JuliaGRAM instead
takes ``σ = sqrt(median)`` over all three blocks, zeros included.)

Gradients. :meth:`GRAM.joint_loss` runs the critic once on each batch with ``fake`` attached to the
generator, so the critic loss also depends on the generator and the generator loss on the critic: the
loop must differentiate the critic loss with respect to the critic's parameters only and the generator
loss with respect to the generator's only (two optimisers, as in the paper's Algorithm 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch
from torch import Tensor, nn

from igm.checks import non_negative, positive, positive_tuple
from igm.kernels import Pairwise
from igm.mmd import mmd2_from_gram
from igm.objectives.base import Objective, Stats, critic_features, register

__all__ = ["GRAM", "density_ratio", "median_bandwidth"]


def median_bandwidth(fx: Tensor, fy: Tensor) -> float:
    """The median-heuristic bandwidth σ of the module docstring (computed without gradient)."""
    z = torch.cat([fx, fy], 0).detach()
    d = Pairwise(z).sqdist
    upper = torch.ones_like(d, dtype=torch.bool).triu(1)
    values = d[upper]
    if values.numel() == 0:
        return 1.0

    def median(v: Tensor) -> float:
        s = v.sort().values
        k = s.numel()
        return 0.5 * float(s[(k - 1) // 2] + s[k // 2])

    med = median(values)
    if not med > 0:
        positive = values[values > 0]
        med = median(positive) if positive.numel() else 2.0  # all points coincide: σ = 1
    if not math.isfinite(med):
        raise ValueError("the median heuristic got non-finite critic features; pass explicit sigmas")
    return math.sqrt(med / 2.0)


def _gaussian_grams(fx: Tensor, fy: Tensor, sigmas: Sequence[float]) -> list[Tensor]:
    """One Gaussian Gram matrix per σ on ``cat(fx, fy)``, all from one pairwise computation; the
    distances are taken in float64 (float32 cancellation, ~eps·spread², can make ``K_yy + εI``
    indefinite once the critic's features spread out) and the matrices returned in ``fx.dtype``."""
    d = Pairwise(torch.cat([fx, fy], 0).double()).sqdist
    return [torch.exp(d * (-1.0 / (2.0 * s * s))).to(fx.dtype) for s in sigmas]


def _kmm_ratio(k: Tensor, m: int, eps: float) -> Tensor:
    """``(n/m) (K_yy + εI)⁻¹ K_yx 1`` from the joint Gram matrix of ``cat(fx, fy)`` (real first)."""
    kyy, kyx = k[m:, m:], k[m:, :m]
    n = kyy.shape[0]
    # factorised in float64: with ε = 1e-3 and ‖K_yy‖ up to n, a float32 Cholesky fails on
    # clustered fakes (its backward error, ~n·eps₃₂·‖K_yy‖, exceeds ε); the result is cast back
    a = kyy.double() + eps * torch.eye(n, dtype=torch.float64, device=k.device)
    b = kyx.double().sum(1, keepdim=True) * (n / m)
    try:
        chol = torch.linalg.cholesky(a)
    except torch.linalg.LinAlgError as err:
        raise torch.linalg.LinAlgError(
            f"GRAM density ratio: the Cholesky factorisation of K_yy + {eps:g}·I failed ({err}); the critic "
            "features may be non-finite, or the matrix too ill-conditioned even in float64: use a larger eps"
        ) from err
    return torch.cholesky_solve(b, chol)[:, 0].to(k.dtype)


def _resolve_sigmas(fx: Tensor, fy: Tensor, sigmas: Sequence[float] | float | None) -> tuple[float, ...]:
    if sigmas is None:
        return (median_bandwidth(fx, fy),)
    return _validate_sigmas(sigmas)


def _validate_sigmas(sigmas: Sequence[float] | float) -> tuple[float, ...]:
    return positive_tuple("GRAM sigmas", sigmas)


def _validate_eps(eps: float) -> float:
    return positive("GRAM eps", eps)


def density_ratio(fx: Tensor, fy: Tensor, sigmas: Sequence[float] | float | None, eps: float = 1e-3) -> Tensor:
    """KMM estimate of ``p(y_j)/q(y_j)`` at the fake points, shape (n,), differentiable in both inputs.

    ``fx``: (m, K) samples of p (real features); ``fy``: (n, K) samples of q (fake features);
    ``sigmas``: Gaussian bandwidths (the estimate is the mean of the per-σ estimates) or ``None`` for the
    median heuristic; ``eps``: the ridge added to ``K_yy`` before the Cholesky solve.
    """
    eps = _validate_eps(eps)
    if fx.dim() != 2 or fy.dim() != 2:
        raise ValueError(f"density_ratio takes (m, K) and (n, K) features; got {tuple(fx.shape)} and {tuple(fy.shape)}")
    sigmas = _resolve_sigmas(fx, fy, sigmas)
    grams = _gaussian_grams(fx, fy, sigmas)
    return torch.stack([_kmm_ratio(k, fx.shape[0], eps) for k in grams]).mean(0)


@register("gram")
@dataclass
class GRAM(Objective):
    """Generative ratio matching (see the module docstring for the exact formulas and variant).

    ``sigmas``: Gaussian bandwidths in the critic's space (``None``: median heuristic per batch);
    ``eps``: KMM ridge; ``positivity``: λ of the paper's ``λ Σ_j r_j`` term (0 disables it);
    ``generator_sqrt``: train the generator on ``sqrt(MMD²)`` as the authors' code does.
    """

    double_backward: ClassVar[bool] = False
    bf16_forwards: ClassVar[bool] = False
    generator_reads_real: ClassVar[bool] = True
    speed_note: ClassVar[str] = "KMM ratio solves (K_yy + εI)⁻¹: feature rounding is amplified up to 1/ε, so auto keeps float32"

    sigmas: tuple[float, ...] | None = None
    eps: float = 1e-3
    positivity: float = 1.0
    generator_sqrt: bool = False

    simultaneous: ClassVar[bool] = True
    gathers: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.sigmas is not None:
            self.sigmas = _validate_sigmas(self.sigmas)
        self.eps = _validate_eps(self.eps)
        self.positivity = non_negative("GRAM positivity", self.positivity)
        if not isinstance(self.generator_sqrt, bool):
            raise ValueError(f"GRAM generator_sqrt must be a bool; got {self.generator_sqrt!r}")

    # -- pieces --------------------------------------------------------------------------------
    def _critic_part(self, grams: list[Tensor], m: int) -> tuple[Tensor, Stats]:
        r = torch.stack([_kmm_ratio(k, m, self.eps) for k in grams]).mean(0)
        pearson = ((r - 1.0) ** 2).mean()
        loss = -pearson - self.positivity * r.sum()
        return loss, self._stats(pearson=pearson, ratio_mean=r.mean(), ratio_min=r.min())

    def _generator_part(self, grams: list[Tensor], m: int) -> tuple[Tensor, Stats]:
        k = grams[0]
        for g in grams[1:]:
            k = k + g  # = RBFMixture(sigmas) on the same pairwise distances
        mmd2 = mmd2_from_gram(k[:m, :m], k[:m, m:], k[m:, m:], estimator="biased")
        loss = torch.sqrt(mmd2.clamp(min=1e-12)) if self.generator_sqrt else mmd2
        return loss, self._stats(mmd2=mmd2)

    def _grams(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[list[Tensor], int]:
        self._check(real, fake)
        fx, fy = self._across(critic_features(critic, real), critic_features(critic, fake))
        return _gaussian_grams(fx, fy, _resolve_sigmas(fx, fy, self.sigmas)), fx.shape[0]

    # -- interface -----------------------------------------------------------------------------
    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        """``−mean (r − 1)² − λ Σ r``; stats ``pearson``, ``ratio_mean``, ``ratio_min``."""
        return self._critic_part(*self._grams(critic, real, fake))

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        """Biased MMD² (or its square root) in the critic's space; stats ``mmd2``."""
        return self._generator_part(*self._grams(critic, real, fake))

    def joint_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Stats]:
        """Both losses from one critic pass over ``real`` and one over ``fake`` (shared Gram matrices)."""
        grams, m = self._grams(critic, real, fake)
        c_loss, c_stats = self._critic_part(grams, m)
        g_loss, g_stats = self._generator_part(grams, m)
        return c_loss, g_loss, {**c_stats, **g_stats}
