"""Toy 2-D distributions and scikit-learn digits: shapes, true-law properties, exact densities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import igm.data as D


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_ring_modes_on_circle() -> None:
    ring = D.get("ring")
    angles = 2 * math.pi * np.arange(8) / 8
    expected = 2.0 * np.stack([np.cos(angles), np.sin(angles)], 1)
    np.testing.assert_allclose(ring.modes.numpy(), expected, atol=1e-6)
    assert ring.std == 0.02 and ring.shape == (2,) and ring.kind == "toy"


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_mixture_samples_near_modes_and_cover_them(name: str) -> None:
    ds = D.get(name)
    x = ds.sample(5000, gen(0))
    assert x.shape == (5000, 2) and x.dtype == torch.float32
    dist = torch.cdist(x, ds.modes)
    nearest = dist.min(1)
    assert float(nearest.values.max()) < 5 * ds.std
    counts = torch.bincount(nearest.indices, minlength=len(ds.modes)).float()
    k = len(ds.modes)
    assert counts.min() > 0
    assert torch.allclose(counts / 5000, torch.full((k,), 1 / k), atol=0.03)
    # per-coordinate spread around the mode is std
    resid = x - ds.modes[nearest.indices]
    assert abs(float(resid.std()) - ds.std) < 0.05 * ds.std


def test_grid_modes() -> None:
    grid = D.get("grid")
    pts = {tuple(p) for p in grid.modes.round().int().tolist()}
    assert pts == {(a, b) for a in range(-4, 5, 2) for b in range(-4, 5, 2)}
    assert grid.std == 0.05


@pytest.mark.parametrize("name,params", [("ring", {}), ("grid", {}), ("ring", {"radius": 1.0, "std": 0.3, "modes": 3})])
def test_log_prob_matches_scipy_mixture(name: str, params: dict) -> None:
    ds = D.get(name, **params)
    rng = np.random.default_rng(0)
    x = np.concatenate([ds.sample(50, gen(1)).double().numpy(), rng.normal(0, 2, (50, 2))])
    comps = np.stack(
        [multivariate_normal(m, ds.std**2 * np.eye(2)).logpdf(x) for m in ds.modes.double().numpy()], 1
    )
    ref = logsumexp(comps, axis=1) - np.log(len(ds.modes))
    got = ds.log_prob(torch.from_numpy(x))
    assert got.dtype == torch.float64 and got.shape == (100,)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-9, atol=1e-9)
    # batch dimensions are kept
    assert ds.log_prob(torch.from_numpy(x).reshape(10, 10, 2)).shape == (10, 10)


def test_swiss_roll_on_sklearn_curve() -> None:
    from sklearn.datasets import make_swiss_roll

    roll = D.get("swiss-roll", noise=0.0)
    assert roll.modes is None and roll.shape == (2,) and roll.kind == "toy"
    x = roll.sample(4000, gen(0)).double()
    assert float(x.abs().max()) <= 2.0 + 1e-5
    t = x.norm(dim=1) / roll.scale  # on the roll, |point| / scale = t
    np.testing.assert_allclose(torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) * roll.scale, x, atol=1e-4)
    ref, t_ref = make_swiss_roll(4000, noise=0.0, random_state=0)
    np.testing.assert_allclose(np.hypot(ref[:, 0], ref[:, 2]), t_ref)  # same curve in sklearn
    assert abs(float(t.min()) - t_ref.min()) < 0.05 and abs(float(t.max()) - t_ref.max()) < 0.05
    assert abs(float(t.mean()) - t_ref.mean()) < 0.3
    noisy = D.get("swiss-roll", noise=0.5).sample(4000, gen(0)).double()
    assert float((noisy - x).std()) == pytest.approx(0.5 * roll.scale, rel=0.1)


@pytest.mark.parametrize("name", ["ring", "grid", "swiss-roll", "digits"])
def test_sample_reproducible_and_seed_dependent(name: str) -> None:
    ds = D.get(name)
    a, b = ds.sample(64, gen(3)), ds.sample(64, gen(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, ds.sample(64, gen(4)))
    # resuming from a saved generator state gives the same next batch
    g = gen(5)
    ds.sample(10, g)
    state = g.get_state()
    nxt = ds.sample(10, g)
    g2 = torch.Generator()
    g2.set_state(state)
    assert torch.equal(ds.sample(10, g2), nxt)
    assert isinstance(ds, D.Dataset)


def test_digits() -> None:
    from sklearn.datasets import load_digits

    ds = D.get("digits")
    ref = load_digits()
    assert len(ds) == 1797 and ds.shape == (1, 8, 8) and ds.kind == "image"
    x = ds.tensors()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == torch.float32
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0
    np.testing.assert_allclose(ds[7].numpy().ravel(), ref.data[7] / 16 * 2 - 1, atol=1e-6)
    assert torch.equal(ds.labels, torch.as_tensor(ref.target))
    idx = torch.randint(1797, (32,), generator=gen(9))
    assert torch.equal(ds.sample(32, gen(9)), x[idx])
    big = D.get("digits", size=16)
    assert big.shape == (1, 16, 16) and big.tensors().shape == (1797, 1, 16, 16)
    assert float(big.tensors().min()) >= -1 and float(big.tensors().max()) <= 1
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch.shape == (4, 1, 8, 8)
