"""The non-saturating GAN of Goodfellow et al. (the baseline of seed 003)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from igm.objectives.base import Objective, Stats, critic_features, register, scalar_output


@register("gan")
@dataclass
class GAN(Objective):
    """critic: mean softplus(−D(x)) + mean softplus(D(y)); generator: mean softplus(−D(y)).

    D outputs logits, one per sample.
    """

    double_backward: ClassVar[bool] = False
    bf16_forwards: ClassVar[bool] = True
    generator_reads_real: ClassVar[bool] = False
    speed_note: ClassVar[str] = "scalar critic, softplus losses in float32"

    scalar_critic = True

    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        d_real = scalar_output(critic_features(critic, real))
        d_fake = scalar_output(critic_features(critic, fake))
        loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        return loss, self._stats(critic_real=d_real.mean(), critic_fake=d_fake.mean())

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        d_fake = scalar_output(critic_features(critic, fake))
        return F.softplus(-d_fake).mean(), self._stats(critic_fake=d_fake.mean())
