"""KID against an explicit NumPy loop (kernel and unbiased estimator written out), on the same subsets."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from igm.metrics import kid
from igm.metrics.kid import kid_from_indices, kid_subset_indices

D = 2048


def reference_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with k(a, b) = (aᵀb/d + 1)³, every sum written as an explicit masked mean."""
    d, m = x.shape[1], x.shape[0]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    off = ~np.eye(m, dtype=bool)
    return float(kxx[off].sum() / (m * (m - 1)) + kyy[off].sum() / (m * (m - 1)) - 2.0 * kxy.sum() / (m * m))


def reference_kid(fa: np.ndarray, fb: np.ndarray, idx_a: np.ndarray, idx_b: np.ndarray) -> np.ndarray:
    return np.array([reference_mmd2(fa[ia], fb[ib]) for ia, ib in zip(idx_a, idx_b)])


@pytest.fixture(scope="module")
def features() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    fa = torch.rand(600, D, generator=g, dtype=torch.float64) * 2.0
    fb = torch.rand(700, D, generator=g, dtype=torch.float64) * 2.1 + 0.02
    return fa, fb


@pytest.fixture(scope="module")
def reference(features) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    fa, fb = features
    idx_a, idx_b = kid_subset_indices(600, 700, subsets=5, subset_size=200, seed=3)
    return idx_a, idx_b, reference_kid(fa.numpy(), fb.numpy(), idx_a.numpy(), idx_b.numpy())


@pytest.mark.parametrize("method", ["gram", "subsets", "auto"])
def test_matches_numpy_loop_on_same_subsets(features, reference, method: str) -> None:
    fa, fb = features
    idx_a, idx_b, ref = reference
    values = kid_from_indices(fa, fb, idx_a, idx_b, method=method)
    np.testing.assert_allclose(values.numpy(), ref, rtol=1e-5)
    mean, std = kid(fa, fb, subsets=5, subset_size=200, seed=3, method=method)
    assert mean == pytest.approx(ref.mean(), rel=1e-5)
    assert std == pytest.approx(ref.std(), rel=1e-5)


@pytest.mark.parametrize("method", ["gram", "subsets"])
def test_many_small_blocks_give_the_same_values(features, reference, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 64 rows: the symmetric blocks right of the diagonal, counted twice, must add up."""
    monkeypatch.setattr(sys.modules["igm.metrics.kid"], "_BLOCK_BYTES", 1)  # the name igm.metrics.kid is the function
    fa, fb = features
    idx_a, idx_b, ref = reference
    np.testing.assert_allclose(kid_from_indices(fa, fb, idx_a, idx_b, method=method).numpy(), ref, rtol=1e-5)


def test_float32_features_close_to_float64_reference(features) -> None:
    fa, fb = features
    idx_a, idx_b = kid_subset_indices(600, 700, subsets=3, subset_size=200, seed=0)
    ref = reference_kid(fa.numpy(), fb.numpy(), idx_a.numpy(), idx_b.numpy())
    values = kid_from_indices(fa.float(), fb.float(), idx_a, idx_b)
    np.testing.assert_allclose(values.numpy(), ref, rtol=1e-3)


@pytest.mark.parametrize("method", ["gram", "subsets"])
def test_float32_paths_within_rounding_bound_of_float64_brute_force(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Float32 features (oneDNN's matmul on the CPU where present) against the NumPy loop in float64 on
    the same rounded values. Subset size 45 with 7-column blocks: full, partial and A/B-boundary blocks.
    Bound: positive features give |Δ(aᵀb)| ≤ γ_d·aᵀb (γ_d = d·eps/(1 − d·eps)), so each kernel value is
    off by at most 3·k·γ_d plus a few eps·k for the +1 and the cube, and the estimator by 4× that."""
    kid_module = sys.modules["igm.metrics.kid"]
    monkeypatch.setattr(kid_module, "_SUBSET_COLS", 7)
    monkeypatch.setattr(kid_module, "_BLOCK_BYTES", 1)  # gram path: 64-row blocks
    g = torch.Generator().manual_seed(9)
    d, eps = 96, torch.finfo(torch.float32).eps
    fa = torch.rand(150, d, generator=g) * 2.0
    fb = torch.rand(170, d, generator=g) * 2.0 + 0.1
    idx_a, idx_b = kid_subset_indices(150, 170, subsets=4, subset_size=45, seed=2)
    ref = reference_kid(fa.double().numpy(), fb.double().numpy(), idx_a.numpy(), idx_b.numpy())
    got = kid_from_indices(fa, fb, idx_a, idx_b, method=method).numpy()
    g_over_d = max(float((fa @ fa.T).max()), float((fb @ fb.T).max()), float((fa @ fb.T).max())) / d
    k_max, gamma = (g_over_d + 1.0) ** 3, d * eps / (1 - d * eps)
    bound = 4.0 * (3.0 * k_max * gamma + 8.0 * eps * k_max)
    np.testing.assert_allclose(got, ref, rtol=0, atol=bound)
    assert bound < 0.01 * np.abs(ref).max()  # tight enough that a miscounted block would fail


def test_dots_route_and_fallbacks() -> None:
    kid_module = sys.modules["igm.metrics.kid"]
    g = torch.Generator().manual_seed(10)
    x, y = torch.rand(37, 300, generator=g), torch.rand(23, 300, generator=g)
    exact = x.double() @ y.double().T
    for plus_one in (False, True):
        got = kid_module._dots(x, y, plus_one)
        assert got.dtype == torch.float32 and got.shape == (37, 23)
        bound = 300 * torch.finfo(torch.float32).eps * float(exact.max()) + 2 * torch.finfo(torch.float32).eps * 400
        torch.testing.assert_close(got.double(), exact + float(plus_one), rtol=0, atol=bound)
    assert kid_module._onednn_ok(x) == torch.backends.mkldnn.is_available()
    assert not kid_module._onednn_ok(x.double())
    torch.testing.assert_close(kid_module._dots(x.double(), y.double(), True), exact + 1.0, rtol=1e-15, atol=0)
    switch = getattr(torch.backends.mkldnn, "matmul", None)
    if switch is not None:  # a reduced-precision oneDNN matmul switched on: not used
        before = switch.fp32_precision
        try:
            switch.fp32_precision = "bf16"
            assert not kid_module._onednn_ok(x)
        finally:
            switch.fp32_precision = before


def test_finiteness_check_survives_an_overflowing_sum() -> None:
    kid_module = sys.modules["igm.metrics.kid"]
    big = torch.full((4, 3), 3e38)  # finite entries whose float32 sum overflows to inf
    assert kid_module._all_finite(big)
    for bad in (float("inf"), float("-inf"), float("nan")):
        x = big.clone()
        x[2, 1] = bad
        assert not kid_module._all_finite(x)
        assert not kid_module._all_finite(torch.where(torch.isfinite(x), 1.0, x))


def test_subset_indices_are_draws_without_replacement() -> None:
    idx_a, idx_b = kid_subset_indices(50, 30, subsets=20, subset_size=30, seed=1)
    assert idx_a.shape == idx_b.shape == (20, 30)
    assert all(len(set(r.tolist())) == 30 for r in torch.cat([idx_a, idx_b]))
    assert int(idx_a.max()) < 50 and int(idx_b.max()) < 30 and int(idx_a.min()) >= 0
    assert sorted(idx_b[0].tolist()) == list(range(30))  # a subset of the whole set is the whole set
    assert len({tuple(r.tolist()) for r in idx_a}) == 20  # subsets differ


def test_reproducible_under_seed_and_different_under_another() -> None:
    g = torch.Generator().manual_seed(5)
    fa, fb = torch.randn(300, 16, generator=g), torch.randn(300, 16, generator=g) + 0.3
    first = kid(fa, fb, subsets=10, subset_size=100, seed=11)
    assert kid(fa, fb, subsets=10, subset_size=100, seed=11) == first
    assert kid(fa, fb, subsets=10, subset_size=100, seed=12) != first


def test_unbiased_near_zero_for_same_distribution_and_positive_otherwise() -> None:
    g = torch.Generator().manual_seed(6)
    fa, fb = torch.randn(2000, 8, generator=g), torch.randn(2000, 8, generator=g)
    mean, std = kid(fa, fb, subsets=50, subset_size=500)
    assert abs(mean) < 3 * std + 1e-4
    assert kid(fa, fb + 0.5, subsets=50, subset_size=500)[0] > 10 * std


def test_too_few_samples_and_allow_smaller() -> None:
    fa, fb = torch.randn(80, 4, dtype=torch.float64), torch.randn(120, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"subset_size=1000 exceeds the samples available \(features_a: 80"):
        kid(fa, fb)
    with pytest.warns(UserWarning, match="using subset_size=80"):
        got = kid(fa, fb, subsets=7, allow_smaller=True)
    assert got == kid(fa, fb, subsets=7, subset_size=80)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="dimensions differ"):
        kid(torch.randn(10, 3), torch.randn(10, 4), subset_size=5)
    with pytest.raises(ValueError, match="non-finite"):
        kid(torch.full((10, 3), float("nan")), torch.randn(10, 3), subset_size=5)
    with pytest.raises(ValueError, match="unknown method"):
        kid(torch.randn(10, 3), torch.randn(10, 3), subset_size=5, method="nope")
