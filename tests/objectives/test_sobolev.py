"""Sobolev GAN: augmented Lagrangian, multiplier update and state, checked against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from igm.objectives.base import get
from igm.objectives.sobolev import SobolevGAN

DT = torch.float64


class LinearCritic(nn.Module):
    """f(x) = wᵀ vec(x) + b: ∇f = w at every sample, so Ω = ‖w‖² exactly."""

    def __init__(self, w: torch.Tensor, b: float = 0.0):
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(b, dtype=w.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) @ self.w + self.b)[:, None]  # (n, 1)


class HalfSquare(nn.Module):
    """f(x) = ½ ‖x‖²: ∇f(x) = x, a per-sample gradient norm that varies."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.flatten(1).pow(2).sum(1)


def _batches(m: int = 5, n: int = 5, shape=(2, 3), seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(m, *shape, generator=g, dtype=DT)
    fake = torch.randn(n, *shape, generator=g, dtype=DT) + 0.5
    return real, fake


def test_critic_loss_matches_hand_computed_lagrangian():
    real, fake = _batches()
    w = torch.tensor([0.3, -0.7, 1.1, 0.2, -0.4, 0.9], dtype=DT)
    critic = LinearCritic(w, b=0.25)
    obj = SobolevGAN(rho=0.5)
    obj.multiplier = 0.3
    loss, stats = obj.critic_loss(critic, real, fake)

    omega = float(w @ w)
    ipm = float(real.flatten(1).mean(0) @ w - fake.flatten(1).mean(0) @ w)  # the bias cancels
    c = 1.0 - omega
    expected = -(ipm + 0.3 * c - 0.5 * 0.5 * c * c)
    assert loss.item() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert stats["ipm"].item() == pytest.approx(ipm, rel=1e-12, abs=1e-12)
    assert stats["constraint"].item() == pytest.approx(c, rel=1e-12)
    assert stats["multiplier"].item() == pytest.approx(0.3)
    assert all(not v.requires_grad and v.dim() == 0 for v in stats.values())


def test_omega_weighs_real_and_fake_halves_equally_with_varying_gradients():
    real, fake = _batches(m=3, n=7)  # unequal sizes: μ = (P + Q)/2, not the pooled mean
    _, stats = SobolevGAN().critic_loss(HalfSquare(), real, fake)
    omega = 0.5 * real.flatten(1).pow(2).sum(1).mean() + 0.5 * fake.flatten(1).pow(2).sum(1).mean()
    assert stats["omega"].item() == pytest.approx(omega.item(), rel=1e-12)
    assert stats["constraint"].item() == pytest.approx(1.0 - omega.item(), rel=1e-12)


def test_multiplier_update_after_critic_step():
    real, fake = _batches()
    w = torch.tensor([0.5, 0.1, -0.3, 0.8, 0.0, 0.6], dtype=DT)
    critic = LinearCritic(w)
    obj = SobolevGAN(rho=0.2)
    obj.multiplier = -0.05
    _, stats = obj.critic_loss(critic, real, fake)
    obj.after_critic_step(critic, stats)
    assert obj.multiplier == pytest.approx(-0.05 - 0.2 * (1.0 - float(w @ w)), rel=1e-12)
    # a second step keeps descending in λ from the new value
    obj.after_critic_step(critic, stats)
    assert obj.multiplier == pytest.approx(-0.05 - 2 * 0.2 * (1.0 - float(w @ w)), rel=1e-12)
    with pytest.raises(ValueError, match="constraint"):
        obj.after_critic_step(critic, {"ipm": torch.tensor(0.0)})


def test_gradients_reach_the_critic_and_match_the_closed_form():
    real, fake = _batches()
    w = torch.tensor([0.4, -0.2, 0.9, 0.3, -0.6, 0.1], dtype=DT)
    critic = LinearCritic(w, b=-0.1)
    obj = SobolevGAN(rho=0.3)
    obj.multiplier = 0.7
    loss, _ = obj.critic_loss(critic, real, fake)
    loss.backward()
    # −L = −wᵀΔ − λ(1 − ‖w‖²) + ρ/2 (1 − ‖w‖²)²  ⇒  ∂/∂w = −Δ + 2λw − 2ρ(1 − ‖w‖²)w
    delta = real.flatten(1).mean(0) - fake.flatten(1).mean(0)
    c = 1.0 - float(w @ w)
    expected = -delta + 2 * 0.7 * w - 2 * 0.3 * c * w
    torch.testing.assert_close(critic.w.grad, expected, rtol=1e-12, atol=1e-12)
    assert critic.b.grad.abs().item() < 1e-12


def test_generator_loss_reaches_fake():
    real, fake = _batches()
    w = torch.tensor([0.4, -0.2, 0.9, 0.3, -0.6, 0.1], dtype=DT)
    fake = fake.clone().requires_grad_(True)
    loss, stats = SobolevGAN().generator_loss(LinearCritic(w), real, fake)
    loss.backward()
    torch.testing.assert_close(fake.grad.flatten(1), (-w / fake.shape[0]).expand(fake.shape[0], -1))
    ipm = (real.flatten(1) @ w).mean() - (fake.detach().flatten(1) @ w).mean()
    assert stats["ipm"].item() == pytest.approx(ipm.item(), rel=1e-12)


def test_state_dict_round_trip_to_a_fresh_objective():
    real, fake = _batches()
    obj = SobolevGAN(rho=0.1)
    critic = LinearCritic(torch.linspace(-1, 1, 6, dtype=DT))
    for _ in range(3):
        _, stats = obj.critic_loss(critic, real, fake)
        obj.after_critic_step(critic, stats)
    assert obj.multiplier != 0.0
    state = obj.state_dict()
    assert set(state) == {"multiplier"} and isinstance(state["multiplier"], torch.Tensor)
    fresh = SobolevGAN(rho=0.1)
    assert fresh.multiplier == 0.0
    fresh.load_state_dict(state)
    assert fresh.multiplier == obj.multiplier  # exact: stored in float64
    loss_a, _ = obj.critic_loss(critic, real, fake)
    loss_b, _ = fresh.critic_loss(critic, real, fake)
    assert loss_a.item() == loss_b.item()


def test_load_state_dict_rejects_unknown_missing_and_bad_values():
    obj = SobolevGAN()
    with pytest.raises(ValueError, match="unknown: \\['lambda'\\]"):
        obj.load_state_dict({"multiplier": torch.tensor(1.0), "lambda": torch.tensor(2.0)})
    with pytest.raises(ValueError, match="missing: \\['multiplier'\\]"):
        obj.load_state_dict({})
    with pytest.raises(ValueError, match="scalar"):
        obj.load_state_dict({"multiplier": torch.zeros(2)})
    with pytest.raises(ValueError, match="finite"):
        obj.load_state_dict({"multiplier": math.nan})
    assert obj.multiplier == 0.0


def test_multiplier_is_state_not_a_hyperparameter_and_rho_is_validated():
    assert SobolevGAN().hyperparameters() == {"rho": 1e-5, "check_finite": False}
    assert isinstance(get("sobolev"), SobolevGAN)
    with pytest.raises(ValueError, match="multiplier"):
        get("sobolev", multiplier=1.0)
    for bad in (0.0, -1e-3, math.inf, "1e-5"):
        with pytest.raises(ValueError, match="rho"):
            SobolevGAN(rho=bad)


def test_needs_a_scalar_critic():
    assert SobolevGAN.scalar_critic
    real, fake = _batches()
    with pytest.raises(ValueError, match="one scalar output per sample"):
        SobolevGAN().critic_loss(nn.Flatten(), real, fake)
