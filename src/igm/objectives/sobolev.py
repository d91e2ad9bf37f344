"""Sobolev GAN (Mroueh, Li, Sercu, Raj & Cheng, 2018), compared against in seed 000.

The critic maximises the mean discrepancy E_P f − E_Q f over the Sobolev ball
Ω(f) = E_μ ‖∇_x f(x)‖² = 1 with μ = (P + Q)/2, and the equality constraint is handled by an
augmented Lagrangian, as in the authors' Fisher GAN code (which Sobolev GAN reuses):

    L(f, λ) = (E_P f − E_Q f) + λ (1 − Ω) − (ρ/2) (1 − Ω)².

The critic ascends L (its loss is −L); the multiplier descends it, once after every critic
optimiser step: λ ← λ − ρ (1 − Ω).

In data-parallel training (:meth:`~igm.objectives.Objective.distribute`) Ω is the mean over all
processes' batches, so the constraint, and with it λ, is the same on every process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from igm.checks import positive
from igm.objectives.base import Objective, Stats, critic_features, register, scalar_output
from igm.penalties import input_gradient

__all__ = ["SobolevGAN"]


@register("sobolev")
@dataclass
class SobolevGAN(Objective):
    """Sobolev IPM critic trained by the augmented Lagrangian method.

    - critic loss: −(E_P f − E_Q f) − λ (1 − Ω) + (ρ/2) (1 − Ω)², with
      Ω = ½ mean_i ‖∇f(x_i)‖² + ½ mean_j ‖∇f(y_j)‖² (the gradient taken per sample over all input
      dimensions). The real and fake batches go through the critic as one concatenated batch;
      each half is averaged separately so that μ weighs P and Q equally even when the batch
      sizes differ (for equal sizes this is the plain mean over the concatenated batch).
    - after each critic step (:meth:`after_critic_step`): λ ← λ − ρ (1 − Ω), using the
      constraint value of the batch the step was taken on.
    - generator loss: −E_Q f.

    ``rho`` (ρ): the weight of the quadratic term, which is also the multiplier's step size.
    The default 1e-5 could not be checked against the Sobolev GAN paper's text, so treat it as
    a starting point. The Fisher GAN reference code defaults to 1e-6, and the SMMD authors'
    Sobolev baseline reads ρ from its command line.

    The multiplier λ (``multiplier``) is optimiser-like state, not a hyperparameter: it starts
    at 0 and is saved and restored by :meth:`state_dict` / :meth:`load_state_dict`.

    Samples must not interact inside the critic (no batch norm in training mode), since Ω is
    computed from the gradient of the summed outputs.
    """

    double_backward: ClassVar[bool] = True
    bf16_forwards: ClassVar[bool] = True
    generator_reads_real: ClassVar[bool] = False
    speed_note: ClassVar[str] = "Ω from input gradients through the bf16 graph, reduced in float32"

    scalar_critic: ClassVar[bool] = True

    rho: float = 1e-5
    multiplier: float = field(default=0.0, init=False, compare=False)

    def __post_init__(self) -> None:
        self.rho = positive("rho", self.rho)

    # -- losses --------------------------------------------------------------------------------
    def critic_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        m = real.shape[0]
        points = torch.cat([real.detach(), fake.detach()]).requires_grad_(True)
        out = scalar_output(critic_features(critic, points))
        grad = input_gradient(out, points)
        sq = grad.reshape(grad.shape[0], -1).pow(2).sum(1)
        omega = self._rank_mean(0.5 * sq[:m].mean() + 0.5 * sq[m:].mean())  # data-parallel: global μ
        ipm = out[:m].mean() - out[m:].mean()
        constraint = 1.0 - omega
        lagrangian = ipm + self.multiplier * constraint - 0.5 * self.rho * constraint.pow(2)
        stats = self._stats(ipm=ipm, constraint=constraint, multiplier=self.multiplier, omega=omega)
        return -lagrangian, stats

    def generator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Stats]:
        self._check(real, fake)
        f_fake = scalar_output(critic_features(critic, fake))
        with torch.no_grad():
            f_real = scalar_output(critic_features(critic, real.detach()))
        return -f_fake.mean(), self._stats(ipm=f_real.mean() - f_fake.mean())

    # -- multiplier ----------------------------------------------------------------------------
    def after_critic_step(self, critic: nn.Module, stats: Stats) -> None:
        """Apply the base class's constraint (none here), then λ ← λ − ρ · stats["constraint"]."""
        super().after_critic_step(critic, stats)
        if "constraint" not in stats:
            raise ValueError(
                "Sobolev GAN's multiplier update needs the critic stats of the step just taken "
                f"(key 'constraint'); got keys {sorted(stats)}"
            )
        value = float(torch.as_tensor(stats["constraint"]).detach())
        if not math.isfinite(value):
            raise ValueError(f"Sobolev GAN constraint 1 − Ω is not finite ({value}); the critic has diverged")
        self.multiplier = self.multiplier - self.rho * value

    def state_dict(self) -> dict[str, Any]:
        return {"multiplier": torch.tensor(self.multiplier, dtype=torch.float64)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        keys = set(state)
        if keys != {"multiplier"}:
            unknown, missing = sorted(keys - {"multiplier"}), sorted({"multiplier"} - keys)
            raise ValueError(
                f"objective '{self.name}' state has keys {{'multiplier'}}; "
                f"unknown: {unknown}, missing: {missing}"
            )
        value = state["multiplier"]
        if isinstance(value, Tensor):
            if value.numel() != 1:
                raise ValueError(f"'multiplier' must be a scalar; got shape {tuple(value.shape)}")
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"'multiplier' must be a finite number; got {value!r}")
        self.multiplier = float(value)
