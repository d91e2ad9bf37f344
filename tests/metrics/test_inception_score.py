"""Inception Score: exact values on constructed predictions, a NumPy reference, input validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from igm.metrics import inception_score


def reference_is(p: np.ndarray, splits: int) -> tuple[float, float]:
    n = p.shape[0]
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        py = part.mean(0)
        kl = [sum(pi * np.log(pi / qi) for pi, qi in zip(row, py) if pi > 0) for row in part]
        scores.append(np.exp(np.mean(kl)))
    return float(np.mean(scores)), float(np.std(scores))


def test_uniform_predictions_score_one() -> None:
    mean, std = inception_score(torch.full((100, 7), 1 / 7))
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("k", [2, 5, 10])
def test_one_hot_spread_over_k_classes_scores_k(k: int) -> None:
    labels = torch.arange(10 * 3 * k) % k  # every split of 3k rows holds each class 3 times
    mean, std = inception_score(torch.nn.functional.one_hot(labels, 12).double(), splits=10)
    assert mean == pytest.approx(k, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_one_hot_single_class_scores_one() -> None:
    assert inception_score(torch.nn.functional.one_hot(torch.zeros(20, dtype=torch.long), 4).float(), splits=2)[0] == pytest.approx(1.0)


def test_matches_numpy_reference_with_uneven_splits() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(6, 0.3), size=103)
    p[:5, 0], p[:5, 1:] = 1.0, 0.0  # exact zeros exercise 0·log 0
    got = inception_score(p, splits=4)
    ref = reference_is(p, 4)
    assert got[0] == pytest.approx(ref[0], rel=1e-12) and got[1] == pytest.approx(ref[1], rel=1e-9)


def test_bad_probabilities_raise() -> None:
    good = torch.full((20, 4), 0.25)
    with pytest.raises(ValueError, match="non-negative"):
        inception_score(good - 0.5 * torch.eye(4).repeat(5, 1), splits=2)
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(torch.randn(20, 4).abs(), splits=2)
    with pytest.raises(ValueError, match="non-finite"):
        inception_score(torch.full((20, 4), float("nan")), splits=2)
    with pytest.raises(ValueError, match="2-D"):
        inception_score(torch.full((4,), 0.25), splits=1)
    with pytest.raises(ValueError, match="one sample per split"):
        inception_score(good[:5], splits=10)
