"""Exact Wasserstein distance for equal-size sample sets (toy metrics)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from igm.metrics import wasserstein


def brute_force(x: np.ndarray, y: np.ndarray, p: float) -> float:
    n = x.shape[0]
    cost = np.linalg.norm(x[:, None] - y[None], axis=-1) ** p
    best = min(sum(cost[i, s[i]] for i in range(n)) for s in itertools.permutations(range(n)))
    return (best / n) ** (1 / p)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_matches_brute_force_over_permutations(p: float) -> None:
    rng = np.random.default_rng(p)
    x, y = rng.standard_normal((7, 2)), rng.standard_normal((7, 2)) + 0.5
    assert wasserstein(torch.from_numpy(x), torch.from_numpy(y), p=p) == pytest.approx(brute_force(x, y, p), rel=1e-12)


def test_permutation_is_zero_and_translation_is_its_length() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=g, dtype=torch.float64)
    assert wasserstein(x, x[torch.randperm(200, generator=g)]) == 0.0
    shift = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert wasserstein(x, x + shift) == pytest.approx(5.0, rel=1e-12)


def test_one_dimensional_sorted_matching() -> None:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(50, 1, generator=g), torch.rand(50, 1, generator=g)
    expected = float(((x.sort(0).values - y.sort(0).values).double() ** 2).mean().sqrt())
    assert wasserstein(x, y) == pytest.approx(expected, rel=1e-6)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="same shape"):
        wasserstein(torch.zeros(5, 2), torch.zeros(6, 2))
    with pytest.raises(ValueError, match="p must be"):
        wasserstein(torch.zeros(5, 2), torch.zeros(5, 2), p=0.5)
