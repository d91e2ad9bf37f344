"""GRAM: density ratio, losses and gradients against independent numpy computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

import igm.objectives as O
from igm.objectives.gram import GRAM, density_ratio, median_bandwidth


def np_gauss(a: np.ndarray, b: np.ndarray, s: float) -> np.ndarray:
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * s * s))


def np_ratio(fx: np.ndarray, fy: np.ndarray, sigmas, eps: float = 1e-3) -> np.ndarray:
    m, n = len(fx), len(fy)
    out = [(n / m) * np.linalg.solve(np_gauss(fy, fy, s) + eps * np.eye(n), np_gauss(fy, fx, s) @ np.ones(m)) for s in sigmas]
    return np.mean(out, axis=0)


def np_biased_mmd2(x: np.ndarray, y: np.ndarray, sigmas) -> float:
    def k(a, b):
        return sum(np.exp(-np.sum((a - b) ** 2) / (2 * s * s)) for s in sigmas)

    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m)) / m**2
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n)) / n**2
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def linear_critic(d_in: int, d_out: int, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(d_in, d_out).double()


def batches(m: int = 9, n: int = 7, d: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, d, generator=g, dtype=torch.float64), 0.5 + torch.randn(n, d, generator=g, dtype=torch.float64)


def test_density_ratio_matches_numpy_solve_and_averages_sigmas():
    fx, fy = batches(m=11, n=8, d=2)
    for sigmas in [(0.7,), (0.5, 1.0, 3.0)]:
        r = density_ratio(fx, fy, sigmas)
        assert r.shape == (8,)
        np.testing.assert_allclose(r.numpy(), np_ratio(fx.numpy(), fy.numpy(), sigmas), rtol=1e-8, atol=1e-8)
    per_sigma = [density_ratio(fx, fy, (s,)) for s in (0.5, 1.0, 3.0)]
    mixed = density_ratio(fx, fy, (0.5, 1.0, 3.0))
    torch.testing.assert_close(mixed, torch.stack(per_sigma).mean(0), rtol=1e-10, atol=1e-10)
    # eps enters as the ridge
    np.testing.assert_allclose(
        density_ratio(fx, fy, (1.0,), eps=0.1).numpy(), np_ratio(fx.numpy(), fy.numpy(), (1.0,), eps=0.1), rtol=1e-8
    )


def test_density_ratio_recovers_gaussian_ratio():
    # P = N(0, 1) (real, m = 1200), Q = N(0.5, 1.2²) (fake, n = 1000), identity critic, σ = 2, default ε.
    # Over seeds 0..19 this setting gave a median relative error on |y| < 1.5 of ≤ 0.115 (mean 0.058),
    # a correlation with the true ratio of ≥ 0.91 (mean 0.98) and mean(r) = 1.000 (E_Q[p/q] = 1).
    # The KMM solution is noisy point by point (ε = 1e-3 barely regularises), hence the median and
    # correlation criteria; m ≠ n makes the n/m factor matter (without it mean(r) would be 1.2).
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1200, 1, generator=g, dtype=torch.float64)
    y = 0.5 + 1.2 * torch.randn(1000, 1, generator=g, dtype=torch.float64)
    r = density_ratio(x, y, (2.0,)).numpy()
    yy = y[:, 0].numpy()
    true = norm.pdf(yy, 0.0, 1.0) / norm.pdf(yy, 0.5, 1.2)
    c = np.abs(yy) < 1.5
    rel = np.median(np.abs(r[c] - true[c]) / true[c])
    corr = np.corrcoef(r[c], true[c])[0, 1]
    assert rel < 0.15, rel
    assert corr > 0.9, corr
    assert abs(r.mean() - 1.0) < 0.02, r.mean()


def test_critic_loss_matches_numpy():
    real, fake = batches()
    critic = linear_critic(3, 2)
    obj = GRAM(sigmas=(0.8, 2.0), positivity=0.5)
    loss, stats = obj.critic_loss(critic, real, fake)
    w, b = critic.weight.detach().numpy(), critic.bias.detach().numpy()
    fx, fy = real.numpy() @ w.T + b, fake.numpy() @ w.T + b
    r = np_ratio(fx, fy, (0.8, 2.0))
    expected = -np.mean((r - 1) ** 2) - 0.5 * r.sum()
    assert loss.item() == pytest.approx(expected, rel=1e-9)
    assert stats["pearson"].item() == pytest.approx(np.mean((r - 1) ** 2), rel=1e-9)
    assert stats["ratio_mean"].item() == pytest.approx(r.mean(), rel=1e-9)
    assert stats["ratio_min"].item() == pytest.approx(r.min(), rel=1e-9)


def test_generator_loss_is_biased_mmd2_with_rbf_mixture():
    real, fake = batches(m=6, n=5)
    critic = linear_critic(3, 2)
    sigmas = (0.5, 1.0, 4.0)
    w, b = critic.weight.detach().numpy(), critic.bias.detach().numpy()
    expected = np_biased_mmd2(real.numpy() @ w.T + b, fake.numpy() @ w.T + b, sigmas)
    loss, stats = GRAM(sigmas=sigmas).generator_loss(critic, real, fake)
    assert loss.item() == pytest.approx(expected, rel=1e-9)
    assert stats["mmd2"].item() == pytest.approx(expected, rel=1e-9)
    loss_sqrt, stats_sqrt = GRAM(sigmas=sigmas, generator_sqrt=True).generator_loss(critic, real, fake)
    assert loss_sqrt.item() == pytest.approx(np.sqrt(expected), rel=1e-9)
    assert stats_sqrt["mmd2"].item() == pytest.approx(expected, rel=1e-9)


def test_joint_loss_matches_separate_calls_and_gradients_reach_the_right_nets():
    torch.manual_seed(3)
    generator = nn.Linear(2, 3).double()
    critic = linear_critic(3, 2, seed=4)
    real, _ = batches(m=10)
    z = torch.randn(8, 2, dtype=torch.float64)
    fake = generator(z)
    obj = O.get("gram", sigmas=[1.0, 3.0])  # registered by importing igm.objectives.gram; list → tuple
    assert isinstance(obj, GRAM) and obj.sigmas == (1.0, 3.0) and GRAM.simultaneous
    c_loss, g_loss, stats = obj.joint_loss(critic, real, fake)
    c_sep, _ = obj.critic_loss(critic, real, fake.detach())
    g_sep, _ = obj.generator_loss(critic, real, fake)
    torch.testing.assert_close(c_loss, c_sep, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g_loss, g_sep, rtol=1e-12, atol=1e-12)
    assert set(stats) == {"pearson", "ratio_mean", "ratio_min", "mmd2"}
    assert not any(v.requires_grad for v in stats.values())

    c_grads = torch.autograd.grad(c_loss, list(critic.parameters()), retain_graph=True)
    g_grads = torch.autograd.grad(g_loss, list(generator.parameters()))
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in c_grads)
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in g_grads)


def test_median_heuristic_matches_numpy_and_is_used():
    real, fake = batches(m=9, n=6)
    critic = linear_critic(3, 2)
    with torch.no_grad():
        fx, fy = critic(real), critic(fake)
    z = np.concatenate([fx.numpy(), fy.numpy()])
    d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
    expected = np.sqrt(np.median(d2[np.triu_indices(len(z), 1)]) / 2)
    assert median_bandwidth(fx, fy) == pytest.approx(expected, rel=1e-9)
    auto, _ = GRAM(sigmas=None).critic_loss(critic, real, fake)
    fixed, _ = GRAM(sigmas=(expected,)).critic_loss(critic, real, fake)
    assert auto.item() == pytest.approx(fixed.item(), rel=1e-9)
    # more than half the pairs coincide: fall back to the positive distances, never σ = 0
    same = torch.zeros(6, 2, dtype=torch.float64)
    sigma = median_bandwidth(same, torch.full((1, 2), 2.0, dtype=torch.float64))
    assert sigma == pytest.approx(2.0)  # the only positive squared distance is 8 → σ² = 4
    assert median_bandwidth(same, same) == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [{"eps": 0.0}, {"eps": -1e-3}, {"sigmas": (1.0, -2.0)}, {"sigmas": ()}, {"positivity": -1.0}, {"generator_sqrt": 1}],
)
def test_bad_hyperparameters_raise(kwargs):
    with pytest.raises(ValueError):
        GRAM(**kwargs)


def test_bad_inputs_raise():
    real, fake = batches()
    with pytest.raises(ValueError):
        density_ratio(real, fake, (1.0,), eps=0.0)
    with pytest.raises(ValueError):
        GRAM().critic_loss(linear_critic(3, 2), real, fake[:, :2])
    # identical fake points with a negligible ridge: a clear Cholesky error, not a silent NaN
    with pytest.raises(torch.linalg.LinAlgError, match="larger eps"):
        density_ratio(real.float(), torch.zeros(4, 3), (1.0,), eps=1e-30)
