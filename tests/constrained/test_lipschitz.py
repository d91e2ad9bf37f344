"""Tests for the Lipschitz MMD estimator (igm.constrained.lipschitz)."""

from __future__ import annotations

import math

import cvxpy as cp
import numpy as np
import pytest
import torch

from igm.constrained import LipschitzMMDResult, lipschitz_mmd
from igm.constrained.lipschitz import default_grid


def gauss(sigma: float):
    """Local Gaussian kernel (independent of igm.kernels)."""
    return lambda a, b: torch.exp(-torch.cdist(a, b) ** 2 / (2 * sigma * sigma))


def np_gauss(a: np.ndarray, b: np.ndarray, sigma: float) -> float:
    return math.exp(-float(np.sum((a - b) ** 2)) / (2 * sigma * sigma))


def mmd2_biased_loop(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    """Biased MMD^2 by an explicit double loop (independent reference)."""
    kxx = sum(np_gauss(a, b, sigma) for a in x for b in x) / len(x) ** 2
    kyy = sum(np_gauss(a, b, sigma) for a in y for b in y) / len(y) ** 2
    kxy = sum(np_gauss(a, b, sigma) for a in x for b in y) / (len(x) * len(y))
    return kxx + kyy - 2 * kxy


def rkhs_norm2(res: LipschitzMMDResult, sigma: float) -> float:
    z = res.support
    k = np.exp(-((z[:, None, :] - z[None, :, :]) ** 2).sum(-1) / (2 * sigma * sigma))
    return float(res.alpha @ k @ res.alpha)


@pytest.mark.parametrize("dim", [1, 2])
def test_large_lipschitz_recovers_mmd(dim: int) -> None:
    rng = np.random.default_rng(dim)
    sigma = 0.8
    x = rng.normal(size=(14, dim))
    y = rng.normal(0.7, 1.3, size=(11, dim))
    support = np.vstack([x, y])
    # a small explicit grid keeps the 2-D case fast; the constraint is inactive anyway
    grid = None if dim == 1 else np.stack(np.meshgrid(*[np.linspace(-3, 3, 6)] * 2), -1).reshape(-1, 2)
    xin, yin = (torch.from_numpy(x[:, 0]), torch.from_numpy(y[:, 0])) if dim == 1 else (x, y)
    res = lipschitz_mmd(xin, yin, gauss(sigma), lipschitz=1e6, support=support, grid=grid)
    expected = math.sqrt(mmd2_biased_loop(x, y, sigma))
    assert res.status == "optimal"
    assert res.value == pytest.approx(expected, rel=1e-5)
    # the witness is the normalised mean-embedding difference: unit RKHS norm, and
    # E_P f - E_Q f recomputed from the witness matches the reported value
    assert rkhs_norm2(res, sigma) == pytest.approx(1.0, abs=1e-5)
    assert res.witness(x).mean() - res.witness(y).mean() == pytest.approx(res.value, rel=1e-8)
    # the value scales linearly with the RKHS radius
    res2 = lipschitz_mmd(x, y, gauss(sigma), lipschitz=1e6, support=support, grid=grid, rkhs_bound=2.0)
    assert res2.value == pytest.approx(2 * expected, rel=1e-5)


def test_monotone_in_lipschitz_and_kantorovich_bound() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=12), rng.normal(1.0, 0.5, size=12)
    w1 = float(np.mean(np.abs(np.sort(x) - np.sort(y))))  # exact 1-D W1, equal sizes
    grid = np.linspace(min(x.min(), y.min()) - 0.5, max(x.max(), y.max()) + 0.5, 150)
    kern = gauss(1.0)
    ls = [0.02, 0.05, 0.1, 0.3, 1.0, 3.0]
    res = [lipschitz_mmd(x, y, kern, lipschitz=L, grid=grid) for L in ls]
    vals = [r.value for r in res]
    assert all(v2 >= v1 - 1e-7 for v1, v2 in zip(vals, vals[1:])), vals
    assert vals[-1] > 2 * vals[0]  # the constraint does bind for small L
    for L, r in zip(ls[:3], res[:3]):
        assert r.value <= 1.05 * L * w1
        assert r.value >= 0.8 * L * w1  # the kernel span is rich enough to nearly attain W1
    # while the RKHS ball does not bind, the program is positively homogeneous in L
    assert vals[1] / vals[0] == pytest.approx(2.5, rel=1e-4)
    assert vals[2] / vals[0] == pytest.approx(5.0, rel=1e-4)
    # and at large L we recover the plain MMD
    assert vals[-1] == pytest.approx(math.sqrt(mmd2_biased_loop(x[:, None], y[:, None], 1.0)), rel=1e-5)


def fd_grad(res: LipschitzMMDResult, t: np.ndarray, h: float = 1e-5) -> np.ndarray:
    return (res.witness(t + h) - res.witness(t - h)) / (2 * h)


@pytest.mark.parametrize("psi,theta", [(1.0, 1.5), (2.0, 0.7)])
def test_dirac_gan(psi: float, theta: float) -> None:
    kern = gauss(1.0 / psi)  # Gaussian kernel on features psi * x
    x, y = np.array([[0.0]]), np.array([[theta]])
    closed = math.sqrt(2 * (1 - math.exp(-(psi**2) * theta**2 / 2)))
    free = lipschitz_mmd(x, y, kern, lipschitz=1e6)
    assert free.value == pytest.approx(closed, rel=1e-5)

    L = 0.3
    res = lipschitz_mmd(x, y, kern, lipschitz=L)
    g = np.abs(fd_grad(res, res.grid[:, 0]))
    assert g.max() <= L + 1e-5  # a finite difference (h 1e-5) of a witness with ‖α‖₁ ~ 6e3, solver tolerance 1e-8
    assert g.max() >= L - 1e-4  # gradient constraint is active
    assert res.value < closed - 1e-3
    assert res.value <= L * theta * 1.05  # Kantorovich-Rubinstein: W1(delta_0, delta_theta) = theta
    # unconstrained witness is steeper than L somewhere on the grid
    assert np.abs(fd_grad(free, free.grid[:, 0])).max() > L


def test_identical_distributions_give_zero() -> None:
    res = lipschitz_mmd(np.zeros(3), np.zeros(2), gauss(1.0))
    assert res.value == pytest.approx(0.0, abs=1e-8)
    # degenerate bounding box: grid padded by +-1e-3
    assert res.grid.shape == (64, 1)
    assert res.grid.min() == pytest.approx(-1e-3) and res.grid.max() == pytest.approx(1e-3)


def test_default_grid_shapes_and_extent() -> None:
    pts = np.array([[0.0, 1.0, -2.0], [10.0, 1.0, 2.0]])
    g3 = default_grid(pts)
    assert g3.shape == (1000, 3)
    np.testing.assert_allclose(g3.min(0), [-1.0, 1.0 - 1e-3, -2.4])
    np.testing.assert_allclose(g3.max(0), [11.0, 1.0 + 1e-3, 2.4])
    assert default_grid(pts[:, :2]).shape == (625, 2)
    assert len(np.unique(default_grid(pts[:, :1]))) == 64


@pytest.mark.parametrize(
    "x,y,kwargs,match",
    [
        (np.zeros((3, 2)), np.zeros((3, 1)), {}, "dimensions differ"),
        (np.zeros((0, 1)), np.zeros((3, 1)), {}, "non-empty"),
        (np.zeros((2, 2, 2)), np.zeros((3, 1)), {}, "1-D or 2-D"),
        (np.zeros(3), np.ones(3), {"lipschitz": 0.0}, "lipschitz"),
        (np.zeros(3), np.ones(3), {"lipschitz": -1.0}, "lipschitz"),
        (np.zeros(3), np.ones(3), {"rkhs_bound": float("inf")}, "rkhs_bound"),
        (np.zeros((3, 4)), np.ones((3, 4)), {}, "pass grid= explicitly"),
        (np.zeros(3), np.ones(3), {"support": np.zeros((4, 2))}, "support has dimension"),
        (np.zeros(3), np.ones(3), {"grid": np.zeros((4, 2))}, "grid has dimension"),
        (np.linspace(0, 1, 1500), np.linspace(2, 3, 1500), {}, "too many support"),
        (np.zeros(3), np.ones(3), {"grid": np.linspace(0, 1, 2001)}, "too many grid"),
    ],
)
def test_bad_inputs(x, y, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        lipschitz_mmd(x, y, gauss(1.0), **kwargs)


def test_witness_rejects_wrong_dimension() -> None:
    res = lipschitz_mmd(np.zeros(2), np.ones(2), gauss(1.0))
    with pytest.raises(ValueError, match="dimension"):
        res.witness(np.zeros((3, 2)))


def test_solver_failures_raise_runtime_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError, match="NOT_A_SOLVER"):
        lipschitz_mmd(np.zeros(2), np.ones(2), gauss(1.0), solver="NOT_A_SOLVER")

    def fake_solve(self, *args, **kwargs):
        self._status = cp.INFEASIBLE

    monkeypatch.setattr(cp.Problem, "solve", fake_solve)
    with pytest.raises(RuntimeError, match="infeasible"):
        lipschitz_mmd(np.zeros(2), np.ones(2), gauss(1.0))
