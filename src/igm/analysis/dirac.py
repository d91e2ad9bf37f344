"""The DiracGAN (seed 000 example 1; seed 002): P = δ₀, Q_θ = δ_θ on the real line, a linear
critic φ_ψ(x) = ψx. Every quantity is computed with the library's own objectives on batches of
identical points, so the closed forms of SPEC §5 test the objectives themselves.

- MMD² = 2(1 − exp(−ψ²θ²/2)) with a Gaussian kernel (σ = 1);
- SMMD² = MMD² / (λ + 1 + ψ²) in the paper's parametrisation (μ = P).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from igm.objectives.base import Objective


class DiracCritic(nn.Module):
    """φ_ψ(x) = ψ x."""

    def __init__(self, psi: float):
        super().__init__()
        self.psi = nn.Parameter(torch.tensor(float(psi), dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        return self.psi * x


class SpectralDiracCritic(nn.Module):
    """φ_ψ(x) = (ψ / σ̂(ψ)) x: the weight ψ of a 1×1 linear layer under the library's spectral
    parametrisation with the scale fixed at 1 (SN-GAN / SN-MMD, :mod:`igm.nn.spectral`). For a 1×1
    weight σ̂(ψ) = |ψ|, so φ(x) = sign(ψ) x and no loss has a gradient in ψ: the critic is frozen at
    |ψ| = 1, which is what seed 000 means by "SN-MMD: here ψ = 1". ``psi`` is the raw weight."""

    def __init__(self, psi: float):
        super().__init__()
        from igm.nn.spectral import spectral_parametrize

        self.layer = nn.Linear(1, 1, bias=False, dtype=torch.float64)
        with torch.no_grad():
            self.layer.weight.fill_(float(psi))
        spectral_parametrize(self.layer, learn_scale=False)

    @property
    def psi(self) -> nn.Parameter:
        return self.layer.parametrizations.weight.original

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


CriticFactory = Callable[[float], nn.Module]


class DiracGenerator(nn.Module):
    """G(z) = θ for every z."""

    def __init__(self, theta: float):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(float(theta), dtype=torch.float64))

    def forward(self, batch: int) -> Tensor:
        return self.theta * torch.ones(batch, 1, dtype=torch.float64)


def _real(batch: int) -> Tensor:
    return torch.zeros(batch, 1, dtype=torch.float64)


def losses(
    objective: Objective, theta: float, psi: float, batch: int = 4, critic: CriticFactory = DiracCritic
) -> dict[str, float]:
    """Critic and generator losses and their gradients in ψ and θ at one point of the plane.
    ``critic(psi)`` builds the critic; it must expose its parameter as ``.psi``."""
    critic, gen = critic(psi), DiracGenerator(theta)
    real, fake = _real(batch), gen(batch)
    out: dict[str, float] = {}
    if objective.uses_critic:
        c_loss, _ = objective.critic_loss(critic, real, fake.detach())
        (g_psi,) = torch.autograd.grad(c_loss, critic.psi)
        out.update(critic_loss=c_loss.item(), dcritic_dpsi=g_psi.item())
    g_loss, _ = objective.generator_loss(critic, real, fake)
    (g_theta,) = torch.autograd.grad(g_loss, gen.theta)
    out.update(generator_loss=g_loss.item(), dgen_dtheta=g_theta.item())
    return out


def vector_field(
    objective: Objective, theta: float, psi: float, batch: int = 4, critic: CriticFactory = DiracCritic
) -> tuple[float, float]:
    """The gradient-descent directions (−∂_θ L_G, −∂_ψ L_C) of the two players at (θ, ψ)."""
    out = losses(objective, theta, psi, batch, critic)
    return -out["dgen_dtheta"], -out.get("dcritic_dpsi", 0.0)


@dataclass
class DiracStep:
    step: int
    theta: float
    psi: float
    critic_loss: float
    generator_loss: float


def train(
    objective: Objective,
    theta: float = 1.0,
    psi: float = 1.0,
    steps: int = 500,
    lr: float = 0.1,
    n_critic: int = 1,
    batch: int = 4,
    critic: CriticFactory = DiracCritic,
) -> list[DiracStep]:
    """Alternating gradient descent on the DiracGAN; returns the trajectory (one row per step)."""
    critic, gen = critic(psi), DiracGenerator(theta)
    opt_c = torch.optim.SGD(critic.parameters(), lr=lr)
    opt_g = torch.optim.SGD(gen.parameters(), lr=lr)
    real = _real(batch)
    history: list[DiracStep] = []
    c_value = float("nan")
    for step in range(steps + 1):
        g_loss, _ = objective.generator_loss(critic, real, gen(batch))
        history.append(DiracStep(step, gen.theta.item(), critic.psi.item(), c_value, g_loss.item()))
        if step == steps:
            break
        if objective.uses_critic:
            for _ in range(n_critic):
                opt_c.zero_grad()
                c_loss, stats = objective.critic_loss(critic, real, gen(batch).detach())
                c_loss.backward()
                opt_c.step()
                objective.after_critic_step(critic, stats)
                c_value = c_loss.item()
        opt_g.zero_grad()
        g_loss, _ = objective.generator_loss(critic, real, gen(batch))
        g_loss.backward()
        opt_g.step()
    return history
