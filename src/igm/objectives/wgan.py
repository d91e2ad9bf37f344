"""Wasserstein GAN with weight clipping (Arjovsky et al., seed 001) and with a gradient penalty
(Gulrajani et al.; one-sided LP and MaxGP variants)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from igm.checks import non_negative
from igm.objectives.base import Objective, Stats, WeightClip, critic_features, register, scalar_output
from igm.penalties import PENALTIES, critic_input_gradient, gradient_penalty, interpolates


def _critic_gap(critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    return scalar_output(critic_features(critic, real)), scalar_output(critic_features(critic, fake))


@register("wgan")
@dataclass
class WGAN(Objective):
    """critic: E D(y) − E D(x), then every critic parameter clipped to [−clip, clip];
    generator: −E D(y). ``em_estimate`` = E D(x) − E D(y) estimates the EM distance up to a
    constant (the paper shows it tracks sample quality).
    Paper defaults (the loop's): RMSProp lr 5e-5, batch 64, n_critic 5.

    ``clip=None`` turns the clipping off, for a critic bounded another way: a spectrally normalised
    critic (``model.spectral: fixed``, each layer 1-Lipschitz) gives the EM estimate of a 1-Lipschitz
    function without clipping's bias towards simple critics."""

    double_backward: ClassVar[bool] = False
    bf16_forwards: ClassVar[bool] = True
    generator_reads_real: ClassVar[bool] = False
    speed_note: ClassVar[str] = "scalar critic; clipping acts on the float32 parameters"

    scalar_critic = True

    clip: float | None = 0.01

    def __post_init__(self) -> None:
        if self.clip is not None:
            WeightClip(self.clip)  # validates

    @property
    def constraint(self) -> WeightClip | None:
        return None if self.clip is None else WeightClip(self.clip)

    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        d_real, d_fake = _critic_gap(critic, real, fake)
        em = d_real.mean() - d_fake.mean()
        return -em, self._stats(em_estimate=em, critic_real=d_real.mean(), critic_fake=d_fake.mean())

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        d_fake = scalar_output(critic_features(critic, fake))
        return -d_fake.mean(), self._stats(critic_fake=d_fake.mean())


@register("wgan-gp")
@dataclass
class WGANGP(Objective):
    """critic: E D(y) − E D(x) + λ · penalty at x̂ = εx + (1−ε)y, the gradient norm taken per sample
    over all input dimensions. ``penalty``: "gp" (‖∇‖ − 1)², "lp" max(0, ‖∇‖ − 1)², "maxgp"
    max_i ‖∇‖². ``gp_weight`` is λ (``lam`` before, a deprecated alias). Defaults (the loop's):
    Adam lr 1e-4, β = (0.5, 0.9), n_critic 5."""

    double_backward: ClassVar[bool] = True
    bf16_forwards: ClassVar[bool] = True
    generator_reads_real: ClassVar[bool] = False
    speed_note: ClassVar[str] = "gradient penalty: input gradient through the bf16 graph, norm in float32"

    scalar_critic = True
    aliases: ClassVar[dict[str, str]] = {"lam": "gp_weight"}

    gp_weight: float = 10.0
    penalty: str = "gp"

    def __post_init__(self) -> None:
        if self.penalty not in PENALTIES:
            raise ValueError(f"unknown penalty {self.penalty!r}; valid: {', '.join(PENALTIES)}")
        self.gp_weight = non_negative("gp_weight", self.gp_weight)

    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        d_real, d_fake = _critic_gap(critic, real, fake)
        em = d_real.mean() - d_fake.mean()
        _, grad = critic_input_gradient(critic, interpolates(real.detach(), fake.detach()))
        pen = gradient_penalty(grad, self.penalty)
        norms = grad.reshape(grad.shape[0], -1).norm(dim=1)
        return -em + self.gp_weight * pen, self._stats(em_estimate=em, penalty=pen, grad_norm=norms.mean())

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        d_fake = scalar_output(critic_features(critic, fake))
        return -d_fake.mean(), self._stats(critic_fake=d_fake.mean())
