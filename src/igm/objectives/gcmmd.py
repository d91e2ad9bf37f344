"""Gradient-Constrained MMD objective (Arbel et al., 2018, section 3.2 and appendix F.2).

The critic ``φ`` maximises GCMMD² between its features of the real and generated batches, the
generator minimises it. μ (the measure of the gradient constraint) is the real batch, so the
constraint operator does not depend on the generator; its gradient flows through the generated
features in η and in the witness terms ``v``. See :mod:`igm.constrained.gcmmd` for the estimator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Mapping

from torch import Tensor, nn

from igm import kernels
from igm.checks import positive, positive_int
from igm.constrained.gcmmd import METHODS, gcmmd2_critic
from igm.kernels import Gaussian, Kernel
from igm.objectives.base import Objective, Stats, register

__all__ = ["GradientConstrainedMMD"]


@register("gcmmd")
@dataclass
class GradientConstrainedMMD(Objective):
    """critic loss −GCMMD², generator loss +GCMMD² (μ = the real batch).

    ``kernel``: a Kernel with analytic derivatives, a short name or a mapping (``igm.kernels.build``);
    ``rkhs_weight``: the RKHS-norm weight λ > 0 (spelled ``lam`` before, a deprecated alias); ``method``: ``"exact"`` Cholesky solve of the M(r+1) system
    or ``"cholesky"`` (pivoted incomplete Cholesky of rank ``rank`` and Woodbury).
    """

    aliases: ClassVar[dict[str, str]] = {"lam": "rkhs_weight"}
    double_backward: ClassVar[bool] = True
    bf16_forwards: ClassVar[bool] = False
    generator_reads_real: ClassVar[bool] = True
    speed_note: ClassVar[str] = "a ridge-regularised solve built from kernel derivatives and critic Jacobians: auto keeps float32"

    kernel: Kernel | str | Mapping[str, Any] = field(default_factory=lambda: Gaussian(1.0))
    rkhs_weight: float = 1.0
    method: Literal["exact", "cholesky"] = "exact"
    rank: int | None = None

    def __post_init__(self) -> None:
        self.kernel = kernels.build(self.kernel)
        self.rkhs_weight = positive("rkhs_weight", self.rkhs_weight)
        if self.method not in METHODS:
            raise ValueError(f"unknown GCMMD method {self.method!r}; valid: {', '.join(METHODS)}")
        self.rank = positive_int("rank", self.rank, optional=True)

    def _value(self, critic: nn.Module, real: Tensor, fake: Tensor, critic_grad: bool) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        value, stats = gcmmd2_critic(critic, real, fake, self.kernel, self.rkhs_weight, method=self.method, rank=self.rank,
                                     critic_grad=critic_grad)
        return value, self._stats(**stats)

    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        value, stats = self._value(critic, real, fake, critic_grad=True)
        return -value, stats

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        """+GCMMD², differentiable in ``fake`` only: μ is the real batch, so its features and
        Jacobians enter as constants (no double-backward graph in the generator step)."""
        return self._value(critic, real, fake, critic_grad=False)
