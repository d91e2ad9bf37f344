"""The DiracGAN figure's options and its methods: what each panel trains and draws."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from igm import kernels
from igm.analysis import dirac
from igm.analysis.diracgan.objectives import (
    GCMMDInterpolates,
    LipschitzMMDLoss,
    MMDGradientPenaltyAtTarget,
    SobolevMMD,
    plain_mmd,
)
from igm.objectives.base import Objective

__all__ = ["ALL_METHODS", "DiracFigureOptions", "Method", "METHODS", "build_objective", "gaussian", "validate"]


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


def gaussian() -> kernels.Kernel:
    return kernels.Gaussian(1.0)


def _obj(name: str, **hp: Any) -> Objective:
    from igm import objectives as O

    return O.get(name, **hp)


METHODS: dict[str, Method] = {
    "mmd": Method("MMD", lambda o: plain_mmd(gaussian()), witness="kernel", distance=True),
    "mmd-gp": Method("MMD-GP (penalty under P)", lambda o: MMDGradientPenaltyAtTarget(gaussian(), o.gp_weight)),
    "mmd-gp-unif": Method("MMD-GP-unif (interpolates)",
                          lambda o: _obj("mmd-gan-gp", kernel=gaussian(), gp_weight=o.gp_weight, l2_weight=0.0)),
    "sn-mmd": Method("SN-MMD (|ψ| = 1)", lambda o: plain_mmd(gaussian()), critic=dirac.SpectralDiracCritic,
                     witness="kernel", distance=True),
    "sobolev-mmd": Method("Sobolev-MMD", lambda o: SobolevMMD(gaussian(), o.sobolev_rho)),
    "gcmmd": Method("GCMMD (μ = WGAN-GP measure)",
                    lambda o: GCMMDInterpolates(gaussian(), o.gcmmd_lam, o.gcmmd_points),
                    witness="gcmmd", distance=True),
    "gcmmd-p": Method("GCMMD (μ = P)", lambda o: _obj("gcmmd", kernel=gaussian(), lam=o.gcmmd_lam),
                      witness="gcmmd", distance=True),
    "lipmmd": Method("Lipschitz MMD",
                     lambda o: LipschitzMMDLoss(gaussian(), o.lip_constant, o.lip_points, o.fd_step, o.lip_rkhs_bound),
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


def validate(opts: DiracFigureOptions) -> None:
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
