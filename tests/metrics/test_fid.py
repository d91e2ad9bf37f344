"""FID against an independent SciPy ``sqrtm`` reference, closed forms and degenerate inputs."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from igm.metrics import fid, fid_from_stats
from igm.metrics.fid import feature_statistics, sqrt_trace



def one_blas_thread() -> contextlib.AbstractContextManager:
    """Multi-threaded OpenBLAS is many times slower on a shared, loaded 2-core machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The pytorch-fid / TTUR formula: scipy.linalg.sqrtm of Σ₁Σ₂, real part of its trace."""
    mu1, mu2 = a.mean(0), b.mean(0)
    with one_blas_thread():
        s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean).real)


def feature_pair(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two sets with different means and non-diagonal covariances (Inception-like: non-negative)."""
    rng = np.random.default_rng(seed)
    a = np.abs(rng.standard_normal((n, d)) @ (np.eye(d) + 0.3 * rng.standard_normal((d, d)) / math.sqrt(d)))
    b = np.abs(1.2 * rng.standard_normal((n + 7, d)) @ (np.eye(d) + 0.3 * rng.standard_normal((d, d)) / math.sqrt(d)) + 0.05)
    return a, b


@pytest.mark.parametrize(
    "n, d",
    [(800, 512), (200, 512), pytest.param(3000, 2048, marks=pytest.mark.slow), pytest.param(500, 2048, marks=pytest.mark.slow)],
)
def test_fid_matches_sqrtm_reference(n: int, d: int) -> None:
    a, b = feature_pair(n, d)
    ours = fid(torch.from_numpy(a), torch.from_numpy(b))
    ref = reference_fid(a, b)
    # with n < d the reference's sqrtm works on a rank-deficient product: each of its ~d − n null
    # eigenvalues adds ~√(eps·λ), so the agreement is √eps-level there, eps-level at full rank
    assert ours == pytest.approx(ref, rel=1e-6 if n >= d else 1e-5)


def test_fast_path_taken_when_fewer_samples_than_dimensions(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = torch.linalg.svdvals
    monkeypatch.setattr(torch.linalg, "svdvals", lambda x: calls.append(x.shape) or real(x))
    a, b = feature_pair(60, 128)
    fid(a, b)
    assert calls == [(60, 67)]
    calls.clear()
    fid(*feature_pair(200, 128))
    assert calls == []


def test_fid_from_stats_equals_fid_both_regimes() -> None:
    for n, d in [(300, 64), (40, 128)]:
        a, b = (torch.from_numpy(t) for t in feature_pair(n, d, seed=3))
        (m1, s1), (m2, s2) = feature_statistics(a), feature_statistics(b)
        direct = fid(a, b)
        assert fid_from_stats(m1, s1, m2, s2) == pytest.approx(direct, rel=1e-8)
        assert fid_from_stats(m1, s1, m2, s2, n1=a.shape[0], n2=b.shape[0]) == pytest.approx(direct, rel=1e-10)
        assert fid_from_stats(m1.numpy(), s1.numpy(), m2.numpy(), s2.numpy()) == pytest.approx(direct, rel=1e-8)


def test_closed_form_for_diagonal_gaussians() -> None:
    """Diagonal covariances: FID = ‖μ₁ − μ₂‖² + Σ_i (σ₁ᵢ − σ₂ᵢ)²."""
    g = torch.Generator().manual_seed(1)
    mu1, mu2 = torch.randn(50, generator=g, dtype=torch.float64), torch.randn(50, generator=g, dtype=torch.float64)
    sd1, sd2 = torch.rand(50, generator=g, dtype=torch.float64) + 0.1, torch.rand(50, generator=g, dtype=torch.float64) + 0.1
    expected = float(((mu1 - mu2) ** 2).sum() + ((sd1 - sd2) ** 2).sum())
    assert fid_from_stats(mu1, torch.diag(sd1**2), mu2, torch.diag(sd2**2)) == pytest.approx(expected, rel=1e-12)


def test_cholesky_and_eigh_factors_agree() -> None:
    a, b = feature_pair(300, 64, seed=5)
    (_, s1), (_, s2) = feature_statistics(a), feature_statistics(b)
    assert sqrt_trace(s1, s2) == pytest.approx(sqrt_trace(s1, s2, rank1=64), rel=1e-11)  # d·eps·cond ≈ 2.4e-13, ×40


@pytest.mark.parametrize("n, d, rank", [(500, 64, 64), (30, 256, 30), (500, 64, 5), (3, 64, 3)])
def test_self_fid_is_zero_never_nan(n: int, d: int, rank: int) -> None:
    rng = np.random.default_rng(7)
    a = 100.0 * rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d)) + 1e3  # large offset, low rank
    value = fid(a, a)
    assert math.isfinite(value) and 0.0 <= value <= 1e-9 * np.trace(np.cov(a, rowvar=False))
    (m, s) = feature_statistics(a)
    for kwargs in ({}, {"n1": n, "n2": n}):
        value = fid_from_stats(m, s, m, s, **kwargs)
        assert math.isfinite(value) and abs(value) <= 1e-8 * float(torch.trace(s))


def test_identical_constant_sets_give_zero() -> None:
    a = torch.ones(10, 32)
    assert fid(a, a) == 0.0


def test_bad_inputs_raise() -> None:
    a = torch.randn(10, 8)
    with pytest.raises(ValueError, match="dimensions differ"):
        fid(a, torch.randn(10, 9))
    with pytest.raises(ValueError, match="at least 2 samples"):
        fid(a[:1], a)
    with pytest.raises(ValueError, match="non-finite"):
        fid(a, torch.full((10, 8), float("nan")))
    with pytest.raises(ValueError, match="shapes disagree"):
        fid_from_stats(torch.zeros(8), torch.eye(8), torch.zeros(7), torch.eye(7))
