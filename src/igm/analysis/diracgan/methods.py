"""The DiracGAN figure's methods: what each panel trains and draws.

A :class:`Method` names an objective (a registered name for ``igm.objectives.get``, or a class of
:mod:`igm.analysis.diracgan.objectives`), the constructor arguments the figure fixes (the Gaussian
kernel of bandwidth 1 that the closed forms assume), the figure's defaults for the rest, and the
flags that say how the figure treats the method. Hyperparameters given in the ``methods`` option
(:mod:`igm.analysis.diracgan.options`) go to the objective on top of the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from igm import kernels
from igm.analysis import dirac
from igm.analysis.diracgan.objectives import (
    GCMMDInterpolates,
    LipschitzMMDLoss,
    MMDGradientPenaltyAtTarget,
    SobolevMMD,
)
from igm.objectives.base import Objective
from igm.registry import construct, hyperparameter_names

if TYPE_CHECKING:
    from igm.analysis.diracgan.options import DiracFigureOptions

__all__ = ["ALL_METHODS", "Method", "METHODS", "WITNESSES", "build_objective", "gaussian"]

#: How panel (c) draws a method's critic (:func:`igm.analysis.diracgan.compute.critic_curve`).
WITNESSES = ("kernel", "gcmmd", "gcmmd-interpolates", "lipschitz", "linear")


def gaussian() -> kernels.Kernel:
    """The kernel of every kernel method: Gaussian, bandwidth 1 on the critic's output."""
    return kernels.Gaussian(1.0)


@dataclass(frozen=True)
class Method:
    """One panel: its objective and what the figure does differently for it."""

    label: str
    objective: str | type[Objective]  # a name for igm.objectives.get, or an Objective dataclass
    defaults: Mapping[str, Any] = field(default_factory=dict)  # the figure's hyperparameters
    fixed: Mapping[str, Any] = field(default_factory=dict)  # constructor arguments that are not options
    critic: dirac.CriticFactory = dirac.DiracCritic
    witness: str | None = None  # how panel (c) draws the critic (WITNESSES); None: not drawn
    distance: bool = False  # −critic loss is a squared distance (panel d)
    symmetric: bool = True  # the losses are even in ψ
    expensive: bool = False  # cvxpy: coarse grid, no extra trajectories
    frozen_psi: float | None = None  # the critic cannot leave |ψ| = this: panel (c) draws it there

    def __post_init__(self) -> None:
        if self.witness is not None and self.witness not in WITNESSES:
            raise ValueError(f"method {self.label!r}: witness must be one of {WITNESSES}; got {self.witness!r}")

    def objective_class(self) -> type[Objective]:
        if isinstance(self.objective, str):
            from igm import objectives as O

            return O.registry.get(self.objective)
        return self.objective

    def hyperparameters(self) -> list[str]:
        """The names the ``methods`` option accepts for this method."""
        return [n for n in hyperparameter_names(self.objective_class()) if n not in self.fixed and n != "check_finite"]

    def build(self, params: Mapping[str, Any]) -> Objective:
        """The objective with ``params`` on top of the figure's defaults."""
        kwargs = {**self.fixed, **self.defaults, **params}
        if isinstance(self.objective, str):
            from igm import objectives as O

            return O.get(self.objective, **kwargs)
        return construct(self.objective, kwargs, what=f"objective {self.objective.__name__}")


def _mmd_gan_gp(**defaults: Any) -> dict[str, Any]:
    """``mmd-gan-gp`` with the figure's kernel and no l2 penalty (``gp_weight`` 0 too unless given)."""
    fixed = {"kernel": gaussian(), "l2_weight": 0.0}
    if "gp_weight" not in defaults:
        fixed["gp_weight"] = 0.0
    return {"objective": "mmd-gan-gp", "fixed": fixed, "defaults": defaults}


_KERNEL = {"kernel": gaussian()}

METHODS: dict[str, Method] = {
    "mmd": Method("MMD", **_mmd_gan_gp(), witness="kernel", distance=True),
    "mmd-gp": Method("MMD-GP (penalty under P)", MMDGradientPenaltyAtTarget, {"gp_weight": 1.0}, _KERNEL),
    "mmd-gp-unif": Method("MMD-GP-unif (interpolates)", **_mmd_gan_gp(gp_weight=1.0)),
    "sn-mmd": Method("SN-MMD (|ψ| = 1)", **_mmd_gan_gp(), critic=dirac.SpectralDiracCritic, witness="kernel",
                     distance=True, frozen_psi=1.0),
    "sobolev-mmd": Method("Sobolev-MMD", SobolevMMD, {"rho": 2.0}, _KERNEL),  # the penalty is (ρ/2)(1 − Ω)²
    # 64 μ points: with 16 sharp kernels slip between them
    "gcmmd": Method("GCMMD (μ = WGAN-GP measure)", GCMMDInterpolates, {"rkhs_weight": 1.0, "points": 64}, _KERNEL,
                    witness="gcmmd-interpolates", distance=True),
    "gcmmd-p": Method("GCMMD (μ = P)", "gcmmd", {"rkhs_weight": 1.0}, _KERNEL, witness="gcmmd", distance=True),
    # ‖∇f‖ ≤ lipschitz on a grid of `points`, ‖f‖_H ≤ rkhs_bound (SPEC: 1), finite-difference gradients
    "lipmmd": Method("Lipschitz MMD", LipschitzMMDLoss,
                     {"lipschitz": 1.0, "points": 16, "fd_step": 1e-3, "rkhs_bound": 1.0}, _KERNEL,
                     witness="lipschitz", distance=True, expensive=True),
    # the paper's parametrisation: SMMD² = MMD² / (rkhs_weight + diag_weight + grad_weight ψ²)
    "smmd": Method("SMMD", "smmd", {"rkhs_weight": 1.0, "grad_weight": 1.0, "diag_weight": 1.0}, _KERNEL,
                   witness="kernel", distance=True),
    "wgan": Method("WGAN (clipping)", "wgan", {"clip": 1.0}, symmetric=False),  # |ψ| ≤ clip after each step
    # λ = 10 sends the trajectory to θ ≈ −2λ, far off the plot
    "wgan-gp": Method("WGAN-GP", "wgan-gp", {"gp_weight": 1.0}, witness="linear", symmetric=False),
}

ALL_METHODS = tuple(METHODS)


def build_objective(name: str, opts: DiracFigureOptions | None = None) -> Objective:
    """The objective a panel uses, with the hyperparameters ``opts.methods`` gives it (fresh:
    objectives with state start from scratch). A bad value is a ValueError naming the method."""
    if name not in METHODS:
        raise ValueError(f"unknown DiracGAN method {name!r}; valid: {', '.join(METHODS)}")
    params = {} if opts is None else opts.methods.get(name, {})
    try:
        return METHODS[name].build(params)
    except (TypeError, ValueError) as err:
        raise ValueError(f"DiracGAN method {name!r}: {str(err).splitlines()[0]}") from None
