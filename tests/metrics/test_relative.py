"""Relative similarity test: calibration under the null, power, the p-value direction, options."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from igm.kernels import Gaussian
from igm.metrics import relative_test


def draws(g: torch.Generator, n: int, shift_y: float, shift_z: float, d: int = 4, sd_yz: float = 1.0) -> tuple[torch.Tensor, ...]:
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = sd_yz * torch.randn(n, d, generator=g, dtype=torch.float64) + shift_y
    z = sd_yz * torch.randn(n, d, generator=g, dtype=torch.float64) + shift_z
    return x, y, z


@pytest.mark.parametrize("sd_yz", [1.0, 0.3])
def test_calibrated_under_the_null(sd_yz: float) -> None:
    """Y and Z from one distribution, X from another: p ~ Uniform(0, 1). With narrow Y, Z most of
    the variance comes from the shared X, the two estimates are strongly correlated (2 v₁₂ ≈ 0.8
    (v₁₁ + v₂₂)), and leaving out the covariance term would make p cluster around ½."""
    g = torch.Generator().manual_seed(0)
    pvalues = [relative_test(*draws(g, 50, 0.5, 0.5, sd_yz=sd_yz))[1] for _ in range(300)]
    assert scipy.stats.kstest(pvalues, "uniform").pvalue > 0.01


def test_power_when_y_is_closer() -> None:
    g = torch.Generator().manual_seed(1)
    pvalues = np.array([relative_test(*draws(g, 50, 0.3, 0.8))[1] for _ in range(100)])
    assert (pvalues < 0.05).mean() > 0.8


def test_direction_of_the_p_value() -> None:
    g = torch.Generator().manual_seed(2)
    x, y, z = draws(g, 200, 0.0, 1.0)
    t, p = relative_test(x, y, z)
    assert t < 0 and p < 1e-6
    t2, p2 = relative_test(x, z, y)
    assert t2 == pytest.approx(-t) and p2 > 1 - 1e-6


def u_statistic(x: np.ndarray, y: np.ndarray, k) -> float:
    m = x.shape[0]
    h = k(x, x) + k(y, y) - k(x, y) - k(y, x)
    return float((h.sum() - np.trace(h)) / (m * (m - 1)))


def test_statistic_matches_explicit_u_statistics_and_default_kernel() -> None:
    g = torch.Generator().manual_seed(3)
    x, y, z = draws(g, 30, 0.2, 0.4, d=6)
    poly = lambda a, b: (a @ b.T / a.shape[1] + 1.0) ** 3  # noqa: E731  (the KID kernel)
    xn, yn, zn = x.numpy(), y.numpy(), z.numpy()
    expected = u_statistic(xn, yn, poly) - u_statistic(xn, zn, poly)
    assert relative_test(x, y, z)[0] == pytest.approx(expected, rel=1e-10)
    gauss = lambda a, b: np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / 2)  # noqa: E731
    expected = u_statistic(xn, yn, gauss) - u_statistic(xn, zn, gauss)
    assert relative_test(x, y, z, kernel=Gaussian(1.0))[0] == pytest.approx(expected, rel=1e-10)


def test_unequal_sizes_truncate_to_common_size() -> None:
    g = torch.Generator().manual_seed(4)
    x, y, z = draws(g, 40, 0.2, 0.6)
    assert relative_test(x, y[:35], z) == relative_test(x[:35], y[:35], z[:35])


def test_variance_floor() -> None:
    g = torch.Generator().manual_seed(5)
    x, y, z = draws(g, 40, 0.2, 0.6)
    t, p = relative_test(x, y, z)
    t_floor, p_floor = relative_test(x, y, z, variance_floor=1e6)
    assert t_floor == t and p_floor == pytest.approx(scipy.stats.norm.cdf(t / 1e3))
    with pytest.raises(ValueError, match="variance_floor"):
        relative_test(x, y, z, variance_floor=-1.0)


def test_too_few_samples() -> None:
    x = torch.randn(3, 2)
    with pytest.raises(ValueError, match="at least 4"):
        relative_test(x, x, x)
