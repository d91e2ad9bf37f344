"""MMD GANs with a learned feature map.

- ``mmd-gan`` (Li et al. 2017): weight-clipped critic, RBF mixture, biased MMD, autoencoder and
  one-sided "feasible set reduction" terms, weighted as in the authors' code.
- ``mmd-gan-gp`` (Bińkowski et al. 2018, "Demystifying MMD GANs"): unbiased MMD², a gradient
  penalty on the batch witness function and an L2 penalty on the critic's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from igm import kernels
from igm.checks import non_negative
from igm.mmd import gram_blocks, mmd2_from_gram
from igm.objectives.base import Objective, Stats, WeightClip, critic_features, register
from igm.penalties import gradient_penalty, input_gradient, interpolates


def _one_sided(delta: Tensor) -> Tensor:
    """−mean relu(−Δ): 0 when every coordinate of Δ = E φ(x) − E φ(y) is ≥ 0."""
    return -torch.relu(-delta).mean()


@register("mmd-gan")
@dataclass
class MMDGAN(Objective):
    """The critic maximises sqrt(relu(MMD²_b)) + feasible·(−mean relu(−(E φ(x) − E φ(y))))
    − ae·AE(x) − ae·AE(y); the generator minimises sqrt(relu(MMD²_b)) + feasible·(same term).

    AE(x) = mean (x − decode(φ(x)))² needs a critic with a ``decode`` method (the authors' critic is
    an autoencoder); set ``ae_weight=0`` for a plain encoder. Every critic parameter is clipped to
    [−clip, clip] after each critic step; ``clip=None`` turns that off for a critic bounded another
    way (a spectrally normalised one, ``model.spectral: fixed``: SN-MMD-GAN)."""

    double_backward: ClassVar[bool] = False
    bf16_forwards: ClassVar[bool] = True
    generator_reads_real: ClassVar[bool] = True
    speed_note: ClassVar[str] = "kernel and MMD² in float32; decoder forward in bf16"

    gathers: ClassVar[bool] = True

    kernel: Any = kernels.RBFMixture((1.0, 2.0, 4.0, 8.0, 16.0))
    ae_weight: float = 8.0
    feasible_weight: float = 16.0
    clip: float | None = 0.01

    def __post_init__(self) -> None:
        self.kernel = kernels.build(self.kernel)
        if self.clip is not None:
            WeightClip(self.clip)
        self.ae_weight = non_negative("ae_weight", self.ae_weight)
        self.feasible_weight = non_negative("feasible_weight", self.feasible_weight)

    @property
    def constraint(self) -> WeightClip | None:
        return None if self.clip is None else WeightClip(self.clip)

    def _terms(self, critic: nn.Module, real: Tensor, fake: Tensor, with_ae: bool):
        fx, fy = critic_features(critic, real), critic_features(critic, fake)
        gx, gy = self._across(fx, fy)  # the global batch with the gathered estimator
        value = mmd2_from_gram(*gram_blocks(gx, gy, self.kernel), estimator="biased")
        root = torch.relu(value).clamp_min(1e-12).sqrt()
        feasible = _one_sided(gx.mean(0) - gy.mean(0))
        ae = torch.zeros((), dtype=fx.dtype, device=fx.device)
        if with_ae and self.ae_weight > 0:
            decode = getattr(critic, "decode", None)
            if decode is None:
                raise ValueError(
                    "mmd-gan with ae_weight > 0 needs a critic with a decode(features) method; "
                    "use an autoencoder critic or set ae_weight=0"
                )
            for x, f in ((real, fx), (fake, fy)):
                ae = ae + (decode(f).reshape(x.shape) - x).pow(2).mean()
        return value, root, feasible, ae

    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        value, root, feasible, ae = self._terms(critic, real, fake, with_ae=True)
        objective = root + self.feasible_weight * feasible - self.ae_weight * ae
        return -objective, self._stats(mmd2=value, feasible=feasible, ae=ae)

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        value, root, feasible, _ = self._terms(critic, real, fake, with_ae=False)
        return root + self.feasible_weight * feasible, self._stats(mmd2=value, feasible=feasible)


def _default_demystifying_kernel() -> kernels.Kernel:
    return kernels.RationalQuadratic((0.2, 0.5, 1.0, 2.0, 5.0)) + kernels.Linear()


@register("mmd-gan-gp")
@dataclass
class MMDGANGP(Objective):
    """critic: −MMD²_u(φ(X), φ(Y)) + λ_GP E_x̂ (‖∇_x̂ f(x̂)‖ − 1)² + λ_L2 · mean(φ(x)² ∪ φ(y)²), where
    f(t) = mean_i k(φ(x_i), φ(t)) − mean_j k(φ(y_j), φ(t)) is the batch witness in feature space and
    the gradient norm is over all input dimensions. generator: MMD²_u. Default kernel: RQ mixture
    α ∈ {0.2, 0.5, 1, 2, 5} plus a linear term, with its true (non-constant) diagonal."""

    bf16_forwards: ClassVar[bool] = True
    generator_reads_real: ClassVar[bool] = True
    speed_note: ClassVar[str] = "kernel, witness and its gradient norm in float32"

    @property
    def double_backward(self) -> bool:  # type: ignore[override]
        """The witness-gradient penalty differentiates input gradients; ``gp_weight=0`` has none."""
        return self.gp_weight > 0

    gathers: ClassVar[bool] = True

    kernel: Any = None
    gp_weight: float = 1.0
    l2_weight: float = 1.0

    def __post_init__(self) -> None:
        self.kernel = _default_demystifying_kernel() if self.kernel is None else kernels.build(self.kernel)
        self.gp_weight = non_negative("gp_weight", self.gp_weight)
        self.l2_weight = non_negative("l2_weight", self.l2_weight)

    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        fx, fy = critic_features(critic, real), critic_features(critic, fake)
        gx, gy = self._across(fx, fy)  # the global batch with the gathered estimator
        value = mmd2_from_gram(*gram_blocks(gx, gy, self.kernel), estimator="unbiased")
        loss, pen = -value, torch.zeros((), dtype=fx.dtype, device=fx.device)
        if self.gp_weight > 0:
            points = interpolates(real.detach(), fake.detach()).requires_grad_(True)
            ft = critic_features(critic, points)
            k = self.kernel(torch.cat([gx, gy], 0), ft)
            wit = k[: gx.shape[0]].mean(0) - k[gx.shape[0] :].mean(0)
            pen = gradient_penalty(input_gradient(wit, points), "gp")
            loss = loss + self.gp_weight * pen
        l2 = torch.cat([fx, fy], 0).pow(2).mean()
        if self.l2_weight > 0:
            loss = loss + self.l2_weight * l2
        return loss, self._stats(mmd2=value, penalty=pen, l2=l2)

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        fx, fy = self._across(critic_features(critic, real), critic_features(critic, fake))
        value = mmd2_from_gram(*gram_blocks(fx, fy, self.kernel), estimator="unbiased")
        return value, self._stats(mmd2=value)
