"""Lipschitz GANs (Zhou et al., "Lipschitz Generative Adversarial Nets", seed 004).

A family of critic objectives E_Q φ(f(y)) + E_P φ(−f(x)) made well-behaved by a penalty on the
critic's Lipschitz constant, by default MaxGP: the largest squared input-gradient norm over a
batch of real/fake interpolates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from igm.checks import non_negative
from igm.objectives.base import Objective, Stats, critic_features, register, scalar_output
from igm.penalties import PENALTIES, gradient_penalty, input_gradient, interpolates

__all__ = ["LipschitzGAN", "PHI", "PHIS", "GENERATOR_LOSSES"]


def _exp(t: Tensor) -> Tensor:
    # overflows to inf for t ≳ 88 in float32 (709 in float64); the authors use plain exp too
    return torch.exp(t)


def _sqrt(t: Tensor) -> Tensor:
    # sqrt(t² + 1) + t, which cancels for t ≪ 0: there it equals 1 / (sqrt(t² + 1) + |t|).
    # hypot avoids overflowing t²; both branches stay finite, so torch.where's gradient is too.
    s = torch.hypot(t, torch.ones_like(t)) + t.abs()
    return torch.where(t >= 0, s, 1.0 / s)


PHI: dict[str, Callable[[Tensor], Tensor]] = {
    "exp": _exp,
    "softplus": F.softplus,  # log(1 + e^t) = −log σ(−t): the standard GAN loss
    "sqrt": _sqrt,
    "linear": lambda t: t,  # WGAN
    "hinge": lambda t: torch.relu(1.0 + t),
    "least-squares": lambda t: (t + 1.0).pow(2),
}
PHIS = tuple(PHI)
GENERATOR_LOSSES = ("linear", "phi")


@register("lgan")
@dataclass
class LipschitzGAN(Objective):
    """Lipschitz GAN: critic loss E_Q φ(f(y)) + E_P φ(−f(x)) + λ · penalty, λ = ``gp_weight``
    (spelled ``lam`` before: a deprecated alias).

    ``phi`` (φ): "exp" e^t, "softplus" log(1 + e^t), "sqrt" sqrt(t² + 1) + t, "linear" t (WGAN),
    "hinge" max(0, 1 + t), "least-squares" (t + 1)². The first four satisfy the paper's
    eq. 11; hinge and least squares are the table-2 extras with the margin fixed at 1.

    ``penalty`` at interpolates x̂ = εx + (1 − ε)y (ε ~ U[0, 1] per sample), the gradient norm
    taken per sample over all input dimensions: "maxgp" max_i ‖∇f(x̂_i)‖² (the paper's MaxGP),
    "gp" mean (‖∇f(x̂)‖ − 1)², "lp" mean max(0, ‖∇f(x̂)‖ − 1)².

    ``generator``: "linear" −E_Q f(y) (the paper's ψ(t) = −t, used for all its benchmarks), or
    "phi" E_Q φ(−f(y)) (the authors' ``bPsiMax`` option).

    Defaults follow the authors' reproduction script for table 2 and figures 4 and 6
    (LGANs-for-reproduce, ``sobolev_cifar10.py``): φ = exp, MaxGP, λ = 0.1, generator ψ(t) = −t.
    The paper reports similar scores for every φ; which two it found best cannot be read from
    our copy of its text. The authors' later refactored code defaults to the log-sigmoid
    φ ("softplus" here) and λ = 1. Their least-squares option always trains the generator with
    (f − 1)² = φ(−f), which is ``generator="phi"`` here.

    Numerics: "exp" is e^t as written, so a critic with outputs above ~88 (float32) gives an
    infinite loss. Keep the penalty on, or use another φ. "softplus" and "sqrt" are computed
    stably for any t.
    """

    double_backward: ClassVar[bool] = True
    bf16_forwards: ClassVar[bool] = True
    generator_reads_real: ClassVar[bool] = False
    speed_note: ClassVar[str] = "MaxGP/GP: input gradient through the bf16 graph, norms and φ in float32"

    scalar_critic: ClassVar[bool] = True
    aliases: ClassVar[dict[str, str]] = {"lam": "gp_weight"}

    gp_weight: float = 0.1
    penalty: str = "maxgp"
    phi: str = "exp"
    generator: Literal["linear", "phi"] = "linear"

    def __post_init__(self) -> None:
        if self.phi not in PHI:
            raise ValueError(f"unknown phi {self.phi!r}; valid: {', '.join(PHIS)}")
        if self.penalty not in PENALTIES:
            raise ValueError(f"unknown penalty {self.penalty!r}; valid: {', '.join(PENALTIES)}")
        if self.generator not in GENERATOR_LOSSES:
            raise ValueError(f"unknown generator loss {self.generator!r}; valid: {', '.join(GENERATOR_LOSSES)}")
        self.gp_weight = non_negative("gp_weight", self.gp_weight)

    def _phi(self, t: Tensor) -> Tensor:
        return PHI[self.phi](t)

    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        f_real = scalar_output(critic_features(critic, real))
        f_fake = scalar_output(critic_features(critic, fake))
        gan = self._phi(f_fake).mean() + self._phi(-f_real).mean()
        points = interpolates(real.detach(), fake.detach()).detach().requires_grad_(True)
        grad = input_gradient(scalar_output(critic_features(critic, points)), points)
        pen = gradient_penalty(grad, self.penalty)
        norm_max = grad.detach().reshape(grad.shape[0], -1).norm(dim=1).max()
        stats = self._stats(
            critic_real=f_real.mean(), critic_fake=f_fake.mean(), penalty=pen, grad_norm_max=norm_max
        )
        return gan + self.gp_weight * pen, stats

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        f_fake = scalar_output(critic_features(critic, fake))
        loss = -f_fake.mean() if self.generator == "linear" else self._phi(-f_fake).mean()
        return loss, self._stats(critic_fake=f_fake.mean())
