"""FID∞ and IS∞ (Chong & Forsyth, 2020, "Effectively unbiased FID and Inception Score and where to
find them"): extrapolate a finite-sample score to infinitely many generated samples.

FID and IS computed from N generated samples are biased, and to first order the bias is b/N:
E score(N) ≈ a + b/N, with a the value at N → ∞ and b depending on the model. The estimate scores
random subsets of sizes N_1 … N_J, drawn without replacement from the generated set (a fresh
permutation per size, as in the authors' code), fits score(N) = a + b/N by ordinary least squares in
x = 1/N and reports the intercept a.

Defaults follow the authors' code and SPEC: J = 15 sizes evenly spaced in N (``np.linspace``) from
``smallest`` = 5 000 to the number of generated samples; IS∞ scores each subset as one split. With
no more samples than ``smallest`` the sizes run from a fifth of the set instead, with a warning.

Only the generated set is subsampled: FID∞ uses all of ``features_a`` (the reference, typically the
real data) once, for its mean, covariance and the factor of the covariance behind the trace term, so
its own O(1/n_a) bias is not removed. Make the reference set large.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from igm.checks import int_at_least

from igm.metrics.fid import _check_features, _finish, feature_statistics, psd_factor, sqrt_trace
from igm.metrics.inception_score import check_probs, inception_score

__all__ = ["InfinityFit", "fit_inverse_n", "infinity_sizes", "fid_infinity", "is_infinity"]

SMALLEST = 5000
POINTS = 15


@dataclass(frozen=True)
class InfinityFit:
    """A score extrapolated to N → ∞: ``value`` (= a) and ``slope`` (= b) of score(N) = a + b/N, fitted
    to ``scores`` at the subset ``sizes``."""

    value: float
    slope: float
    sizes: tuple[int, ...]
    scores: tuple[float, ...]


def fit_inverse_n(sizes: Sequence[int], scores: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``(a, b)`` of score = a + b/N, in float64 with centred x = 1/N (so the normal
    equations are never formed). Needs at least two distinct sizes."""
    x = 1.0 / np.asarray(sizes, dtype=np.float64)
    y = np.asarray(scores, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"sizes and scores must be 1-D of one length; got {x.shape} and {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("scores contain non-finite values")
    if np.unique(x).size < 2:
        raise ValueError(f"the fit needs at least two distinct sizes; got {list(sizes)}")
    xc = x - x.mean()
    slope = float(xc @ (y - y.mean()) / (xc @ xc))
    return float(y.mean() - slope * x.mean()), slope


def infinity_sizes(n: int, points: int = POINTS, smallest: int = SMALLEST, minimum: int = 2) -> list[int]:
    """The default subset sizes for ``n`` generated samples: ``points`` sizes evenly spaced from
    ``smallest`` to ``n`` (rounded down, repeats removed). With n ≤ ``smallest`` they start at
    max(``minimum``, n // 5) instead, and a warning says so."""
    points = int_at_least(points, "points", 2)
    smallest = int_at_least(smallest, "smallest", minimum)
    if n <= smallest:
        start = max(minimum, n // 5)
        warnings.warn(
            f"FID∞/IS∞: only {n} generated samples (smallest={smallest}); fitting subset sizes {start}..{n} instead",
            stacklevel=3,
        )
    else:
        start = smallest
    sizes = sorted({int(s) for s in np.linspace(start, n, points)})
    if len(sizes) < 2:
        raise ValueError(f"FID∞/IS∞ need at least two distinct subset sizes of at least {minimum}; {n} samples give {sizes}")
    return sizes


def _check_sizes(sizes: Sequence[int], n: int, minimum: int) -> list[int]:
    out = [int_at_least(s, "each subset size", minimum) for s in sizes]
    if max(out) > n:
        raise ValueError(f"subset size {max(out)} exceeds the {n} generated samples")
    if len(set(out)) < 2:
        raise ValueError(f"the fit needs at least two distinct subset sizes; got {out}")
    return out


def _extrapolate(
    n: int, score: Callable[[Tensor], float], sizes, points, smallest, seed, minimum: int, return_fit: bool
) -> "float | InfinityFit":
    sizes = infinity_sizes(n, points, smallest, minimum) if sizes is None else _check_sizes(sizes, n, minimum)
    g = torch.Generator().manual_seed(int(seed))
    scores = [score(torch.randperm(n, generator=g)[:size]) for size in sizes]
    a, b = fit_inverse_n(sizes, scores)
    return InfinityFit(a, b, tuple(sizes), tuple(scores)) if return_fit else a


def fid_infinity(
    features_a: "Tensor | np.ndarray",
    features_b: "Tensor | np.ndarray",
    sizes: Sequence[int] | None = None,
    points: int = POINTS,
    smallest: int = SMALLEST,
    seed: int = 0,
    return_fit: bool = False,
) -> "float | InfinityFit":
    """FID∞ of ``features_b`` (generated, subsampled) against ``features_a`` (reference, used whole).

    ``sizes``: the subset sizes N (each in [2, n_b], at least two distinct); default
    :func:`infinity_sizes` of n_b with ``points`` and ``smallest``. Subsets are drawn by a
    ``torch.Generator`` seeded with ``seed`` (one ``randperm`` per size, in order). Each FID is
    :func:`igm.metrics.fid`'s formula from the statistics of the subset, against the reference
    statistics computed once. Returns a, or an :class:`InfinityFit` when ``return_fit``."""
    a = _check_features(features_a, "features_a")
    b = _check_features(features_b, "features_b", a.device)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    n_a, d = a.shape
    mu_a, sigma_a = feature_statistics(a)
    factor = psd_factor(sigma_a, n_a - 1 if n_a - 1 < d else None)
    tr_a = float(torch.trace(sigma_a))

    def score(idx: Tensor) -> float:
        mu, sigma = feature_statistics(b[idx.to(b.device)])
        diff = mu_a - mu
        return _finish(float(diff @ diff), tr_a, float(torch.trace(sigma)), sqrt_trace(sigma_a, sigma, factor=factor))

    return _extrapolate(b.shape[0], score, sizes, points, smallest, seed, 2, return_fit)


def is_infinity(
    probs: "Tensor | np.ndarray",
    sizes: Sequence[int] | None = None,
    points: int = POINTS,
    smallest: int = SMALLEST,
    seed: int = 0,
    splits: int = 1,
    return_fit: bool = False,
) -> "float | InfinityFit":
    """IS∞ from class probabilities ``probs`` (n, k) of generated samples: the mean
    :func:`igm.metrics.inception_score` (``splits`` splits, default 1 as in the authors' code) of
    random subsets of the ``sizes`` (each at least ``splits``), extrapolated to N → ∞ as in
    :func:`fid_infinity`. Returns a, or an :class:`InfinityFit` when ``return_fit``."""
    p = check_probs(probs)
    splits = int_at_least(splits, "splits", 1)
    return _extrapolate(
        p.shape[0], lambda idx: inception_score(p[idx.to(p.device)], splits)[0], sizes, points, smallest, seed,
        max(splits, 1), return_fit,
    )
