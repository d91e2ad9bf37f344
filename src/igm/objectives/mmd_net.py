"""MMD-nets / generative moment matching networks (Li et al. 2015, Dziugaite et al. 2015): no
critic; the generator minimises MMD with a fixed kernel on the raw, flattened data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from igm import kernels
from igm.mmd import ESTIMATORS, mmd2
from igm.objectives.base import Objective, Stats, register


@register("mmd-net")
@dataclass
class MMDNet(Objective):
    """generator loss: MMD²_k(X, Y) on the flattened samples, or its square root (``sqrt=True``,
    GMMN's choice, with the biased estimator so the root is defined). Default kernel: the Gaussian
    mixture of Li et al. 2015, σ ∈ {2, 5, 10, 20, 40, 80}."""

    double_backward: ClassVar[bool] = False
    bf16_forwards: ClassVar[bool] = True
    generator_reads_real: ClassVar[bool] = True
    speed_note: ClassVar[str] = "no critic; the kernel on the generator's float32 output"

    kernel: Any = kernels.RBFMixture((2.0, 5.0, 10.0, 20.0, 40.0, 80.0))
    estimator: str = "biased"
    sqrt: bool = True

    uses_critic = False
    gathers = True

    def __post_init__(self) -> None:
        self.kernel = kernels.build(self.kernel)
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {self.estimator!r}; valid: {', '.join(ESTIMATORS)}")
        if self.sqrt and self.estimator != "biased":
            raise ValueError("sqrt=True needs estimator='biased' (the unbiased estimate can be negative)")

    def critic_loss(self, critic: nn.Module | None, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        raise ValueError("mmd-net has no critic; the loop must skip critic steps (objective.uses_critic is False)")

    def generator_loss(self, critic: nn.Module | None, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        real, fake = self._across(real.reshape(real.shape[0], -1), fake.reshape(fake.shape[0], -1))
        value = mmd2(real, fake, self.kernel, self.estimator)
        loss = value.clamp_min(1e-12).sqrt() if self.sqrt else value
        return loss, self._stats(mmd2=value)
