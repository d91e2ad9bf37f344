"""``igm figure diracgan``: the DiracGAN vector fields of seed 000's figures 1 and 5, and its
critic / optimised-distance panels (figure 1 c, d).

The problem (seed 000, example 1): P = δ₀, Q_θ = δ_θ on the real line, a linear critic
φ_ψ(x) = ψx and a Gaussian kernel of bandwidth 1 on the critic's output (bandwidth 1/ψ on x).
Every number is computed by the library's own objectives on batches of identical points through
:mod:`igm.analysis.dirac` (``losses``, ``vector_field``, ``train``); the wrappers below only
assemble library pieces where the paper's variant is not a registered objective:

- ``mmd``: ``mmd-gan-gp`` with a Gaussian kernel and no penalties, i.e. critic −MMD²_u,
  generator MMD²_u.
- ``mmd-gp``: MMD with the gradient penalty of Bińkowski et al. on the batch witness, the
  expectation taken under **P** (seed 000, appendix B); built from ``igm.mmd.witness`` and
  ``igm.penalties``.
- ``mmd-gp-unif``: the same penalty at points drawn uniformly between a sample of P and one of Q
  (the WGAN-GP interpolates): exactly the registered ``mmd-gan-gp`` objective.
- ``sn-mmd``: MMD with a spectrally normalised critic (:class:`igm.analysis.dirac.SpectralDiracCritic`,
  the library's ``igm.nn.spectral`` on a 1×1 weight): φ(x) = sign(ψ)x, so the critic cannot move
  (∂_ψ = 0 everywhere) and the generator follows the bandwidth-1 MMD — "here ψ = 1" in the paper.
- ``sobolev-mmd``: "the loss of Sobolev GAN with the quadratic penalty only": the registered
  ``sobolev`` objective applied to the MMD witness η_ψ (so its IPM E_P η − E_Q η is MMD²) with the
  Lagrange multiplier held at 0; the generator minimises MMD².
- ``gcmmd``: the Gradient-Constrained MMD (``igm.constrained.gcmmd2_critic``) with μ the WGAN-GP
  measure (uniform between 0 and θ, on a deterministic midpoint grid), as the paper's figure 1 uses
  for SMMD; ``gcmmd-p``: the registered ``gcmmd`` objective (μ = P).
- ``lipmmd``: the Lipschitz MMD (``igm.constrained.lipschitz_mmd``, cvxpy) with the learned kernel
  k_ψ(a, b) = K(ψa, ψb), ‖f‖_H ≤ B (``lip_rkhs_bound``, 1 as in SPEC) and ‖∇f‖ ≤ L on a grid over
  [0, θ]; the loss is its square (like MMD², GCMMD², SMMD²) and its gradients are central finite
  differences of the solved value. Slow: a coarser field grid. With B = 1 the RKHS bound, not the
  Lipschitz one, is active for |θ| ≳ √2 / L, and there the distance saturates like the MMD.
- ``smmd``: the registered ``smmd`` objective in the paper's parametrisation (``lam``,
  ``grad_weight=1``, ``diag_weight=1``, μ = P; with a linear critic ‖∇φ‖² = ψ² for every μ, so the
  WGAN-GP measure of the paper's figure 1(b) gives the same field).
- ``wgan`` (weight clipping, applied after each critic step of a trajectory; the field itself is
  the unclipped gradient, the clipping band is drawn) and ``wgan-gp``.

The field drawn is (−∂_θ L_G, −∂_ψ L_C): the gradient-descent direction of each player.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from igm import kernels
from igm.analysis import dirac
from igm.analysis.figures import register, write_json
from igm.objectives.base import Objective, Stats, critic_features

__all__ = [
    "DiracFigureOptions",
    "METHODS",
    "Method",
    "diracgan",
    "build_objective",
    "field",
    "gcmmd_witness",
    "lipschitz_value",
    "MMDGradientPenaltyAtTarget",
    "SobolevMMD",
    "GCMMDInterpolates",
    "LipschitzMMDLoss",
]


# ------------------------------------------------------------------------------------------
# objectives that assemble library pieces


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


def _midpoint_interpolates(real: Tensor, fake: Tensor, points: int | None = None) -> Tensor:
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

    kernel: Any = field(default_factory=lambda: kernels.Gaussian(1.0))
    lam: float = 1.0
    points: int = 64

    def __post_init__(self) -> None:
        self.kernel = kernels.build(self.kernel)

    def _value(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        from igm.constrained import gcmmd2_critic

        self._check(real, fake)
        points = _midpoint_interpolates(real, fake, self.points)
        value, stats = gcmmd2_critic(critic, real, fake, self.kernel, self.lam, measure_points=points)
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
        self._cache: dict[tuple[float, float], float] = {}

    def squared(self, theta: float, psi: float) -> float:
        key = (theta, abs(psi))  # k_ψ = k_{−ψ}
        if key not in self._cache:
            if len(self._cache) > 100_000:
                self._cache.clear()
            with torch.enable_grad():  # the solver's kernel gradients use autograd; Function.forward disables it
                res = lipschitz_value(theta, psi, kernel=self.kernel, lipschitz=self.lipschitz, points=self.points,
                                      rkhs_bound=self.rkhs_bound)
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


# ------------------------------------------------------------------------------------------
# the gradient-constrained critic function


def gcmmd_witness(critic: nn.Module, real: Tensor, fake: Tensor, measure_points: Tensor, kernel: kernels.Kernel,
                  lam: float) -> Callable[[Tensor], Tensor]:
    """The unnormalised optimal GCMMD critic f̃ = (D_μ + λI)⁻¹ η as a function of inputs t.

    With the elements e_b (K(φ(z_a), ·) and Σ_p J_a[p, s] ∂_p K(φ(z_a), ·)), G their Gram matrix and
    v = [⟨e_b, η⟩], Woodbury gives f̃ = (η − Σ_b w_b e_b) / λ with w = (G + MλI)⁻¹ v — the same G and
    v as ``igm.constrained.gcmmd2``, so E_P f̃ − E_Q f̃ = ⟨η, f̃⟩_H = GCMMD² (tested) and the optimal
    critic is f̃ / GCMMD. Needs D ≤ d (the Jacobian itself as the factor L)."""
    from igm.constrained import critic_jacobians
    from igm.mmd import witness

    z = measure_points.detach().requires_grad_(True)
    fz = critic_features(critic, z)
    jac = critic_jacobians(fz, z, create_graph=False).detach()  # (M, d, D)
    fz = fz.detach()
    big_m, d, big_d = jac.shape
    if big_d > d:
        raise ValueError("gcmmd_witness needs input dimension ≤ feature dimension")
    with torch.no_grad():
        fx, fy = critic_features(critic, real), critic_features(critic, fake)
        m = fx.shape[0]
        k_zz, dk_zz, d2k_zz = kernel.derivatives(fz, fz)
        _, dk_zs, _ = kernel.derivatives(fz, torch.cat([fx, fy], 0))
        eta = witness(fx, fy, kernel)
        grad_eta = dk_zs[:, :m].mean(1) - dk_zs[:, m:].mean(1)
        v = torch.cat([eta(fz), torch.einsum("aps,ap->as", jac, grad_eta).reshape(-1)])
        cross = torch.einsum("aps,abp->asb", jac, dk_zz).reshape(big_m * big_d, big_m)
        mixed = torch.einsum("aps,abpq->absq", jac, d2k_zz)
        mixed = torch.einsum("absq,bqt->asbt", mixed, jac).reshape(big_m * big_d, big_m * big_d)
        gram = torch.cat([torch.cat([k_zz, cross.T], 1), torch.cat([cross, mixed], 1)], 0)
        gram = 0.5 * (gram + gram.T) + big_m * lam * torch.eye(gram.shape[0], dtype=gram.dtype)
        w = torch.linalg.solve(gram, v)

    def f(t: Tensor) -> Tensor:
        with torch.no_grad():
            ft = critic_features(critic, t)
            k_zt, dk_zt, _ = kernel.derivatives(fz, ft)
            e_t = torch.einsum("aps,atp->ast", jac, dk_zt).reshape(big_m * big_d, -1)
            return (eta(ft) - w[:big_m] @ k_zt - w[big_m:] @ e_t) / lam

    return f


# ------------------------------------------------------------------------------------------
# options and methods


ALL_METHODS = ("mmd", "mmd-gp", "mmd-gp-unif", "sn-mmd", "sobolev-mmd", "gcmmd", "gcmmd-p", "lipmmd", "smmd",
               "wgan", "wgan-gp")


@dataclass
class DiracFigureOptions:
    methods: tuple[str, ...] = ALL_METHODS  # panels, in order
    grid: int = 20  # field points per axis (an even count keeps θ = 0, ψ = 0 off the grid)
    lip_grid: int = 8  # field points per axis for lipmmd (6 cvxpy solves per point)
    theta_range: tuple[float, ...] = (-3.0, 3.0)
    psi_range: tuple[float, ...] = (-3.0, 3.0)
    batch: int = 16  # identical points per batch (random interpolates of mmd-gp-unif: a 16-sample estimate)
    start_theta: float = 2.0  # the common start of every method's trajectory
    start_psi: float = 2.5
    steps: int = 200  # alternating gradient steps (dirac.train) from the common start
    lr: float = 0.1  # SGD learning rate of both players (MMD's θ-stiffness 2ψ² needs lr < 1/ψ²)
    extra_starts: tuple[float, ...] = (0.5, 0.1, -2.5, 0.5, -1.0, -2.5)  # (θ, ψ) pairs, short trajectories
    extra_steps: int = 150  # steps of the extra trajectories (not drawn for lipmmd)
    critic_theta: float = 2.0  # θ of the critic panel (figure 1 c)
    critic_points: int = 601  # x points of the critic panel
    sup_thetas: int = 13  # θ values (0 .. max θ) of the optimised-distance panel (figure 1 d)
    sup_psis: int = 40  # ψ values of the sup over ψ (log-spaced in [0.02, sup_psi_max])
    sup_psi_max: float = 30.0
    lip_sup_psis: int = 10  # ψ values of the sup for lipmmd, with ψθ ≤ lip_max_psi_theta
    lip_max_psi_theta: float = 8.0  # kernels sharper than this are under-resolved by the constraint grid
    smmd_lam: float = 1.0  # SMMD² = MMD² / (lam + 1 + grad_weight ψ²)
    smmd_grad_weight: float = 1.0
    gcmmd_lam: float = 1.0
    gcmmd_points: int = 64  # μ points of gcmmd (the WGAN-GP measure); 16 lets sharp kernels slip between
    gp_weight: float = 1.0  # mmd-gp, mmd-gp-unif
    sobolev_rho: float = 2.0  # sobolev-mmd: the penalty is (ρ/2)(1 − Ω)²
    wgan_clip: float = 1.0  # |ψ| ≤ clip after each WGAN critic step
    wgan_gp_lam: float = 1.0  # 10 sends the trajectory to θ ≈ −2λ, far off the plot
    lip_constant: float = 1.0  # ‖∇f‖ ≤ L on the constraint grid
    lip_rkhs_bound: float = 1.0  # ‖f‖_H ≤ B (SPEC: 1)
    lip_points: int = 16  # constraint grid points of the Lipschitz MMD
    fd_step: float = 1e-3  # finite-difference step of the Lipschitz MMD gradients
    seed: int = 0
    dpi: int = 110


@dataclass(frozen=True)
class Method:
    label: str
    build: Callable[[DiracFigureOptions], Objective]
    critic: dirac.CriticFactory = dirac.DiracCritic
    witness: str | None = None  # how panel (c) draws its critic: kernel | gcmmd | lipschitz | linear
    distance: bool = False  # −critic loss is a squared distance (panel d)
    symmetric: bool = True  # the losses are even in ψ
    expensive: bool = False  # cvxpy: coarse grid, no extra trajectories


def _gauss() -> kernels.Kernel:
    return kernels.Gaussian(1.0)


def _obj(name: str, **hp: Any) -> Objective:
    from igm import objectives as O

    return O.get(name, **hp)


METHODS: dict[str, Method] = {
    "mmd": Method("MMD", lambda o: _plain_mmd(_gauss()), witness="kernel", distance=True),
    "mmd-gp": Method("MMD-GP (penalty under P)", lambda o: MMDGradientPenaltyAtTarget(_gauss(), o.gp_weight)),
    "mmd-gp-unif": Method("MMD-GP-unif (interpolates)",
                          lambda o: _obj("mmd-gan-gp", kernel=_gauss(), gp_weight=o.gp_weight, l2_weight=0.0)),
    "sn-mmd": Method("SN-MMD (|ψ| = 1)", lambda o: _plain_mmd(_gauss()), critic=dirac.SpectralDiracCritic,
                     witness="kernel", distance=True),
    "sobolev-mmd": Method("Sobolev-MMD", lambda o: SobolevMMD(_gauss(), o.sobolev_rho)),
    "gcmmd": Method("GCMMD (μ = WGAN-GP measure)",
                    lambda o: GCMMDInterpolates(_gauss(), o.gcmmd_lam, o.gcmmd_points),
                    witness="gcmmd", distance=True),
    "gcmmd-p": Method("GCMMD (μ = P)", lambda o: _obj("gcmmd", kernel=_gauss(), lam=o.gcmmd_lam),
                      witness="gcmmd", distance=True),
    "lipmmd": Method("Lipschitz MMD",
                     lambda o: LipschitzMMDLoss(_gauss(), o.lip_constant, o.lip_points, o.fd_step, o.lip_rkhs_bound),
                     witness="lipschitz", distance=True, expensive=True),
    "smmd": Method("SMMD", lambda o: _obj("smmd", lam=o.smmd_lam, grad_weight=o.smmd_grad_weight, diag_weight=1.0),
                   witness="kernel", distance=True),
    "wgan": Method("WGAN (clipping)", lambda o: _obj("wgan", clip=o.wgan_clip), symmetric=False),
    "wgan-gp": Method("WGAN-GP", lambda o: _obj("wgan-gp", lam=o.wgan_gp_lam), witness="linear", symmetric=False),
}


def build_objective(name: str, opts: DiracFigureOptions | None = None) -> Objective:
    """The objective a panel uses (fresh: objectives with state start from scratch)."""
    if name not in METHODS:
        raise ValueError(f"unknown DiracGAN method {name!r}; valid: {', '.join(METHODS)}")
    return METHODS[name].build(opts or DiracFigureOptions())


def _validate(opts: DiracFigureOptions) -> None:
    if not opts.methods:
        raise ValueError("methods must name at least one method")
    for name in opts.methods:
        build_objective(name, opts)  # unknown names list the valid ones
    if len(set(opts.methods)) != len(opts.methods):
        raise ValueError(f"methods are repeated: {list(opts.methods)}")
    for key in ("theta_range", "psi_range"):
        lo_hi = getattr(opts, key)
        if len(lo_hi) != 2 or not lo_hi[0] < lo_hi[1]:
            raise ValueError(f"{key} must be [low, high] with low < high; got {list(lo_hi)}")
    for key in ("grid", "lip_grid"):
        if getattr(opts, key) < 2:
            raise ValueError(f"{key} must be at least 2")
    for key in ("batch", "steps", "critic_points", "sup_thetas", "sup_psis", "lip_sup_psis", "lip_points",
                "gcmmd_points"):
        if getattr(opts, key) < 2:
            raise ValueError(f"{key} must be at least 2")
    if opts.extra_steps < 0:
        raise ValueError("extra_steps must be non-negative")
    if len(opts.extra_starts) % 2:
        raise ValueError("extra_starts must hold (θ, ψ) pairs: an even count of numbers")
    for key in ("lr", "sup_psi_max", "lip_max_psi_theta", "fd_step", "critic_theta", "lip_constant",
                "lip_rkhs_bound", "gcmmd_lam"):
        if not getattr(opts, key) > 0:
            raise ValueError(f"{key} must be positive")


# ------------------------------------------------------------------------------------------
# computations


def field(name: str, opts: DiracFigureOptions, thetas: np.ndarray, psis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(U, V) of shape (len(psis), len(thetas)): U = −∂_θ L_G, V = −∂_ψ L_C at (thetas[j], psis[i])."""
    method, obj = METHODS[name], build_objective(name, opts)
    u = np.zeros((len(psis), len(thetas)))
    v = np.zeros_like(u)
    for i, psi in enumerate(psis):
        for j, theta in enumerate(thetas):
            torch.manual_seed(opts.seed)  # common random interpolates at every point
            u[i, j], v[i, j] = dirac.vector_field(obj, float(theta), float(psi), opts.batch, method.critic)
    return u, v


def _trajectory(name: str, opts: DiracFigureOptions, theta: float, psi: float, steps: int) -> dict[str, Any]:
    torch.manual_seed(opts.seed)
    hist = dirac.train(build_objective(name, opts), theta=theta, psi=psi, steps=steps, lr=opts.lr,
                       batch=opts.batch, critic=METHODS[name].critic)
    return {"start": [theta, psi], "theta": [h.theta for h in hist], "psi": [h.psi for h in hist],
            "generator_loss": [h.generator_loss for h in hist]}


def _critic_value(obj: Objective, method: Method, theta: float, psi: float, batch: int, seed: int) -> float:
    """−critic loss at (θ, ψ): the critic's objective (a squared distance for the distance methods)."""
    torch.manual_seed(seed)
    critic, gen = method.critic(psi), dirac.DiracGenerator(theta)
    real = torch.zeros(batch, 1, dtype=torch.float64)
    loss, _ = obj.critic_loss(critic, real, gen(batch).detach())
    return -float(loss.detach())


def _psi_candidates(method: Method, opts: DiracFigureOptions, theta: float) -> np.ndarray:
    if method.expensive:
        top = min(opts.sup_psi_max, opts.lip_max_psi_theta / max(abs(theta), 1e-12))
        return np.geomspace(0.02, max(top, 0.03), opts.lip_sup_psis)
    pos = np.geomspace(0.02, opts.sup_psi_max, opts.sup_psis)
    return pos if method.symmetric else np.concatenate([-pos[::-1], pos])


def _best_psi(name: str, opts: DiracFigureOptions, theta: float) -> tuple[float, float, bool]:
    """(ψ*, value, saturated): the ψ on the candidate grid maximising the critic's objective at θ
    (the first of ties); ``saturated`` when the largest |ψ| on the grid reaches the same value, i.e.
    the supremum is approached as |ψ| → ∞ rather than attained."""
    method, obj = METHODS[name], build_objective(name, opts)
    cands = _psi_candidates(method, opts, theta)
    values = [_critic_value(obj, method, theta, float(p), opts.batch, opts.seed) for p in cands]
    k = int(np.argmax(values))
    top = max(values[0], values[-1]) if not method.symmetric else values[-1]
    return float(cands[k]), float(values[k]), bool(top >= values[k] - 1e-12 * max(1.0, abs(values[k])))


def _critic_curve(name: str, opts: DiracFigureOptions, psi: float, x: np.ndarray) -> np.ndarray:
    """The critic function at θ = critic_theta, ψ as a function of x (unnormalised)."""
    method, theta, n = METHODS[name], opts.critic_theta, opts.batch
    real = torch.zeros(n, 1, dtype=torch.float64)
    fake = torch.full((n, 1), theta, dtype=torch.float64)
    t = torch.as_tensor(x, dtype=torch.float64)[:, None]
    critic = method.critic(psi)
    if method.witness == "kernel":
        from igm.mmd import witness

        with torch.no_grad():
            return witness(critic(real), critic(fake), _gauss())(critic(t)).numpy()
    if method.witness == "gcmmd":
        points = _midpoint_interpolates(real, fake, opts.gcmmd_points) if name == "gcmmd" else real
        return gcmmd_witness(critic, real, fake, points, _gauss(), opts.gcmmd_lam)(t).numpy()
    if method.witness == "lipschitz":
        res = lipschitz_value(theta, psi, kernel=_gauss(), lipschitz=opts.lip_constant, points=opts.lip_points,
                              rkhs_bound=opts.lip_rkhs_bound)
        return res.witness(x[:, None])
    with torch.no_grad():  # linear critic
        return critic(t).reshape(-1).numpy()


# ------------------------------------------------------------------------------------------
# plotting


def _plot_fields(result: dict, opts: DiracFigureOptions, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    names = list(opts.methods)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.3 * rows), squeeze=False)
    norm = Normalize(vmin=-6.0, vmax=1.0)
    mesh = None
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        f = result["fields"][name]
        th, ps = np.asarray(f["theta"]), np.asarray(f["psi"])
        u, v = np.asarray(f["u"]), np.asarray(f["v"])
        speed = np.log10(np.hypot(u, v) + 1e-12)
        mesh = ax.pcolormesh(th, ps, np.clip(speed, -6, 1), norm=norm, cmap="magma", shading="gouraud")
        norm_uv = np.hypot(u, v)
        if len(th) >= 10 and len(ps) >= 10 and norm_uv.max() > 0:
            ax.streamplot(th, ps, u, v, color="white", density=0.8, linewidth=0.6, arrowsize=0.7)
        else:  # coarse grids (lipmmd, quick mode): unit arrows
            scale = np.where(norm_uv > 0, norm_uv, 1.0)
            ax.quiver(th, ps, u / scale, v / scale, color="white", angles="xy", pivot="middle", width=0.006)
        for k, traj in enumerate(result["trajectories"][name]):
            main = k == 0
            ax.plot(traj["theta"], traj["psi"], color="tab:cyan" if main else "tab:green", lw=1.6 if main else 1.1)
            ax.plot(traj["theta"][0], traj["psi"][0], "o", color="tab:cyan" if main else "tab:green", ms=4)
            ax.plot(traj["theta"][-1], traj["psi"][-1], "x", color="white", ms=5, mew=1.5)
        if name == "wgan":
            for s in (-opts.wgan_clip, opts.wgan_clip):
                ax.axhline(s, color="white", ls="--", lw=0.8)
        ax.set_xlim(th.min(), th.max())
        ax.set_ylim(ps.min(), ps.max())
        final = result["final"][name]
        ax.set_title(f"{METHODS[name].label}\nfinal |θ| = {final['abs_theta']:.2g} after {opts.steps} steps",
                     fontsize=8.5)
        ax.set_xlabel("θ (generator)", fontsize=8)
        ax.set_ylabel("ψ (critic)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"DiracGAN (P = δ₀, Q = δ_θ, φ_ψ(x) = ψx): fields (−∂θ L_G, −∂ψ L_C), colour log₁₀ speed; "
                 f"cyan: {opts.steps} alternating steps from ({opts.start_theta:g}, {opts.start_psi:g}), "
                 f"lr {opts.lr:g}", fontsize=9)
    fig.subplots_adjust(left=0.05, right=0.92, bottom=0.06, top=1.0 - 0.85 / (3.3 * rows), wspace=0.3,
                        hspace=0.45)  # fixed margins: tight_layout costs seconds per call
    if mesh is not None:
        cax = fig.add_axes((0.94, 0.2, 0.012, 0.6))
        fig.colorbar(mesh, cax=cax, label="log₁₀ ‖field‖")
    _save(fig, path, opts.dpi, quantise=True)
    plt.close(fig)


def _save(fig, path: Path, dpi: int, quantise: bool = False) -> None:
    """Save as PNG; ``quantise``: a 256-colour palette (the smooth speed maps compress ~3× better)."""
    if not quantise:
        fig.savefig(path, dpi=dpi)
        return
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    with Image.open(buf) as im:
        im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def _plot_critics(result: dict, opts: DiracFigureOptions, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_c, ax_d) = plt.subplots(1, 2, figsize=(11, 4))
    crit = result["critics"]
    x = np.asarray(crit["x"])
    for name, c in crit["curves"].items():
        sup = " (sup as ψ → ∞)" if c["saturated"] else ""
        ax_c.plot(x, c["normalised"], lw=1.3, label=f"{METHODS[name].label}, ψ = {c['psi']:.3g}{sup}")
    ax_c.axvline(0.0, color="grey", lw=0.6, ls=":")
    ax_c.axvline(opts.critic_theta, color="grey", lw=0.6, ls=":")
    ax_c.set_title(f"(c) optimal critics at θ = {opts.critic_theta:g}, scaled to f(0) = 1, f(θ) = 0", fontsize=9)
    ax_c.set_xlabel("x")
    ax_c.legend(fontsize=7)
    dist = result["distances"]
    th = np.asarray(dist["theta"])
    for name, vals in dist["values"].items():
        ax_d.plot(th, vals, "o-", ms=3, lw=1.2, label=METHODS[name].label)
    ax_d.set_title("(d) distance optimised over ψ (sup on a ψ grid), as a function of θ", fontsize=9)
    ax_d.set_xlabel("θ")
    ax_d.set_ylabel("sup_ψ D_ψ(δ₀, δ_θ)")
    ax_d.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path, opts.dpi)
    plt.close(fig)


# ------------------------------------------------------------------------------------------
# the figure


def _first_below(values: list[float], tol: float) -> int | None:
    for k, val in enumerate(values):
        if abs(val) < tol:
            return k
    return None


@register(
    "diracgan",
    DiracFigureOptions,
    quick={"grid": 5, "steps": 60, "lr": 0.3, "extra_starts": (), "critic_points": 201, "sup_thetas": 4,
           "sup_psis": 16, "gcmmd_points": 16, "dpi": 60,
           "methods": tuple(m for m in ALL_METHODS if m != "lipmmd")},
    help="seed 000 figures 1 and 5: DiracGAN vector fields, trajectories, critics and optimised distances",
)
def diracgan(opts: DiracFigureOptions, out_dir: Path) -> dict:
    _validate(opts)
    torch.set_num_threads(1)
    thetas = np.linspace(*opts.theta_range, opts.grid)
    psis = np.linspace(*opts.psi_range, opts.grid)
    fields: dict[str, Any] = {}
    trajectories: dict[str, list] = {}
    final: dict[str, Any] = {}
    timings: dict[str, float] = {}
    pairs = list(zip(opts.extra_starts[::2], opts.extra_starts[1::2]))
    for name in opts.methods:
        t0 = time.perf_counter()
        method = METHODS[name]
        th, ps = (np.linspace(*opts.theta_range, opts.lip_grid), np.linspace(*opts.psi_range, opts.lip_grid)) \
            if method.expensive else (thetas, psis)
        u, v = field(name, opts, th, ps)
        fields[name] = {"theta": th, "psi": ps, "u": u, "v": v}
        main = _trajectory(name, opts, opts.start_theta, opts.start_psi, opts.steps)
        trajectories[name] = [main]
        if not method.expensive and opts.extra_steps:
            trajectories[name] += [_trajectory(name, opts, a, b, opts.extra_steps) for a, b in pairs]
        final[name] = {
            "abs_theta": abs(main["theta"][-1]),
            "theta": main["theta"][-1],
            "psi": main["psi"][-1],
            "first_step_abs_theta_below_0.05": _first_below(main["theta"], 0.05),
            "generator_loss": main["generator_loss"][-1],
        }
        timings[name] = time.perf_counter() - t0

    # figure 1 (c): the critics at θ = critic_theta
    x = np.linspace(-1.5, opts.critic_theta + 1.5, opts.critic_points)
    curves: dict[str, Any] = {}
    for name in opts.methods:
        method = METHODS[name]
        if method.witness is None:
            continue
        t0 = time.perf_counter()
        if name == "sn-mmd":
            psi_star, saturated = 1.0, False
        else:
            psi_star, _, saturated = _best_psi(name, opts, opts.critic_theta)
        f = _critic_curve(name, opts, psi_star, x)
        f0, ft = np.interp([0.0, opts.critic_theta], x, f)
        gap = float(f0 - ft)
        curves[name] = {"psi": psi_star, "saturated": saturated, "values": f, "gap": gap,
                        "normalised": (f - ft) / gap if gap != 0 else np.zeros_like(f)}
        timings[name] += time.perf_counter() - t0

    # figure 1 (d): distances optimised over ψ
    sup_theta = np.linspace(0.0, max(abs(opts.theta_range[0]), abs(opts.theta_range[1])), opts.sup_thetas)
    dist_values: dict[str, list] = {}
    dist_psi: dict[str, list] = {}
    for name in opts.methods:
        if not METHODS[name].distance:
            continue
        t0 = time.perf_counter()
        vals, best = [], []
        for theta in sup_theta:
            if theta == 0.0:
                vals.append(0.0)
                best.append(None)
                continue
            p, val, _ = _best_psi(name, opts, float(theta))
            vals.append(math.sqrt(max(val, 0.0)))
            best.append(p)
        dist_values[name], dist_psi[name] = vals, best
        timings[name] += time.perf_counter() - t0

    result: dict[str, Any] = {
        "options": opts,
        "fields": fields,
        "trajectories": trajectories,
        "final": final,
        "critics": {"theta": opts.critic_theta, "x": x, "curves": curves},
        "distances": {"theta": sup_theta, "values": dist_values, "argmax_psi": dist_psi},
        "timings": timings,
    }
    fields_png, critics_png = out_dir / "diracgan-fields.png", out_dir / "diracgan-critics.png"
    _plot_fields(result, opts, fields_png)
    _plot_critics(result, opts, critics_png)
    width = max(len(n) for n in opts.methods)
    summary = [f"final |θ| after {opts.steps} alternating steps from (θ, ψ) = ({opts.start_theta:g}, "
               f"{opts.start_psi:g}), lr {opts.lr:g}:"]
    for name in opts.methods:
        fin = final[name]
        below = fin["first_step_abs_theta_below_0.05"]
        summary.append(f"  {name:<{width}s} |θ| {fin['abs_theta']:.3g}  ψ {fin['psi']:+.3g}  "
                       f"|θ| < 0.05 from step {below if below is not None else '-'}  ({timings[name]:.1f} s)")
    result["summary"] = summary
    result["figures"] = [str(fields_png), str(critics_png)]
    write_json(out_dir / "diracgan.json", _compact(result))
    return result


def _sig(values: Any, digits: int = 10) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (for a smaller JSON)."""
    a = np.asarray(values, dtype=float)
    return np.vectorize(lambda v: float(f"{v:.{digits}g}"), otypes=[float])(a) if a.size else a


def _compact(result: dict, max_points: int = 101) -> dict:
    """The JSON copy of the result: trajectories every ``stride`` steps (at most ``max_points``
    points, the last one kept), arrays to 10 significant digits, the critics only normalised."""
    out = dict(result)
    out["fields"] = {k: {key: _sig(val) for key, val in f.items()} for k, f in result["fields"].items()}
    trajs = {}
    for name, runs in result["trajectories"].items():
        trajs[name] = []
        for run in runs:
            n = len(run["theta"])
            stride = max(1, -(-(n - 1) // (max_points - 1)))
            idx = sorted(set(range(0, n, stride)) | {n - 1})
            trajs[name].append({"start": run["start"], "stride": stride, "step": idx,
                                "theta": _sig(np.asarray(run["theta"])[idx]), "psi": _sig(np.asarray(run["psi"])[idx])})
    out["trajectories"] = trajs
    crit = result["critics"]
    out["critics"] = {**crit, "x": _sig(crit["x"]), "curves": {
        k: {key: (_sig(val) if key == "normalised" else val) for key, val in c.items() if key != "values"}
        for k, c in crit["curves"].items()}}
    return out
