"""Scaled MMD (SMMD) and the Scaled Wasserstein GAN (SWGAN) of Arbel et al. 2018 (seed 000, §3.3).

SMMD² = σ² · MMD²_{k_ψ}, with

    σ⁻² = λ + w_diag · E_μ k(x, x) + w_grad · E_μ Σ_i ∂_i ∂_{i+D} k(x, x)
        = λ + w_diag · E_μ k(x, x) + w_grad · c_K · E_μ ‖∇_x φ(x)‖²_F,

where ``c_K = kernel.jacobian_weight`` (2 g'(0) for a radial kernel, 1 for the linear kernel). The
three weights are those of the terms of the constraint the scale comes from,
λ‖f‖²_H + w_diag ‖f‖²_{L2(μ)} + w_grad ‖∇f‖²_{L2(μ)}: ``rkhs_weight`` = λ (spelled ``lam`` before, a
deprecated alias), ``diag_weight`` = w_diag, ``grad_weight`` = w_grad.

- The paper's parametrisation: ``rkhs_weight=λ, diag_weight=1, grad_weight=1``.
- The authors' code (the default): Gaussian σ = 1, ``rkhs_weight=0, diag_weight=1, grad_weight=10``, i.e.
  scale = 1 / (1 + 10 E_P ‖∇φ‖²).
- SWGAN as in the code: linear kernel on a scalar critic, scale = 1 / (1 + 10 (E φ² + E ‖∇φ‖²)).

μ is the real batch (``"target"``, default), WGAN-GP interpolates (``"interpolates"``) or the
mixture of real and fake (``"mixture"``). With μ = target the scale is constant in the generator's
parameters, so the generator loss uses it detached and without a double-backward graph.

Data-parallel training (:meth:`~igm.objectives.Objective.distribute`): the E_μ terms of the scale
are averaged over processes (one differentiable all-reduce), and with the ``"gathered"`` estimator
the MMD² is that of the features gathered from every process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from igm import kernels
from igm.checks import non_negative, positive_int
from igm.mmd import ESTIMATORS, gram_blocks, mmd2_from_gram
from igm.objectives.base import Objective, Stats, critic_features, register, scalar_output
from igm.penalties import JACOBIAN_METHODS, PROBES, forward_jacobian_sqnorm, interpolates, jacobian_sqnorm

MEASURES = ("target", "interpolates", "mixture")
JACOBIANS = JACOBIAN_METHODS


@dataclass
class _Scaled(Objective):
    """Fields and the scale computation shared by SMMD and SWGAN.

    ``jacobian`` picks how E_μ ‖∇φ‖²_F is computed (docs/smmd.md): ``"exact"`` (d backward passes),
    ``"forward"`` (exact too, by D forward-mode products: the cheaper exact route when the input
    dimension D is below the feature dimension d) or ``"projection"`` (the Hutchinson estimate
    with ``projections`` probes per sample of the kind ``probe``)."""

    aliases: ClassVar[dict[str, str]] = {"lam": "rkhs_weight"}

    grad_weight: float = 10.0
    diag_weight: float = 1.0
    rkhs_weight: float = 0.0
    measure: str = "target"
    jacobian: str = "exact"
    projections: int = 1
    probe: str = "rademacher"

    def _validate_scale(self, kernel: kernels.Kernel) -> None:
        if self.measure not in MEASURES:
            raise ValueError(f"unknown measure {self.measure!r}; valid: {', '.join(MEASURES)}")
        if self.jacobian not in JACOBIANS:
            raise ValueError(f"unknown jacobian method {self.jacobian!r}; valid: {', '.join(JACOBIANS)}")
        if self.probe not in PROBES:
            raise ValueError(f"unknown probe {self.probe!r}; valid: {', '.join(PROBES)}")
        self.grad_weight = non_negative("grad_weight", self.grad_weight)
        self.diag_weight = non_negative("diag_weight", self.diag_weight)
        self.rkhs_weight = non_negative("rkhs_weight", self.rkhs_weight)
        self.projections = positive_int("projections", self.projections)
        if kernel.jacobian_weight is None:
            raise ValueError(
                f"kernel {kernel!r} has no constant Jacobian weight (Σ_i ∂_i∂_(i+D) k(x,x) = c‖∇φ‖²); "
                "use a radial (Gaussian, RBF/RQ mixture) or linear kernel, or a sum of them"
            )

    def _with_jacobian(self, critic: nn.Module, points: Tensor, create_graph: bool) -> tuple[Tensor, Tensor]:
        """(φ(points), per-sample ‖∇φ‖²_F): one forward pass shared by the loss and the norm."""
        if self.jacobian == "forward":
            return forward_jacobian_sqnorm(lambda t: critic_features(critic, t), points, create_graph=create_graph)
        if not points.requires_grad:
            points = points.requires_grad_(True)
        feats = critic_features(critic, points)
        jac = jacobian_sqnorm(feats, points, method=self.jacobian, projections=self.projections,
                              probe=self.probe, create_graph=create_graph)
        return feats, jac

    def _features(self, critic: nn.Module, real: Tensor, fake: Tensor, for_critic: bool, create_graph: bool | None = None):
        """Forward passes with the norms at the μ points. Returns (fx, fy, [(feats, ‖∇φ‖²), ...]).
        ``create_graph`` (default: what the step needs) keeps the norms differentiable."""
        if create_graph is None:
            create_graph = self._needs_graph(for_critic)
        real_in = real.detach()
        fake_in = fake.detach() if for_critic or not fake.requires_grad else fake
        if self.measure == "target":
            fx, jx = self._with_jacobian(critic, real_in, create_graph)
            fy = critic_features(critic, fake_in)
            return fx, fy, [(fx, jx)]
        if self.measure == "mixture":
            fx, jx = self._with_jacobian(critic, real_in, create_graph)
            fy, jy = self._with_jacobian(critic, fake_in, create_graph)
            return fx, fy, [(fx, jx), (fy, jy)]
        fx, fy = critic_features(critic, real_in), critic_features(critic, fake_in)
        return fx, fy, [self._with_jacobian(critic, interpolates(real_in, fake_in), create_graph)]

    def _needs_graph(self, for_critic: bool) -> bool:
        """The scale is differentiated in the critic step, and in the generator step when μ depends on
        the fakes; with μ = P it is a constant for the generator."""
        return for_critic or self.measure != "target"

    def _scale(self, kernel: kernels.Kernel, groups, create_graph: bool) -> tuple[Tensor, Tensor]:
        """(scale, E_μ ‖∇φ‖²_F); a mixture μ weights real and fake halves equally."""
        jac_mean = torch.stack([jac.mean() for _, jac in groups]).mean()
        diag_mean = torch.stack([kernel.diag(feats).mean() for feats, _ in groups]).mean()
        if self._parallel is not None:  # data-parallel: E_μ over the global batch, in one all-reduce
            jac_mean, diag_mean = self._rank_mean(torch.stack([jac_mean, diag_mean])).unbind()
        denom = self.rkhs_weight + self.diag_weight * diag_mean + self.grad_weight * kernel.jacobian_weight * jac_mean
        scale = 1.0 / denom
        return (scale, jac_mean) if create_graph else (scale.detach(), jac_mean.detach())


@register("smmd")
@dataclass
class ScaledMMD(_Scaled):
    """critic: −scale · MMD²; generator: scale · MMD². Defaults follow the authors' code."""

    double_backward: ClassVar[bool] = True
    bf16_forwards: ClassVar[bool] = True
    generator_reads_real: ClassVar[bool] = True
    speed_note: ClassVar[str] = "kernel, MMD² and the Jacobian-norm scale in float32"

    gathers: ClassVar[bool] = True

    kernel: Any = kernels.Gaussian(1.0)
    estimator: str = "unbiased"

    def __post_init__(self) -> None:
        self.kernel = kernels.build(self.kernel)
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; valid: {', '.join(ESTIMATORS)}")
        self._validate_scale(self.kernel)

    def _loss(self, critic: nn.Module, real: Tensor, fake: Tensor, for_critic: bool) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        create_graph = self._needs_graph(for_critic)
        fx, fy, groups = self._features(critic, real, fake, for_critic, create_graph)
        scale, jac = self._scale(self.kernel, groups, create_graph)
        if not create_graph:  # generator step with μ = P: the real features are constants
            fx = fx.detach()
        fx, fy = self._across(fx, fy)
        value = mmd2_from_gram(*gram_blocks(fx, fy, self.kernel), estimator=self.estimator)
        smmd2 = scale * value
        return (-smmd2 if for_critic else smmd2), self._stats(mmd2=value, scale=scale, smmd2=smmd2, jacobian=jac)

    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        return self._loss(critic, real, fake, for_critic=True)

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        return self._loss(critic, real, fake, for_critic=False)


@register("swgan")
@dataclass
class ScaledWGAN(_Scaled):
    """Linear kernel on a scalar critic: critic loss −(E φ(x) − E φ(y)) · sqrt(scale), generator
    loss its negative, scale = 1 / (rkhs_weight + diag_weight E φ² + grad_weight E ‖∇φ‖²) — by default the
    authors' 1 / (1 + 10 (E φ² + E ‖∇φ‖²))."""

    double_backward: ClassVar[bool] = True
    bf16_forwards: ClassVar[bool] = True
    generator_reads_real: ClassVar[bool] = True
    speed_note: ClassVar[str] = "scale from float32 Jacobian norms and outputs"

    scalar_critic = True
    gathers: ClassVar[bool] = True

    grad_weight: float = 10.0
    diag_weight: float = 10.0
    rkhs_weight: float = 1.0

    def __post_init__(self) -> None:
        self._validate_scale(kernels.Linear())

    def _loss(self, critic: nn.Module, real: Tensor, fake: Tensor, for_critic: bool) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        create_graph = self._needs_graph(for_critic)
        fx, fy, groups = self._features(critic, real, fake, for_critic, create_graph)
        scale, jac = self._scale(kernels.Linear(), groups, create_graph)
        if not create_graph:
            fx = fx.detach()
        fx, fy = self._across(fx, fy)
        gap = scalar_output(fx).mean() - scalar_output(fy).mean()
        scaled_gap = gap * scale.sqrt()
        return (-scaled_gap if for_critic else scaled_gap), self._stats(gap=gap, scale=scale, scaled_gap=scaled_gap, jacobian=jac)

    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        return self._loss(critic, real, fake, for_critic=True)

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        return self._loss(critic, real, fake, for_critic=False)
