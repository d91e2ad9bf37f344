"""mmd-net, mmd-gan and mmd-gan-gp against NumPy recomputations of their formulas."""

import numpy as np
import pytest
import torch
from torch import nn

import igm.objectives as O


def np_rbf_mix(a, b, sigmas):
    out = np.zeros((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            d2 = ((a[i] - b[j]) ** 2).sum()
            out[i, j] = sum(np.exp(-d2 / (2 * s * s)) for s in sigmas)
    return out


def np_rq_lin(a, b, alphas):
    out = np.zeros((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            d2 = ((a[i] - b[j]) ** 2).sum()
            out[i, j] = sum((1 + d2 / (2 * al)) ** (-al) for al in alphas) + a[i] @ b[j]
    return out


def np_mmd2(kxx, kxy, kyy, unbiased):
    m, n = len(kxx), len(kyy)
    if not unbiased:
        return kxx.mean() + kyy.mean() - 2 * kxy.mean()
    return (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()


class AECritic(nn.Module):
    def __init__(self, d_in=6, d_out=3):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(d_in, 8), nn.Tanh(), nn.Linear(8, d_out))
        self.dec = nn.Linear(d_out, d_in)

    def forward(self, x):
        return self.enc(x)

    def decode(self, f):
        return self.dec(f)


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.randn(7, 6, dtype=torch.float64), torch.randn(7, 6, dtype=torch.float64) + 0.3


def test_mmd_net_generator_loss(batch):
    real, fake = batch
    loss, stats = O.get("mmd-net").generator_loss(None, real, fake)
    sig = (2, 5, 10, 20, 40, 80)
    x, y = real.numpy(), fake.numpy()
    value = np_mmd2(np_rbf_mix(x, x, sig), np_rbf_mix(x, y, sig), np_rbf_mix(y, y, sig), unbiased=False)
    assert float(stats["mmd2"]) == pytest.approx(value, rel=1e-10)
    assert float(loss) == pytest.approx(np.sqrt(value), rel=1e-10)
    with pytest.raises(ValueError, match="no critic"):
        O.get("mmd-net").critic_loss(None, real, fake)


def test_mmd_gan_losses(batch):
    real, fake = batch
    torch.manual_seed(1)
    critic = AECritic().double()
    loss, stats = O.get("mmd-gan").critic_loss(critic, real, fake)
    with torch.no_grad():
        fx, fy = critic(real).numpy(), critic(fake).numpy()
        rec = ((critic.decode(critic(real)) - real) ** 2).mean() + ((critic.decode(critic(fake)) - fake) ** 2).mean()
    sig = (1, 2, 4, 8, 16)
    value = np_mmd2(np_rbf_mix(fx, fx, sig), np_rbf_mix(fx, fy, sig), np_rbf_mix(fy, fy, sig), unbiased=False)
    feasible = -np.maximum(-(fx.mean(0) - fy.mean(0)), 0).mean()
    expected = -(np.sqrt(max(value, 0)) + 16 * feasible - 8 * float(rec))
    assert float(loss) == pytest.approx(expected, rel=1e-9)
    assert float(stats["ae"]) == pytest.approx(float(rec), rel=1e-10)
    g_loss, _ = O.get("mmd-gan").generator_loss(critic, real, fake)
    assert float(g_loss) == pytest.approx(np.sqrt(value) + 16 * feasible, rel=1e-9)


def test_mmd_gan_needs_decoder_for_ae(batch):
    real, fake = batch
    plain = nn.Linear(6, 3).double()
    with pytest.raises(ValueError, match="decode"):
        O.get("mmd-gan").critic_loss(plain, real, fake)
    loss, _ = O.get("mmd-gan", ae_weight=0).critic_loss(plain, real, fake)
    assert torch.isfinite(loss)


def test_mmd_gan_clips_weights():
    critic = AECritic()
    with torch.no_grad():
        for p in critic.parameters():
            p.mul_(10)
    O.get("mmd-gan").after_critic_step(critic, {})
    assert max(p.abs().max().item() for p in critic.parameters()) <= 0.01 + 1e-8


def test_mmd_gan_gp_witness_penalty_and_l2(batch):
    real, fake = batch
    torch.manual_seed(2)
    critic = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    obj = O.get("mmd-gan-gp", gp_weight=1.0, l2_weight=1.0)
    torch.manual_seed(5)
    loss, stats = obj.critic_loss(critic, real, fake)
    torch.manual_seed(5)
    eps = torch.rand(7, 1, dtype=torch.float64)  # the same draw the objective made
    xhat = (eps * real + (1 - eps) * fake).numpy()
    alphas = (0.2, 0.5, 1.0, 2.0, 5.0)
    with torch.no_grad():
        fx, fy = critic(real).numpy(), critic(fake).numpy()

    def wit(points):
        with torch.no_grad():
            ft = critic(torch.from_numpy(points)).numpy()
        return np_rq_lin(fx, ft, alphas).mean(0) - np_rq_lin(fy, ft, alphas).mean(0)

    h = 1e-6
    grads = np.zeros_like(xhat)
    for k in range(xhat.shape[1]):  # central differences of the witness, per sample
        e = np.zeros_like(xhat)
        e[:, k] = h
        grads[:, k] = (wit(xhat + e) - wit(xhat - e)) / (2 * h)
    penalty = ((np.sqrt((grads**2).sum(1)) - 1) ** 2).mean()
    value = np_mmd2(np_rq_lin(fx, fx, alphas), np_rq_lin(fx, fy, alphas), np_rq_lin(fy, fy, alphas), unbiased=True)
    l2 = (np.concatenate([fx, fy]) ** 2).mean()
    assert float(stats["penalty"]) == pytest.approx(penalty, rel=1e-6)
    assert float(stats["mmd2"]) == pytest.approx(value, rel=1e-10)
    assert float(loss) == pytest.approx(-value + penalty + l2, rel=1e-6)
    g_loss, _ = obj.generator_loss(critic, real, fake)
    assert float(g_loss) == pytest.approx(value, rel=1e-10)
