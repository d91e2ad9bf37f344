"""MMD² estimators, witness, block estimator and U-statistic (co)variance against independent
references written from SPEC §1–§2: explicit NumPy loops over pairs for the estimators, a brute-force
loop over distinct index tuples for the variance, and Monte-Carlo checks over many independent draws.
Nothing from ``igm`` computes a reference value."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch

from igm.kernels import Distance, Gaussian, Linear, Polynomial, RationalQuadratic, RBFMixture
from igm.mmd import ESTIMATORS, mmd2, mmd2_block, mmd2_covariance, mmd2_variance, witness
from tolerance import assert_close

RQ_DEFAULT = (0.2, 0.5, 1.0, 2.0, 5.0)

# ----------------------------------------------------------------------------------------------
# scalar kernel references (SPEC §1)


def np_gaussian(sigma):
    return lambda a, b: math.exp(-float(np.sum((a - b) ** 2)) / (2.0 * sigma**2))


def np_rbf(sigmas):
    return lambda a, b: sum(math.exp(-float(np.sum((a - b) ** 2)) / (2.0 * s**2)) for s in sigmas)


def np_rq(alphas):
    return lambda a, b: sum((1.0 + float(np.sum((a - b) ** 2)) / (2.0 * al)) ** (-al) for al in alphas)


def np_linear_rq(alphas=RQ_DEFAULT):
    rq = np_rq(alphas)
    return lambda a, b: float(np.dot(a, b)) + rq(a, b)


def np_distance(a, b):
    return 0.5 * (np.linalg.norm(a) + np.linalg.norm(b) - np.linalg.norm(a - b))


def np_poly_kid(a, b):
    return (float(np.dot(a, b)) / a.shape[0] + 1.0) ** 3


KERNELS = [
    ("gaussian", lambda: Gaussian(), np_gaussian(1.0)),
    ("rbf-mixture", lambda: RBFMixture(sigmas=(0.5, 1.0, 4.0)), np_rbf((0.5, 1.0, 4.0))),
    ("linear+rq", lambda: Linear() + RationalQuadratic(), np_linear_rq()),
    ("distance", lambda: Distance(), np_distance),
    ("polynomial", lambda: Polynomial(), np_poly_kid),
    ("scaled-sum", lambda: 2.0 * Gaussian(2.0) + 0.5 * Linear(), lambda a, b: 2.0 * np_gaussian(2.0)(a, b) + 0.5 * float(np.dot(a, b))),
]
IDS = [k[0] for k in KERNELS]


# ----------------------------------------------------------------------------------------------
# loop references (SPEC §2)


def mmd2_loop(X, Y, k, estimator):
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    m, n = len(X), len(Y)
    sxx = sxx_off = 0.0
    for i in range(m):
        for j in range(m):
            v = k(X[i], X[j])
            sxx += v
            if i != j:
                sxx_off += v
    syy = syy_off = 0.0
    for i in range(n):
        for j in range(n):
            v = k(Y[i], Y[j])
            syy += v
            if i != j:
                syy_off += v
    sxy = sxy_off = 0.0
    for i in range(m):
        for j in range(n):
            v = k(X[i], Y[j])
            sxy += v
            if i != j:
                sxy_off += v
    if estimator == "biased":
        return sxx / (m * m) + syy / (n * n) - 2.0 * sxy / (m * n)
    if estimator == "unbiased":
        return sxx_off / (m * (m - 1)) + syy_off / (n * (n - 1)) - 2.0 * sxy / (m * n)
    if estimator == "u-statistic":
        assert m == n
        return sxx_off / (m * (m - 1)) + syy_off / (n * (n - 1)) - 2.0 * sxy_off / (m * (m - 1))
    raise AssertionError(estimator)


def h_loop(X, Y, k):
    """H_ij = k(x_i,x_j) + k(y_i,y_j) − k(x_i,y_j) − k(x_j,y_i), zero diagonal."""
    m = len(X)
    H = np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if i != j:
                H[i, j] = k(X[i], X[j]) + k(Y[i], Y[j]) - k(X[i], Y[j]) - k(X[j], Y[i])
    return H


def ustat_cov_bruteforce(H1, H2):
    """Unbiased estimate of Cov(U1, U2) for two order-2 U-statistics over the same m joint samples.

    Cov = 2/(m(m−1)) [2(m−2) ζ₁ + ζ₂] (Hoeffding, exact for finite m) with
    ζ₁ = E[h1_ij h2_ik] − θ₁θ₂ and ζ₂ = E[h1_ij h2_ij] − θ₁θ₂. Every expectation, θ₁θ₂ included, is
    estimated by averaging over tuples of DISTINCT indices, so the whole estimate is unbiased."""
    m = H1.shape[0]
    same = [H1[i, j] * H2[i, j] for i in range(m) for j in range(m) if i != j]
    one = [H1[i, j] * H2[i, k] for i in range(m) for j in range(m) for k in range(m) if len({i, j, k}) == 3]
    prod = [
        H1[i, j] * H2[k, l]
        for i in range(m)
        for j in range(m)
        for k in range(m)
        for l in range(m)  # noqa: E741
        if len({i, j, k, l}) == 4
    ]
    tt = np.mean(prod)
    zeta1 = np.mean(one) - tt
    zeta2 = np.mean(same) - tt
    return 2.0 / (m * (m - 1)) * (2.0 * (m - 2) * zeta1 + zeta2)


# batched NumPy versions for the Monte-Carlo checks (each validated against the loops above)


def np_gauss_gram(A, B, sigma=1.0):
    """(N, m, d) × (N, n, d) → (N, m, n); ‖a − b‖² = ‖a‖² + ‖b‖² − 2aᵀb (float64, O(1) data)."""
    r = (A * A).sum(-1)[:, :, None] + (B * B).sum(-1)[:, None, :] - 2.0 * np.einsum("nid,njd->nij", A, B)
    return np.exp(-np.maximum(r, 0.0) / (2.0 * sigma**2))


def np_h_batched(X, Y, gram):
    kxy = gram(X, Y)
    h = gram(X, X) + gram(Y, Y) - kxy - kxy.transpose(0, 2, 1)
    m = X.shape[1]
    h[:, np.arange(m), np.arange(m)] = 0.0
    return h


def np_ustat_batched(h):
    m = h.shape[1]
    return h.sum((1, 2)) / (m * (m - 1))


def np_ustat_cov_batched(h1, h2):
    """Same estimator as :func:`ustat_cov_bruteforce`, from sums: with S = Σ h, Q = Σ h1∘h2 and
    R = Σ_i r1_i r2_i − Q (r = row sums), Σ over distinct (i,j,k,l) of h1_ij h2_kl = S1 S2 − 4R − 2Q."""
    m = h1.shape[1]
    s1, s2 = h1.sum((1, 2)), h2.sum((1, 2))
    q = (h1 * h2).sum((1, 2))
    r = (h1.sum(2) * h2.sum(2)).sum(1) - q
    tt = (s1 * s2 - 4.0 * r - 2.0 * q) / (m * (m - 1) * (m - 2) * (m - 3))
    zeta1 = r / (m * (m - 1) * (m - 2)) - tt
    zeta2 = q / (m * (m - 1)) - tt
    return 2.0 / (m * (m - 1)) * (2.0 * (m - 2) * zeta1 + zeta2)


def _t(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def _rng(seed):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------------------------
# estimators


@pytest.mark.parametrize("make,k", [k[1:] for k in KERNELS], ids=IDS)
@pytest.mark.parametrize("estimator,m,n", [("unbiased", 7, 5), ("biased", 7, 5), ("biased", 4, 9), ("u-statistic", 6, 6), ("unbiased", 6, 6)])
def test_mmd2_matches_loop(make, k, estimator, m, n):
    rng = _rng(zlib.crc32(f"{estimator}-{m}-{n}".encode()))
    X = rng.normal(size=(m, 3))
    Y = rng.normal(size=(n, 3)) * 1.5 + 0.3
    got = mmd2(_t(X), _t(Y), make(), estimator)
    assert got.dim() == 0 and got.dtype == torch.float64
    ref = mmd2_loop(X, Y, k, estimator)
    np.testing.assert_allclose(float(got), ref, rtol=1e-10, atol=1e-12)


def test_estimators_differ_on_non_constant_diagonal():
    # the three estimators are distinct quantities: a test that mixed them up would see it
    rng = _rng(0)
    X, Y = _t(rng.normal(size=(6, 2))), _t(rng.normal(size=(6, 2)))
    vals = {e: float(mmd2(X, Y, Linear() + RationalQuadratic(), e)) for e in ESTIMATORS}
    assert len({round(v, 8) for v in vals.values()}) == 3
    assert mmd2(X, Y, Gaussian()).requires_grad is False


def test_default_estimator_is_unbiased():
    rng = _rng(1)
    X, Y = rng.normal(size=(5, 2)), rng.normal(size=(4, 2))
    np.testing.assert_allclose(float(mmd2(_t(X), _t(Y), Gaussian())), mmd2_loop(X, Y, np_gaussian(1.0), "unbiased"), rtol=1e-10)


def test_mmd2_flattens_per_sample_shapes_and_accepts_1d():
    rng = _rng(2)
    X, Y = rng.normal(size=(5, 2, 3)), rng.normal(size=(4, 2, 3))
    got = mmd2(_t(X), _t(Y), Gaussian(2.0))
    ref = mmd2_loop(X.reshape(5, -1), Y.reshape(4, -1), np_gaussian(2.0), "unbiased")
    np.testing.assert_allclose(float(got), ref, rtol=1e-10)
    x1, y1 = rng.normal(size=6), rng.normal(size=5) + 1.0
    got1 = mmd2(_t(x1), _t(y1), Distance(), "biased")
    np.testing.assert_allclose(float(got1), mmd2_loop(x1[:, None], y1[:, None], np_distance, "biased"), rtol=1e-10)


def test_energy_distance_identity():
    # biased MMD² with the distance kernel is half the (V-statistic) energy distance
    rng = _rng(3)
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(5, 2)) + 0.7
    ed = (
        2 * np.mean([np.linalg.norm(a - b) for a in X for b in Y])
        - np.mean([np.linalg.norm(a - b) for a in X for b in X])
        - np.mean([np.linalg.norm(a - b) for a in Y for b in Y])
    )
    np.testing.assert_allclose(float(mmd2(_t(X), _t(Y), Distance(), "biased")), ed / 2, rtol=1e-10)


@pytest.mark.parametrize("make,k", [k[1:] for k in KERNELS[:4]], ids=IDS[:4])
@pytest.mark.parametrize("blocks,m,n", [(1, 6, 4), (2, 8, 6), (3, 12, 6), (4, 8, 8)])
def test_mmd2_block_is_mean_of_block_loops(make, k, blocks, m, n):
    rng = _rng(blocks * 100 + m)
    X, Y = rng.normal(size=(m, 2)), rng.normal(size=(n, 2)) + 0.4
    bm, bn = m // blocks, n // blocks
    ref = np.mean([mmd2_loop(X[b * bm : (b + 1) * bm], Y[b * bn : (b + 1) * bn], k, "unbiased") for b in range(blocks)])
    np.testing.assert_allclose(float(mmd2_block(_t(X), _t(Y), make(), blocks)), ref, rtol=1e-10, atol=1e-12)
    if blocks > 1:  # the block estimate is not the full-batch estimate
        assert abs(ref - mmd2_loop(X, Y, k, "unbiased")) > 1e-6


@pytest.mark.parametrize("make,k", [k[1:] for k in KERNELS], ids=IDS)
def test_witness_matches_loop(make, k):
    rng = _rng(4)
    X, Y, T = rng.normal(size=(6, 3)), rng.normal(size=(4, 3)) + 0.5, rng.normal(size=(5, 3)) * 2
    f = witness(_t(X), _t(Y), make())
    got = f(_t(T))
    assert got.shape == (5,)
    ref = np.array([np.mean([k(x, t) for x in X]) - np.mean([k(y, t) for y in Y]) for t in T])
    # the witness is a difference of means: its rounding scales with what is summed, not with |ref|
    magnitude = np.array([np.mean([abs(k(x, t)) for x in X]) + np.mean([abs(k(y, t)) for y in Y]) for t in T])
    assert_close(got, ref, dtype=torch.float64, magnitude=magnitude, terms=len(X) + len(Y))
    # mean witness on X minus mean witness on Y is the biased MMD²; evaluated at the training points
    # themselves, so a distance kernel meets coincident points (Pairwise.dist keeps √ exact there)
    v = float(f(_t(X)).mean() - f(_t(Y)).mean())
    pairs = [abs(k(a, b)) for A in (X, Y) for B in (X, Y) for a in A for b in B]
    assert_close(v, mmd2_loop(X, Y, k, "biased"), dtype=torch.float64, magnitude=np.mean(pairs) * 4,
                 terms=len(X) + len(Y))


def test_witness_rejects_wrong_dimension():
    f = witness(torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64), Gaussian())
    with pytest.raises(ValueError, match="dimension"):
        f(torch.randn(2, 2, dtype=torch.float64))


# ----------------------------------------------------------------------------------------------
# unbiasedness with a non-constant diagonal (SPEC §1: do not repeat the published constant-diagonal bug)


def test_unbiased_estimator_has_zero_mean_under_null_and_constant_diagonal_does_not():
    draws, m, d = 2000, 10, 2
    alphas = RQ_DEFAULT
    rng = _rng(5)
    X = rng.normal(size=(draws, m, d)) + 1.0  # P = Q, away from the origin so ‖x‖² matters
    Y = rng.normal(size=(draws, m, d)) + 1.0
    kernel = Linear() + RationalQuadratic(alphas=alphas)
    with torch.no_grad():
        est = np.array([float(mmd2(_t(X[i]), _t(Y[i]), kernel, "unbiased")) for i in range(draws)])

    # batched NumPy Gram blocks of linear + RQ, from explicit differences / inner products
    def gram(A, B):
        r = ((A[:, :, None, :] - B[:, None, :, :]) ** 2).sum(-1)
        return np.einsum("nid,njd->nij", A, B) + sum((1.0 + r / (2 * a)) ** (-a) for a in alphas)

    kxx, kyy, kxy = gram(X, X), gram(Y, Y), gram(X, Y)
    correct = (
        (kxx.sum((1, 2)) - np.trace(kxx, axis1=1, axis2=2)) / (m * (m - 1))
        + (kyy.sum((1, 2)) - np.trace(kyy, axis1=1, axis2=2)) / (m * (m - 1))
        - 2 * kxy.mean((1, 2))
    )
    np.testing.assert_allclose(est, correct, rtol=1e-9, atol=1e-10)  # the draws are what we think
    # the published MMD-GAN code's mistake: the diagonal taken as the constant K(0) of the RQ part
    # (sum of weights = number of alphas), so the ‖x_i‖² of the dot part stays in the "off-diagonal" sums
    const_diag = float(len(alphas))
    wrong = (
        (kxx.sum((1, 2)) - m * const_diag) / (m * (m - 1))
        + (kyy.sum((1, 2)) - m * const_diag) / (m * (m - 1))
        - 2 * kxy.mean((1, 2))
    )

    def z_score(v):
        return v.mean() / (v.std(ddof=1) / math.sqrt(len(v)))

    # criterion: |mean| within 3 standard errors of 0
    assert abs(z_score(est)) < 3.0, z_score(est)
    assert z_score(wrong) > 3.0, z_score(wrong)  # the same criterion catches the biased estimator


# ----------------------------------------------------------------------------------------------
# variance and covariance of the U-statistic


def test_batched_references_match_loops():
    # the vectorised NumPy helpers used by the Monte-Carlo tests equal the explicit loops
    rng = _rng(6)
    m = 6
    X, Y, Z = (rng.normal(size=(2, m, 2)) + s for s in (0.0, 0.5, 1.0))
    k = np_gaussian(1.0)
    h1, h2 = np_h_batched(X, Y, np_gauss_gram), np_h_batched(X, Z, np_gauss_gram)
    for i in range(2):
        H1, H2 = h_loop(X[i], Y[i], k), h_loop(X[i], Z[i], k)
        np.testing.assert_allclose(h1[i], H1, rtol=1e-12, atol=1e-13)  # sums of 4 kernel values ≤ 1: 16·8·eps
        np.testing.assert_allclose(np_ustat_batched(h1)[i], mmd2_loop(X[i], Y[i], k, "u-statistic"), rtol=1e-12)
        np.testing.assert_allclose(np_ustat_cov_batched(h1, h2)[i], ustat_cov_bruteforce(H1, H2), rtol=1e-10)
        np.testing.assert_allclose(np_ustat_cov_batched(h1, h1)[i], ustat_cov_bruteforce(H1, H1), rtol=1e-10)


def test_mmd2_variance_matches_unbiased_bruteforce():
    # the symmetric unbiased estimator of Var(U) is unique (U-statistic theory), so any correct
    # implementation must agree with the brute-force average over distinct index tuples
    rng = _rng(7)
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(6, 2)) + 0.5
    H = h_loop(X, Y, np_gaussian(1.0))
    np.testing.assert_allclose(float(mmd2_variance(_t(X), _t(Y), Gaussian())), ustat_cov_bruteforce(H, H), rtol=1e-8)


MC_M, MC_D = 20, 2
MC_TRUTH_DRAWS = 12000  # cheap, vectorised: the "true" Var / Cov of MMD²_U
MC_LIB_DRAWS = 2000  # library calls, one per draw (≈1 ms each)


@pytest.fixture(scope="module", params=[0.5, 0.0], ids=["P!=Q(shift0.5)", "P=Q"])
def variance_mc(request):
    shift = request.param
    rng = _rng(8 if shift else 9)
    X = rng.normal(size=(MC_TRUTH_DRAWS, MC_M, MC_D))
    Y = rng.normal(size=(MC_TRUTH_DRAWS, MC_M, MC_D))
    Y[..., 0] += shift
    h = np_h_batched(X, Y, np_gauss_gram)
    u = np_ustat_batched(h)
    kernel = Gaussian(1.0)
    with torch.no_grad():
        lib_u = np.array([float(mmd2(_t(X[i]), _t(Y[i]), kernel, "u-statistic")) for i in range(5)])
        lib_var = np.array([float(mmd2_variance(_t(X[i]), _t(Y[i]), kernel)) for i in range(MC_LIB_DRAWS)])
    np.testing.assert_allclose(lib_u, u[:5], rtol=1e-10)  # the Monte-Carlo statistic is igm's MMD²_U
    ref_var = np_ustat_cov_batched(h, h)[:MC_LIB_DRAWS]
    return dict(empirical=u.var(ddof=1), lib=lib_var.mean(), ref=ref_var.mean(), paired=lib_var.mean() / ref_var.mean())


# Tolerance: 15% relative. The empirical variance from 12000 draws has a relative standard error of
# about 2–2.5% (kurtosis of MMD²_U ≈ 5–6) and the mean of 2000 per-draw estimates about 2–4%, so a
# correct (unbiased) estimator lies well inside 15% while a bias of the order 4/m (20% at m = 20) does not.
def test_reference_variance_estimator_passes_monte_carlo(variance_mc):
    assert variance_mc["ref"] == pytest.approx(variance_mc["empirical"], rel=0.15)


def test_mmd2_variance_matches_monte_carlo(variance_mc):
    assert variance_mc["lib"] == pytest.approx(variance_mc["empirical"], rel=0.15)


def test_mmd2_variance_paired_with_unbiased_reference(variance_mc):
    # same draws for both estimators, so most Monte-Carlo noise cancels: 5% relative
    assert variance_mc["paired"] == pytest.approx(1.0, rel=0.05)


def test_mmd2_variance_right_order_of_magnitude(variance_mc):
    # weak check that holds for the current plug-in estimator too (within a factor 1.5)
    assert 1 / 1.5 < variance_mc["lib"] / variance_mc["empirical"] < 1.5


def test_covariance_diagonal_is_variance_and_symmetric():
    rng = _rng(10)
    X, Y, Z = (_t(rng.normal(size=(8, 3)) + s) for s in (0.0, 0.3, 1.0))
    for kernel in (Gaussian(), Linear() + RationalQuadratic(), Distance()):
        c = mmd2_covariance(X, Y, Z, kernel)
        assert c.shape == (2, 2)
        np.testing.assert_allclose(float(c[0, 0]), float(mmd2_variance(X, Y, kernel)), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(float(c[1, 1]), float(mmd2_variance(X, Z, kernel)), rtol=1e-12, atol=1e-15)
        assert float(c[0, 1]) == float(c[1, 0])
        # and the same covariance with y and z swapped is the transpose
        c2 = mmd2_covariance(X, Z, Y, kernel)
        np.testing.assert_allclose(c2.numpy(), c.flip(0).flip(1).numpy(), rtol=1e-12, atol=1e-15)


@pytest.fixture(scope="module")
def covariance_mc():
    rng = _rng(11)
    n = MC_TRUTH_DRAWS
    X = rng.normal(size=(n, MC_M, MC_D))
    Y = rng.normal(size=(n, MC_M, MC_D))
    Z = rng.normal(size=(n, MC_M, MC_D))
    Y[..., 0] += 0.5
    Z[..., 0] += 1.0
    h1, h2 = np_h_batched(X, Y, np_gauss_gram), np_h_batched(X, Z, np_gauss_gram)
    u1, u2 = np_ustat_batched(h1), np_ustat_batched(h2)
    kernel = Gaussian(1.0)
    draws = MC_LIB_DRAWS // 2
    with torch.no_grad():
        lib = np.array([mmd2_covariance(_t(X[i]), _t(Y[i]), _t(Z[i]), kernel).numpy() for i in range(draws)])
    ref = np_ustat_cov_batched(h1, h2)[:draws]
    return dict(empirical=np.cov(u1, u2)[0, 1], lib=lib[:, 0, 1].mean(), ref=ref.mean(), paired=lib[:, 0, 1].mean() / ref.mean())


# Tolerance: 15% relative. Here Corr(MMD²_U(x,y), MMD²_U(x,z)) ≈ 0.4; the empirical covariance from
# 12000 draws has a relative standard error ≈ 3%, the mean of 1000 per-draw estimates ≈ 4%.
def test_reference_covariance_estimator_passes_monte_carlo(covariance_mc):
    assert covariance_mc["empirical"] > 0
    assert covariance_mc["ref"] == pytest.approx(covariance_mc["empirical"], rel=0.15)


def test_mmd2_covariance_offdiagonal_matches_monte_carlo(covariance_mc):
    assert covariance_mc["lib"] == pytest.approx(covariance_mc["empirical"], rel=0.15)


def test_mmd2_covariance_paired_with_unbiased_reference(covariance_mc):
    assert covariance_mc["paired"] == pytest.approx(1.0, rel=0.05)


def test_variance_input_checks():
    x = torch.randn(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="at least 4"):
        mmd2_variance(x, x + 1, Gaussian())
    with pytest.raises(ValueError, match="equal sample sizes"):
        mmd2_variance(torch.randn(6, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64), Gaussian())


# ----------------------------------------------------------------------------------------------
# gradients


@pytest.mark.parametrize("kernel", [Gaussian(), Distance()], ids=["gaussian", "distance"])
@pytest.mark.parametrize("estimator,m,n", [("unbiased", 4, 3), ("biased", 3, 4), ("u-statistic", 4, 4)])
def test_gradcheck(kernel, estimator, m, n):
    g = torch.Generator().manual_seed(12)
    x = torch.randn(m, 2, generator=g, dtype=torch.float64, requires_grad=True)
    y = (torch.randn(n, 2, generator=g, dtype=torch.float64) + 0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: mmd2(a, b, kernel, estimator), (x, y), eps=1e-6, atol=1e-6)


def test_gradient_finite_with_identical_points():
    x = torch.zeros(4, 2, dtype=torch.float64)
    x[2:] = 1.0
    for kernel in (Distance(), Gaussian(), Linear() + RationalQuadratic()):
        a = x.clone().requires_grad_(True)
        b = x.clone().requires_grad_(True)
        ga, gb = torch.autograd.grad(mmd2(a, b, kernel, "biased"), (a, b))
        assert torch.isfinite(ga).all() and torch.isfinite(gb).all()


# ----------------------------------------------------------------------------------------------
# bad input


def _xy(m=4, n=4, d=3, dtype=torch.float64):
    return torch.randn(m, d, dtype=dtype), torch.randn(n, d, dtype=dtype)


def test_bad_feature_shapes():
    x, _ = _xy()
    with pytest.raises(ValueError, match="shape"):
        mmd2(x, torch.randn(4, 2, dtype=torch.float64), Gaussian())
    with pytest.raises(ValueError, match="shape"):
        mmd2_block(x, torch.randn(4, 2, dtype=torch.float64), Gaussian(), 2)
    with pytest.raises(ValueError, match="shape"):
        witness(x, torch.randn(4, 2, dtype=torch.float64), Gaussian())


def test_bad_dtypes():
    x, y = _xy()
    with pytest.raises(ValueError, match="dtype"):
        mmd2(x, y.float(), Gaussian())
    with pytest.raises(ValueError, match="floating point"):
        mmd2(x.long(), y.long(), Gaussian())


def test_batch_of_one():
    x, y = _xy(1, 4)
    for est in ("unbiased", "u-statistic"):
        with pytest.raises(ValueError, match="at least 2"):
            mmd2(x, y, Gaussian(), est)
        with pytest.raises(ValueError, match="at least 2"):
            mmd2(y, x, Gaussian(), est)
    assert torch.isfinite(mmd2(x, y, Gaussian(), "biased"))  # the V-statistic is defined for m = 1


def test_u_statistic_needs_equal_sizes():
    x, y = _xy(5, 4)
    with pytest.raises(ValueError, match="equal"):
        mmd2(x, y, Gaussian(), "u-statistic")


def test_unknown_estimator_lists_valid():
    x, y = _xy()
    with pytest.raises(ValueError) as e:
        mmd2(x, y, Gaussian(), "unbaised")
    msg = str(e.value)
    assert "unbaised" in msg
    for name in ("unbiased", "u-statistic", "biased"):
        assert name in msg


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input(bad):
    x, y = _xy()
    y[2, 1] = bad
    with pytest.raises(ValueError, match="non-finite"):
        mmd2(x, y, Gaussian(), check_finite=True)
    with pytest.raises(ValueError, match="non-finite"):
        mmd2(y, x, Gaussian(), check_finite=True)
    with pytest.raises(ValueError, match="non-finite"):
        mmd2_block(x, y, Gaussian(), 2, check_finite=True)
    mmd2(x, y, Gaussian(), check_finite=False)  # no error: the check is opt-in
    mmd2(x, y, Gaussian())
    mmd2_block(x, y, Gaussian(), 2)


def test_blocks_must_divide_batch():
    x, y = _xy(6, 6)
    with pytest.raises(ValueError, match="divisible"):
        mmd2_block(x, y, Gaussian(), 4)
    x, y = _xy(6, 5)
    with pytest.raises(ValueError, match="divisible"):
        mmd2_block(x, y, Gaussian(), 3)
    with pytest.raises(ValueError, match="at least 2"):
        mmd2_block(*_xy(6, 6), Gaussian(), 6)  # blocks of one sample
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="blocks"):
            mmd2_block(*_xy(6, 6), Gaussian(), bad)
