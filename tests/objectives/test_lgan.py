"""Lipschitz GAN: every φ, the three penalties and both generator losses against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from igm.objectives.base import get
from igm.objectives.lgan import PHI, PHIS, LipschitzGAN

DT = torch.float64

NUMPY_PHI = {
    "exp": np.exp,
    "softplus": lambda t: np.log1p(np.exp(t)),
    "sqrt": lambda t: np.sqrt(t * t + 1.0) + t,
    "linear": lambda t: t,
    "hinge": lambda t: np.maximum(0.0, 1.0 + t),
    "least-squares": lambda t: (t + 1.0) ** 2,
}
T = np.array([-3.0, -1.0, -0.5, 0.0, 0.25, 1.0, 2.5])


class FirstCoordinate(nn.Module):
    """f(x) = x[:, 0]: the critic's outputs are the inputs themselves."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]


class HalfSquare(nn.Module):
    """f(x) = ½ ‖x‖²: ∇f(x̂) = x̂, so each interpolate has its own gradient norm."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.flatten(1).pow(2).sum(1)


class Linear(nn.Module):
    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w


def test_phi_table_is_the_documented_set():
    assert PHIS == tuple(NUMPY_PHI)


@pytest.mark.parametrize("name", PHIS)
def test_phi_matches_numpy_formula(name):
    got = PHI[name](torch.tensor(T, dtype=DT)).numpy()
    np.testing.assert_allclose(got, NUMPY_PHI[name](T), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", PHIS)
def test_critic_loss_is_phi_of_known_outputs(name):
    f_real, f_fake = T[:4], T[3:]
    real = torch.tensor(f_real, dtype=DT)[:, None]
    fake = torch.tensor(f_fake, dtype=DT)[:, None]
    loss, stats = LipschitzGAN(phi=name, lam=0.0).critic_loss(FirstCoordinate(), real, fake)
    expected = NUMPY_PHI[name](f_fake).mean() + NUMPY_PHI[name](-f_real).mean()
    assert loss.item() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert stats["critic_real"].item() == pytest.approx(f_real.mean())
    assert stats["critic_fake"].item() == pytest.approx(f_fake.mean())


def test_softplus_and_sqrt_are_stable_at_extremes():
    t = torch.tensor([-1e8, -50.0, 50.0, 1e3], dtype=DT)
    torch.testing.assert_close(PHI["softplus"](t), torch.tensor([0.0, np.log1p(np.exp(-50.0)), 50.0, 1e3], dtype=DT))
    sq = PHI["sqrt"](t)  # for t ≪ 0 the naive formula cancels to 0
    assert sq[0].item() == pytest.approx(1.0 / (2e8), rel=1e-12)
    assert sq[1].item() == pytest.approx(1.0 / (np.sqrt(2501.0) + 50.0), rel=1e-12)
    t32 = torch.tensor([-1e30, 1e30], requires_grad=True)
    PHI["sqrt"](t32).sum().backward()
    assert torch.isfinite(t32.grad).all()


@pytest.mark.parametrize("kind", ["maxgp", "gp", "lp"])
def test_penalties_at_fixed_interpolates(kind):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 2, 2, generator=g, dtype=DT) * 0.8  # norms on both sides of 1
    norms = x.flatten(1).norm(dim=1).numpy()
    assert (norms < 1).any() and (norms > 1).any()
    _, stats = LipschitzGAN(penalty=kind).critic_loss(HalfSquare(), x, x.clone())  # x̂ = x for any ε
    expected = {
        "maxgp": (norms**2).max(),
        "gp": ((norms - 1.0) ** 2).mean(),
        "lp": (np.maximum(0.0, norms - 1.0) ** 2).mean(),
    }[kind]
    assert stats["penalty"].item() == pytest.approx(expected, rel=1e-12)
    assert stats["grad_norm_max"].item() == pytest.approx(norms.max(), rel=1e-12)


def test_maxgp_at_random_interpolates_and_total_loss():
    g = torch.Generator().manual_seed(2)
    real = torch.randn(5, 3, generator=g, dtype=DT)
    fake = torch.randn(5, 3, generator=g, dtype=DT) + 1.0
    torch.manual_seed(123)
    loss, stats = LipschitzGAN(lam=0.1, phi="exp").critic_loss(HalfSquare(), real, fake)
    torch.manual_seed(123)
    eps = torch.rand(5, 1, dtype=DT)
    x_hat = eps * real + (1 - eps) * fake
    maxgp = x_hat.pow(2).sum(1).max().item()
    f_real, f_fake = 0.5 * real.pow(2).sum(1), 0.5 * fake.pow(2).sum(1)
    expected = torch.exp(f_fake).mean() + torch.exp(-f_real).mean() + 0.1 * maxgp
    assert stats["penalty"].item() == pytest.approx(maxgp, rel=1e-12)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


def test_penalty_gradient_reaches_the_critic():
    w = torch.tensor([0.6, -0.8, 0.3], dtype=DT)
    critic = Linear(w)
    real = torch.zeros(4, 3, dtype=DT)  # f = 0 on both batches: only the penalty moves w
    loss, _ = LipschitzGAN(lam=0.5, phi="linear").critic_loss(critic, real, real.clone())
    loss.backward()
    torch.testing.assert_close(critic.w.grad, 0.5 * 2 * w)  # ∂/∂w λ‖w‖² (maxgp)


@pytest.mark.parametrize("phi", PHIS)
def test_generator_linear_and_phi(phi):
    w = torch.tensor([0.5, -1.5], dtype=DT)
    real = torch.randn(4, 2, dtype=DT)
    fake = torch.tensor([[0.2, 0.1], [-0.4, 0.3], [1.0, -0.2]], dtype=DT, requires_grad=True)
    f_fake = (fake.detach() @ w).numpy()

    loss, stats = LipschitzGAN(phi=phi).generator_loss(Linear(w), real, fake)  # default: linear
    assert loss.item() == pytest.approx(-f_fake.mean(), rel=1e-12)
    assert stats["critic_fake"].item() == pytest.approx(f_fake.mean(), rel=1e-12)
    loss.backward()
    torch.testing.assert_close(fake.grad, (-w / 3).expand(3, 2))

    fake.grad = None
    loss, _ = LipschitzGAN(phi=phi, generator="phi").generator_loss(Linear(w), real, fake)
    assert loss.item() == pytest.approx(NUMPY_PHI[phi](-f_fake).mean(), rel=1e-12)
    loss.backward()
    assert fake.grad is not None and torch.isfinite(fake.grad).all()


def test_defaults_and_registry():
    obj = get("lgan")
    assert isinstance(obj, LipschitzGAN)
    assert obj.hyperparameters() == {
        "gp_weight": 0.1,  # renamed from lam (the alias: tests/objectives/test_aliases.py)
        "penalty": "maxgp",
        "phi": "exp",
        "generator": "linear",
        "check_finite": False,
    }


@pytest.mark.parametrize(
    "kwargs, listed",
    [
        ({"phi": "log"}, PHIS),
        ({"penalty": "sn"}, ("gp", "lp", "maxgp")),
        ({"generator": "psi"}, ("linear", "phi")),
    ],
)
def test_invalid_choices_list_the_valid_ones(kwargs, listed):
    with pytest.raises(ValueError) as err:
        LipschitzGAN(**kwargs)
    for name in listed:
        assert name in str(err.value)


@pytest.mark.parametrize("lam", [-0.1, float("nan"), float("inf"), "0.1", True])
def test_invalid_lam(lam):
    with pytest.raises(ValueError, match="lam"):
        LipschitzGAN(lam=lam)


def test_needs_a_scalar_critic():
    assert LipschitzGAN.scalar_critic
    x = torch.randn(4, 3, dtype=DT)
    with pytest.raises(ValueError, match="one scalar output per sample"):
        LipschitzGAN().critic_loss(nn.Identity(), x, x + 1)
