"""FID∞ and IS∞: the fit on exact a + b/N data, the default sizes, Gaussians with a closed-form FID,
a finite population with an exact IS, reuse of the reference statistics, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import igm.metrics.infinity as infinity
from igm.metrics import fid, fid_infinity, inception_score, is_infinity
from igm.metrics.infinity import InfinityFit, fit_inverse_n, infinity_sizes
from tolerance import assert_close

F64 = torch.float64


def intercept_weights(sizes) -> np.ndarray:
    """w with a = Σ_j w_j score_j for the least-squares intercept in x = 1/N (Σ w_j = 1)."""
    x = 1.0 / np.asarray(sizes, dtype=np.float64)
    xc = x - x.mean()
    return 1.0 / x.size - x.mean() * xc / (xc @ xc)


def extrapolation_se(var_if: float, n: int, sizes, var_ref: float = 0.0, n_ref: int = 1) -> float:
    """First-order (delta-method) standard error of the extrapolated score. A score of a subset S of
    the generated set G (|G| = n) is, to first order, score(population) + mean_{x∈S} IF(x) +
    (reference term), IF the influence function of the score, Var IF = ``var_if``. Write mean_S IF =
    mean_G IF + (mean_S IF − mean_G IF): the first part is common to every point and passes through the
    fit unchanged (Σ w_j = 1), with variance var_if/n; the second, for subsets drawn independently
    without replacement, has variance var_if (1/N_j − 1/n) and is independent across points, so it
    enters as Σ w_j² var_if (1/N_j − 1/n). The reference set, used whole, adds var_ref/n_ref."""
    sizes = np.asarray(sizes, dtype=np.float64)
    w = intercept_weights(sizes)
    return float(np.sqrt(var_if / n + var_ref / n_ref + var_if * np.sum(w**2 * (1.0 / sizes - 1.0 / n))))


def test_fit_recovers_an_exact_line() -> None:
    sizes = infinity_sizes(50_000)
    for a, b in ((3.7, 1234.5), (-0.25, -80.0), (12.0, 0.0)):
        got_a, got_b = fit_inverse_n(sizes, [a + b / n for n in sizes])
        # Rounding: the scores carry eps·(|a| + |b|/N) each; centring x = 1/N and the two sums over
        # J = 15 points cost J·eps more; extrapolating from x ∈ [1/50 000, 1/5 000] to 0 amplifies the
        # intercept's error by at most x_max/(x_max − x_min) = 10/9 ≤ 2 and the slope's by 1/(x_max − x_min).
        x = 1.0 / np.asarray(sizes, dtype=np.float64)
        assert_close(got_a, a, dtype=F64, magnitude=abs(a) + abs(b) * x.max(), terms=len(sizes), cond=2.0)
        assert_close(got_b, b, dtype=F64, magnitude=abs(a) / x.max() + abs(b), terms=len(sizes), cond=1.0 / (1.0 - x.min() / x.max()))
    noisy = [1.0 + 30.0 / n + 0.01 * np.sin(n) for n in sizes]
    slope, intercept = np.polyfit(1.0 / np.asarray(sizes, dtype=np.float64), noisy, 1)  # an independent solver
    got_a, got_b = fit_inverse_n(sizes, noisy)
    assert got_a == pytest.approx(intercept, rel=1e-9) and got_b == pytest.approx(slope, rel=1e-9)


def test_default_sizes_follow_the_authors_linspace() -> None:
    assert infinity_sizes(50_000) == [int(s) for s in np.linspace(5000, 50_000, 15)]
    assert infinity_sizes(50_000)[:3] == [5000, 8214, 11428]
    assert infinity_sizes(6000, points=3) == [5000, 5500, 6000]
    with pytest.warns(UserWarning, match="only 2000 generated samples"):
        small = infinity_sizes(2000)
    assert small[0] == 400 and small[-1] == 2000 and len(small) == 15
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="two distinct subset sizes"):
        infinity_sizes(2, points=5)
    with pytest.raises(ValueError, match="points must be"):
        infinity_sizes(10_000, points=1)


def gaussian_case(seed: int, n_a: int = 100_000, n_b: int = 4000, d: int = 32):
    """features_a ~ N(0, I), features_b ~ N(μ, diag s²): FID = ‖μ‖² + Σ_i (1 − s_i)²."""
    mu = np.full(d, 0.02)
    s = 1.0 + 0.1 * np.linspace(-1.0, 1.0, d)
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n_a, d, generator=g, dtype=F64)
    b = torch.randn(n_b, d, generator=g, dtype=F64) * torch.from_numpy(s) + torch.from_numpy(mu)
    return a, b, mu, s, float(mu @ mu + np.sum((1.0 - s) ** 2))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fid_infinity_on_gaussians_is_closer_to_the_truth(seed: int) -> None:
    a, b, mu, s, true = gaussian_case(seed)
    fit = fid_infinity(a, b, smallest=1000, seed=seed, return_fit=True)
    full = fid(a, b)
    # Influence functions at the truth (Σ_a = I, Σ_b = diag s², both diagonal, so to first order only
    # the diagonal of each sample covariance matters: per dimension FID_i = (m_a − m_b)² + v_a + v_b
    # − 2√(v_a v_b)). A generated point x: IF = 2μ·(x − μ) + Σ_i (1 − 1/s_i)((x_i − μ_i)² − s_i²), so
    # Var = 4 Σ μ_i² s_i² + 2 Σ (1 − 1/s_i)² s_i⁴. A reference point y: IF = −2μ·y + Σ_i (1 − s_i)(y_i² − 1),
    # Var = 4‖μ‖² + 2 Σ (1 − s_i)². The standard error of FID∞ then follows from extrapolation_se.
    var_b = 4 * np.sum(mu**2 * s**2) + 2 * np.sum((1 - 1 / s) ** 2 * s**4)
    var_a = 4 * mu @ mu + 2 * np.sum((1 - s) ** 2)
    se = extrapolation_se(var_b, b.shape[0], fit.sizes, var_a, a.shape[0])
    # 4 standard errors, plus the reference's own bias, O(1/n_a) with a coefficient of the order of the
    # fitted slope (the same second-order expansion in the other set), which the fit cannot remove.
    assert abs(fit.value - true) <= 4 * se + abs(fit.slope) / a.shape[0]
    # the bias at the largest N is slope/n_b ≈ 7 standard errors here: FID∞ must remove most of it
    assert fit.slope / b.shape[0] > 5 * se
    assert abs(fit.value - true) < abs(full - true)
    assert_close(fit.scores[-1], full, dtype=F64, magnitude=full + 2 * float(b.var(0).sum()), terms=32 * 32)


def test_reference_statistics_and_factor_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, *_ = gaussian_case(0, n_a=3000, n_b=600, d=8)
    calls = {"stats": [], "factor": 0}
    stats, factor = infinity.feature_statistics, infinity.psd_factor
    monkeypatch.setattr(infinity, "feature_statistics", lambda f: calls["stats"].append(f.shape[0]) or stats(f))
    monkeypatch.setattr(infinity, "psd_factor", lambda *x: calls.__setitem__("factor", calls["factor"] + 1) or factor(*x))
    fit = fid_infinity(a, b, sizes=[200, 400, 600], return_fit=True)
    assert calls == {"stats": [3000, 200, 400, 600], "factor": 1}
    assert isinstance(fit, InfinityFit) and fit.sizes == (200, 400, 600) and fit.value == fit_inverse_n(fit.sizes, fit.scores)[0]


def test_reproducible_under_seed_and_plain_float_by_default() -> None:
    a, b, *_ = gaussian_case(1, n_a=2000, n_b=500, d=6)
    first = fid_infinity(a, b, sizes=[100, 250, 400], seed=3)
    assert isinstance(first, float)
    assert fid_infinity(a.numpy(), b.numpy(), sizes=[100, 250, 400], seed=3) == first
    assert fid_infinity(a, b, sizes=[100, 250, 400], seed=4) != first


def population(k: int = 1000, rows: int = 2000, temperature: float = 4.0):
    """A finite population of class-probability rows (softmax of Gaussians); generated sets are drawn
    from it with replacement, so its exact IS is the truth: log IS = mean_q KL(q ‖ q̄)."""
    g = torch.Generator().manual_seed(123)
    pop = torch.softmax(temperature * torch.randn(rows, k, generator=g, dtype=F64), 1)
    kl = (torch.xlogy(pop, pop) - pop * torch.log(pop.mean(0))).sum(1)
    return pop, float(torch.exp(kl.mean())), kl


def test_is_infinity_unbiased_where_is_is_not() -> None:
    pop, true, kl = population()
    n, reps = 4000, 12
    # log IS = E KL(q ‖ q̄); its influence function is KL(q ‖ q̄) − log IS (the marginal's own term
    # vanishes because Σ_y (q_y − q̄_y) = 0), so Var IF(IS) = IS² Var KL.
    var_if = true**2 * float(kl.var(unbiased=False))
    errors, full = [], []
    for rep in range(reps):
        probs = pop[torch.randint(pop.shape[0], (n,), generator=torch.Generator().manual_seed(rep))]
        fit = is_infinity(probs, smallest=1000, seed=rep, return_fit=True)
        assert fit.scores[-1] == pytest.approx(inception_score(probs, splits=1)[0], rel=1e-12)
        errors.append(fit.value - true)
        full.append(fit.scores[-1] - true)
    se = extrapolation_se(var_if, n, fit.sizes)
    se_full = np.sqrt(var_if / n)
    # Over independent replicates the mean error has standard error se/√reps: IS∞ within 4 of them of
    # the truth; the plain IS at the largest N is biased low by about 2 of its own standard errors
    # (slope/n), 7 standard errors of the mean.
    assert abs(np.mean(errors)) <= 4 * se / np.sqrt(reps)
    assert np.mean(full) < -4 * se_full / np.sqrt(reps)
    assert abs(np.mean(errors)) < abs(np.mean(full))


def test_bad_inputs() -> None:
    a, b, *_ = gaussian_case(0, n_a=500, n_b=300, d=4)
    with pytest.raises(ValueError, match="feature dimensions differ"):
        fid_infinity(a, b[:, :3], sizes=[100, 200])
    bad = b.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        fid_infinity(a, bad, sizes=[100, 200])
    with pytest.raises(ValueError, match="2-D"):
        fid_infinity(a[:, 0], b, sizes=[100, 200])
    with pytest.raises(ValueError, match="exceeds the 300 generated"):
        fid_infinity(a, b, sizes=[100, 301])
    with pytest.raises(ValueError, match="each subset size must be an integer >= 2"):
        fid_infinity(a, b, sizes=[1, 200])
    with pytest.raises(ValueError, match="two distinct"):
        fid_infinity(a, b, sizes=[200, 200])
    probs = torch.full((300, 4), 0.25, dtype=F64)
    with pytest.raises(ValueError, match="sum to 1"):
        is_infinity(probs * 2, sizes=[100, 200])
    with pytest.raises(ValueError, match="each subset size must be an integer >= 10"):
        is_infinity(probs, sizes=[5, 200], splits=10)
    with pytest.raises(ValueError, match="splits must be"):
        is_infinity(probs, sizes=[100, 200], splits=0)
    with pytest.raises(ValueError, match="at least two distinct sizes"):
        fit_inverse_n([100, 100], [1.0, 2.0])
