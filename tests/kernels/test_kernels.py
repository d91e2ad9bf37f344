"""Kernels against independent NumPy references written from SPEC §1.

Every reference below is an explicit Python loop over pairs of rows calling a scalar function
``k(a, b)`` of two 1-D NumPy vectors; nothing from ``igm`` is used to compute a reference value.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import igm.kernels as K
from tolerance import assert_close

from igm.kernels import (
    Distance,
    Gaussian,
    Linear,
    Polynomial,
    RationalQuadratic,
    RBFMixture,
    Scaled,
    Sum,
)

RQ_DEFAULT = (0.2, 0.5, 1.0, 2.0, 5.0)
RBF_DEFAULT = (1.0, 2.0, 4.0, 8.0, 16.0)


# ----------------------------------------------------------------------------------------------
# scalar NumPy references, straight from the SPEC §1 table


def np_gaussian(sigma):
    return lambda a, b: math.exp(-float(np.sum((a - b) ** 2)) / (2.0 * sigma**2))


def np_rbf(sigmas):
    return lambda a, b: sum(math.exp(-float(np.sum((a - b) ** 2)) / (2.0 * s**2)) for s in sigmas)


def np_rq(alphas):
    return lambda a, b: sum((1.0 + float(np.sum((a - b) ** 2)) / (2.0 * al)) ** (-al) for al in alphas)


def np_linear():
    return lambda a, b: float(np.dot(a, b))


def np_distance():
    return lambda a, b: 0.5 * (
        math.sqrt(float(np.dot(a, a))) + math.sqrt(float(np.dot(b, b))) - math.sqrt(float(np.sum((a - b) ** 2)))
    )


def np_poly(degree, gamma, coef0):
    def k(a, b):
        g = 1.0 / a.shape[0] if gamma is None else gamma
        return (g * float(np.dot(a, b)) + coef0) ** degree

    return k


def np_sum(*fs):
    return lambda a, b: sum(f(a, b) for f in fs)


def np_scaled(w, f):
    return lambda a, b: w * f(a, b)


def gram_loop(f, a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    out = np.empty((a.shape[0], b.shape[0]))
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            out[i, j] = f(a[i], b[j])
    return out


# (id, igm kernel factory, NumPy reference)
KERNELS = [
    ("gaussian-1", lambda: Gaussian(), np_gaussian(1.0)),
    ("gaussian-1.7", lambda: Gaussian(sigma=1.7), np_gaussian(1.7)),
    ("rbf-default", lambda: RBFMixture(), np_rbf(RBF_DEFAULT)),
    ("rbf-custom", lambda: RBFMixture(sigmas=(0.5, 3.0)), np_rbf((0.5, 3.0))),
    ("rq-default", lambda: RationalQuadratic(), np_rq(RQ_DEFAULT)),
    ("rq-code", lambda: RationalQuadratic(alphas=(0.1, 1.0, 10.0)), np_rq((0.1, 1.0, 10.0))),
    ("linear", lambda: Linear(), np_linear()),
    ("distance", lambda: Distance(), np_distance()),
    ("poly-kid", lambda: Polynomial(), np_poly(3, None, 1.0)),
    ("poly-explicit", lambda: Polynomial(degree=2, gamma=0.7, coef0=0.3), np_poly(2, 0.7, 0.3)),
    ("sum-linear-rq", lambda: Linear() + RationalQuadratic(), np_sum(np_linear(), np_rq(RQ_DEFAULT))),
    (
        "sum-3",
        lambda: Gaussian(2.0) + Distance() + Polynomial(degree=2),
        np_sum(np_gaussian(2.0), np_distance(), np_poly(2, None, 1.0)),
    ),
    ("scaled-rq", lambda: 2.0 * RationalQuadratic(), np_scaled(2.0, np_rq(RQ_DEFAULT))),
    ("scaled-right-linear", lambda: Linear() * 0.5, np_scaled(0.5, np_linear())),
    (
        "scaled-sum",
        lambda: 3.0 * Gaussian() + 0.25 * Linear(),
        np_sum(np_scaled(3.0, np_gaussian(1.0)), np_scaled(0.25, np_linear())),
    ),
]
IDS = [k[0] for k in KERNELS]
RADIAL = [
    ("gaussian", lambda: Gaussian(), 1.0),
    ("gaussian-0.3", lambda: Gaussian(0.3), 1.0),
    ("rbf", lambda: RBFMixture(), 5.0),
    ("rq", lambda: RationalQuadratic(), 5.0),
    ("rq-code", lambda: RationalQuadratic(alphas=(0.1, 1.0, 10.0)), 3.0),
]


def _data(seed, *shape, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=g, dtype=torch.float64)


# ----------------------------------------------------------------------------------------------
# values


@pytest.mark.parametrize("make,ref", [k[1:] for k in KERNELS], ids=IDS)
def test_gram_matches_loop(make, ref):
    a, b = _data(0, 7, 3), _data(1, 5, 3)
    kern = make()
    got = kern(a, b)
    assert got.shape == (7, 5) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), gram_loop(ref, a.numpy(), b.numpy()), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make,ref", [k[1:] for k in KERNELS], ids=IDS)
def test_self_gram_matches_loop(make, ref):
    a = _data(2, 7, 3)
    got = make()(a)
    assert got.shape == (7, 7)
    np.testing.assert_allclose(got.numpy(), gram_loop(ref, a.numpy(), a.numpy()), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make,ref", [k[1:] for k in KERNELS], ids=IDS)
def test_diag_is_true_diagonal(make, ref):
    a = _data(3, 7, 3, scale=2.0)
    an = a.numpy()
    expected = np.array([ref(an[i], an[i]) for i in range(an.shape[0])])
    got = make().diag(a)
    assert got.shape == (7,)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [Linear, Distance, Polynomial, lambda: Linear() + RationalQuadratic()])
def test_non_radial_diag_is_not_constant(make):
    # guards against a kernel reporting a constant diagonal (the published MMD-GAN bug)
    a = _data(4, 6, 3)
    d = make().diag(a)
    assert float(d.max() - d.min()) > 1e-3


@pytest.mark.parametrize("make,g0", [r[1:] for r in RADIAL], ids=[r[0] for r in RADIAL])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_radial_self_gram_has_exact_g0_diagonal(make, g0, dtype):
    kern = make()
    for scale in (1.0, 1e3):
        a = (_data(5, 9, 4) * scale).to(dtype)
        gram = kern(a)
        assert gram.dtype == dtype
        assert torch.equal(torch.diagonal(gram), torch.full((9,), g0, dtype=dtype)), torch.diagonal(gram)
        np.testing.assert_allclose(gram.numpy(), gram.T.numpy(), rtol=1e-4, atol=1e-6)  # exact symmetry is not promised by a BLAS matmul
        assert torch.all(gram <= g0)


def test_large_norm_float32_input_really_cancels():
    # the input used above is a meaningful test: the naive expansion ‖a‖² + ‖a‖² − 2aᵀa gives
    # nonzero "distances" of a point to itself in float32, which exp(−r/2) would turn into < 1
    a = (_data(5, 9, 4) * 1e3).to(torch.float32)
    sq = (a * a).sum(1)
    naive = sq[:, None] + sq[None, :] - 2.0 * a @ a.T
    assert torch.any(torch.diagonal(naive) != 0)


def test_symmetric_distances_are_clamped_nonnegative():
    # close-but-distinct rows with large norms: the cross-distance must never go negative
    base = (_data(6, 1, 4) * 1e3).to(torch.float32)
    a = torch.cat([base, base, base + 1e-4], 0)
    for kern in (Gaussian(), RationalQuadratic(), Distance()):
        g = kern(a)
        assert torch.isfinite(g).all()
    assert torch.all(K.Pairwise(a).sqdist >= 0)
    assert torch.all(K.Pairwise(a, a.clone()).sqdist >= 0)


def test_far_from_origin_float32_gram_stays_positive_semidefinite():
    # a critic whose features drift far from the origin (GRAM on digits did): spread 1 at offset
    # 3e3. Without the common shift, float32 cancellation in ‖a‖² + ‖b‖² − 2a·b is of order
    # eps·‖a‖² ≈ 1, so the Gaussian Gram matrix has eigenvalues far below zero and the Cholesky of
    # K + 1e-3·I fails. Reference: float64 distances from explicit differences.
    g = torch.Generator().manual_seed(3)
    a64 = torch.randn(64, 16, generator=g, dtype=torch.float64) + 3e3
    b64 = torch.randn(48, 16, generator=g, dtype=torch.float64) + 3e3
    sigma = 4.0
    ref = torch.exp(-((a64[:, None] - a64[None]) ** 2).sum(-1) / (2 * sigma**2))
    ref_ab = torch.exp(-((a64[:, None] - b64[None]) ** 2).sum(-1) / (2 * sigma**2))
    a, b = a64.float(), b64.float()
    naive_sq = (a * a).sum(1)
    naive = torch.exp(-(naive_sq[:, None] + naive_sq[None] - 2 * a @ a.T).clamp_min(0) / (2 * sigma**2))
    assert (naive.double() - ref).abs().max() > 0.1  # the naive expansion really is wrong here
    gram = Gaussian(sigma)(a)
    np.testing.assert_allclose(gram.double().numpy(), ref.numpy(), atol=1e-4)
    np.testing.assert_allclose(Gaussian(sigma)(a, b).double().numpy(), ref_ab.numpy(), atol=1e-4)
    torch.linalg.cholesky(gram + 1e-3 * torch.eye(64))  # raises if not positive definite


def _near_pairs(dtype):
    """Rows far from the origin (offset 10, spread 3) and partners at relative distances 0 (an
    equal copy, not the same tensor), 1e-7, 1e-4, 1e-2 and 1 (independent rows)."""
    g = torch.Generator().manual_seed(11)
    a = torch.randn(40, 16, generator=g, dtype=torch.float64) * 3 + 10
    u = torch.randn(40, 16, generator=g, dtype=torch.float64)
    rel = torch.tensor([0.0, 1e-7, 1e-4, 1e-2, 1.0], dtype=torch.float64).repeat_interleave(8)[:, None]
    b = a + rel * a.norm(dim=1, keepdim=True) * u / u.norm(dim=1, keepdim=True)
    b[32:] = torch.randn(8, 16, generator=g, dtype=torch.float64) * 3 + 10
    return a.to(dtype), b.to(dtype)


def _exact_dist(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """‖a_i − b_j‖ of the given (rounded) values from their differences: math.dist, within an ulp or
    so of the exact value in float64, and the float32 inputs' differences are exact in float64."""
    A, B = a.double().tolist(), b.double().tolist()
    return np.array([[math.dist(x, y) for y in B] for x in A])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_distances_are_accurate_at_coincident_and_near_points(dtype):
    # The expansion ‖a‖² + ‖b‖² − 2a·b leaves O(eps·‖a‖²) at coincident points, and √ turns that
    # into O(√eps·‖a‖): ~3e-4·‖a‖ in float32. Pairwise.dist must be accurate to a few eps relative
    # at every pair, and exactly 0 at equal rows.
    a, b = _near_pairs(dtype)
    ref = _exact_dist(a, b)
    got = K.Pairwise(a, b).dist
    assert torch.all(got.diagonal()[:8] == 0), got.diagonal()[:8]
    assert_close(got, ref, dtype=dtype, terms=a.shape[1])
    # the same through the symmetric path (a against itself) and the energy kernel's Gram matrix
    assert_close(K.Pairwise(a).dist, _exact_dist(a, a), dtype=dtype, terms=a.shape[1])
    norms = np.array([math.hypot(*row) for row in a.double().tolist()]), np.array([math.hypot(*row) for row in b.double().tolist()])
    energy = 0.5 * (norms[0][:, None] + norms[1][None, :] - ref)
    magnitude = 0.5 * (norms[0][:, None] + norms[1][None, :] + ref)  # ½(‖a‖ + ‖b‖) − ½‖a − b‖ cancels
    assert_close(Distance()(a, b), energy, dtype=dtype, magnitude=magnitude, terms=a.shape[1])
    assert_close(Distance()(a, b).diagonal()[:8], norms[0][:8], dtype=dtype, terms=a.shape[1])


def test_near_points_really_break_the_expansion():
    # the test above is meaningful: √ of the expanded squared distance is off by ≫ eps at those pairs
    a, b = _near_pairs(torch.float32)
    naive = torch.sqrt(K.Pairwise(a, b).sqdist).double().numpy()
    ref = _exact_dist(a, b)
    assert np.abs(naive - ref)[:16].max() > 1e3 * torch.finfo(torch.float32).eps * 40


def test_distance_double_backward_through_near_pairs():
    # the recomputed near pairs stay twice differentiable (gradient penalties on an energy kernel)
    a, b = _near_pairs(torch.float64)
    keep = torch.arange(16, 40)  # relative distances 1e-4, 1e-2 and independent rows (finite differences need d ≫ 1e-6)
    a, b = a[keep][:, :4].clone().requires_grad_(True), b[keep][:, :4].clone()
    pw = K.Pairwise(a, b)
    near = pw.sqdist <= K.NEAR * (pw._centred[2][:, None] + pw._centred[3][None, :])
    assert 0 < int(near.sum()) < near.numel()  # both paths are exercised
    assert torch.autograd.gradgradcheck(lambda x: K.Pairwise(x, b).dist, (a,))


# ----------------------------------------------------------------------------------------------
# gradients


@pytest.mark.parametrize("make", [k[1] for k in KERNELS], ids=IDS)
def test_gradients_finite_with_identical_and_zero_rows(make):
    a = _data(7, 6, 3)
    a[3] = a[1]  # identical rows
    a[5] = 0.0  # a zero row: ‖a‖ = 0 for the distance kernel
    kern = make()
    for b in (None, "same", "clone"):
        x = a.clone().requires_grad_(True)
        other = None if b is None else (x if b == "same" else a.clone())
        (g,) = torch.autograd.grad(kern(x, other).sum(), x)
        assert torch.isfinite(g).all(), (b, g)
    for dtype in (torch.float32,):
        x = (a * 1e3).to(dtype).requires_grad_(True)
        (g,) = torch.autograd.grad(kern(x).sum(), x)
        assert torch.isfinite(g).all()


def test_distance_gradient_on_diagonal_and_identical_rows_is_the_zero_subgradient():
    # d/da_i Σ_jk ½(‖a_j‖ + ‖a_k‖ − ‖a_j − a_k‖) = n a_i/‖a_i‖ − Σ_{k: a_k ≠ a_i} (a_i − a_k)/‖a_i − a_k‖
    # (the |·| at 0 contributes its zero subgradient)
    a = _data(8, 5, 3)
    a[4] = a[0]
    x = a.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(Distance()(x).sum(), x)
    an = a.numpy()
    n = an.shape[0]
    ref = np.zeros_like(an)
    for i in range(n):
        ref[i] = n * an[i] / np.linalg.norm(an[i])
        for k in range(n):
            diff = an[i] - an[k]
            if np.linalg.norm(diff) > 0:
                ref[i] -= diff / np.linalg.norm(diff)
    np.testing.assert_allclose(g.numpy(), ref, rtol=1e-8, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# g(0), g'(0), jacobian_weight


def test_gaussian_g0_gprime0():
    for s in (0.5, 1.0, 2.0, 3.3):
        k = Gaussian(s)
        assert k.g0 == pytest.approx(1.0, rel=1e-14)
        assert k.gprime0 == pytest.approx(1.0 / (2 * s * s), rel=1e-14)
        assert k.jacobian_weight == pytest.approx(1.0 / (s * s), rel=1e-14)


def test_rbf_mixture_g0_gprime0():
    k = RBFMixture(sigmas=(1.0, 2.0, 4.0))
    assert k.g0 == pytest.approx(3.0)
    assert k.gprime0 == pytest.approx(sum(1.0 / (2 * s * s) for s in (1.0, 2.0, 4.0)), rel=1e-14)


@pytest.mark.parametrize("alphas", [RQ_DEFAULT, (0.1, 1.0, 10.0), (3.0,)])
def test_rq_g0_gprime0(alphas):
    k = RationalQuadratic(alphas=alphas)
    assert k.g0 == pytest.approx(len(alphas), rel=1e-14)
    assert k.gprime0 == pytest.approx(len(alphas) / 2.0, rel=1e-14)
    assert k.jacobian_weight == pytest.approx(float(len(alphas)), rel=1e-14)


def test_jacobian_weight_constants():
    assert Linear().jacobian_weight == 1.0
    assert Polynomial().jacobian_weight is None
    assert Polynomial(degree=1).jacobian_weight is None
    assert Distance().jacobian_weight is None
    assert (Gaussian(2.0) + Linear()).jacobian_weight == pytest.approx(1.0 / 4.0 + 1.0)
    assert (Linear() + RationalQuadratic()).jacobian_weight == pytest.approx(1.0 + 5.0)
    assert (2.0 * Gaussian()).jacobian_weight == pytest.approx(2.0)
    assert (Gaussian() + Distance()).jacobian_weight is None
    assert (2.0 * Polynomial()).jacobian_weight is None


JW_KERNELS = [
    ("gaussian-1.5", lambda: Gaussian(1.5), np_gaussian(1.5)),
    ("rbf", lambda: RBFMixture(sigmas=(1.0, 2.0)), np_rbf((1.0, 2.0))),
    ("rq", lambda: RationalQuadratic(), np_rq(RQ_DEFAULT)),
    ("linear", lambda: Linear(), np_linear()),
    ("sum", lambda: Gaussian(0.8) + Linear(), np_sum(np_gaussian(0.8), np_linear())),
    ("scaled", lambda: 2.5 * RationalQuadratic(alphas=(0.5, 2.0)), np_scaled(2.5, np_rq((0.5, 2.0)))),
]


@pytest.mark.parametrize("make,ref", [k[1:] for k in JW_KERNELS], ids=[k[0] for k in JW_KERNELS])
def test_jacobian_weight_against_finite_differences(make, ref):
    # k(x, y) = K(Wx, Wy), x ∈ R^D, φ = W so ‖∇φ‖_F² = ‖W‖_F²; Σ_i ∂_i∂_{i+D} k(x, x) by central
    # differences on (x, y) ↦ K(Wx, Wy) in float64
    rng = np.random.default_rng(11)
    D, d = 4, 3
    W = rng.normal(size=(d, D))
    x = rng.normal(size=D)
    f = lambda u, v: ref(W @ u, W @ v)  # noqa: E731
    h = 1e-4
    total = 0.0
    for i in range(D):
        e = np.zeros(D)
        e[i] = h
        total += (f(x + e, x + e) - f(x + e, x - e) - f(x - e, x + e) + f(x - e, x - e)) / (4 * h * h)
    c = make().jacobian_weight
    assert c is not None
    assert c * np.sum(W**2) == pytest.approx(total, rel=1e-6)


# ----------------------------------------------------------------------------------------------
# analytic derivatives


DERIV_KERNELS = [
    ("gaussian", lambda: Gaussian(1.3), np_gaussian(1.3)),
    ("rbf", lambda: RBFMixture(sigmas=(0.7, 2.0)), np_rbf((0.7, 2.0))),
    ("rq", lambda: RationalQuadratic(), np_rq(RQ_DEFAULT)),
    ("linear", lambda: Linear(), np_linear()),
    ("poly-kid", lambda: Polynomial(), np_poly(3, None, 1.0)),
    ("poly-explicit", lambda: Polynomial(degree=2, gamma=0.6, coef0=0.4), np_poly(2, 0.6, 0.4)),
    ("poly-deg1", lambda: Polynomial(degree=1, gamma=0.9, coef0=0.2), np_poly(1, 0.9, 0.2)),
    ("sum", lambda: Gaussian() + Linear() + Polynomial(degree=2), np_sum(np_gaussian(1.0), np_linear(), np_poly(2, None, 1.0))),
    ("scaled", lambda: 1.5 * RationalQuadratic(alphas=(0.5,)), np_scaled(1.5, np_rq((0.5,)))),
]


@pytest.mark.parametrize("make,ref", [k[1:] for k in DERIV_KERNELS], ids=[k[0] for k in DERIV_KERNELS])
def test_derivatives_against_finite_differences(make, ref):
    a, b = _data(20, 4, 3), _data(21, 3, 3)
    an, bn = a.numpy(), b.numpy()
    n, m, d = 4, 3, 3
    k0, dk, d2k = make().derivatives(a, b)
    assert k0.shape == (n, m) and dk.shape == (n, m, d) and d2k.shape == (n, m, d, d)
    np.testing.assert_allclose(k0.numpy(), gram_loop(ref, an, bn), rtol=1e-10, atol=1e-12)

    h1, h2 = 1e-5, 1e-4
    ref_dk = np.empty((n, m, d))
    ref_d2k = np.empty((n, m, d, d))
    for i in range(n):
        for j in range(m):
            for p in range(d):
                ep = np.zeros(d)
                ep[p] = 1.0
                ref_dk[i, j, p] = (ref(an[i] + h1 * ep, bn[j]) - ref(an[i] - h1 * ep, bn[j])) / (2 * h1)
                for q in range(d):
                    eq = np.zeros(d)
                    eq[q] = 1.0
                    ref_d2k[i, j, p, q] = (
                        ref(an[i] + h2 * ep, bn[j] + h2 * eq)
                        - ref(an[i] + h2 * ep, bn[j] - h2 * eq)
                        - ref(an[i] - h2 * ep, bn[j] + h2 * eq)
                        + ref(an[i] - h2 * ep, bn[j] - h2 * eq)
                    ) / (4 * h2 * h2)
    np.testing.assert_allclose(dk.numpy(), ref_dk, rtol=1e-6, atol=1e-8)
    # the 4-point difference's rounding is ~eps·max|k|/h² ≈ 6e-7 (h = 1e-4): atol 16 times that
    np.testing.assert_allclose(d2k.numpy(), ref_d2k, rtol=1e-5, atol=1e-5)
    # the mixed derivative is not symmetric in (p, q) in general; make sure the test sees that
    if isinstance(make(), Polynomial):
        p = make()
        if p.degree > 1:
            assert not np.allclose(ref_d2k, ref_d2k.transpose(0, 1, 3, 2), atol=1e-4)


@pytest.mark.parametrize("make", [k[1] for k in DERIV_KERNELS], ids=[k[0] for k in DERIV_KERNELS])
def test_projected_derivatives_are_the_contracted_derivatives(make):
    """Σ_p ∂K/∂a_p la[i,p,s] and Σ_pq la[i,p,s] ∂²K/∂a_p∂b_q lb[j,q,t] by a plain loop over the
    (finite-difference-checked) derivatives; radial kernels compute them without the d×d array."""
    a, b = _data(22, 4, 3), _data(23, 5, 3)
    la, lb = _data(24, 4 * 3 * 2, 1).reshape(4, 3, 2), _data(25, 5 * 3 * 3, 1).reshape(5, 3, 3)
    kern = make()
    k0, dk, d2k = kern.derivatives(a, b)
    want_dk = np.zeros((4, 5, 2))
    want_d2k = np.zeros((4, 5, 2, 3))
    for i in range(4):
        for j in range(5):
            want_dk[i, j] = la[i].numpy().T @ dk[i, j].numpy()
            want_d2k[i, j] = la[i].numpy().T @ d2k[i, j].numpy() @ lb[j].numpy()
    got0, got_dk, got_d2k = kern.projected_derivatives(a, b, la, lb)
    # float64 sums of a few dozen O(1) products
    np.testing.assert_allclose(got0.numpy(), k0.numpy(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(got_dk.numpy(), want_dk, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got_d2k.numpy(), want_d2k, rtol=0, atol=1e-12)
    assert kern.projected_derivatives(a, b, la)[2] is None


def test_distance_has_no_analytic_derivatives():
    with pytest.raises(NotImplementedError):
        Distance().derivatives(_data(0, 2, 3), _data(1, 2, 3))


# ----------------------------------------------------------------------------------------------
# algebra


def test_algebra_types():
    g, lin = Gaussian(), Linear()
    s = g + lin
    assert isinstance(s, Sum) and s.parts == (g, lin)
    assert isinstance(2.0 * g, Scaled) and (2.0 * g).weight == 2.0
    assert isinstance(g * 3, Scaled)
    # sums flatten and the builtin sum() works
    s3 = (g + lin) + Distance()
    assert isinstance(s3, Sum) and len(s3.parts) == 3
    assert sum([g, lin]) == s
    with pytest.raises(ValueError):
        0.0 * g  # a zero or negative weight is not a positive-definite kernel
    with pytest.raises(ValueError):
        -1.0 * g
    with pytest.raises(ValueError):
        Sum(())


# ----------------------------------------------------------------------------------------------
# registry


def test_registry_get_and_names():
    k = K.get("gaussian", sigma=2.0)
    assert isinstance(k, Gaussian) and k.sigma == 2.0
    assert K.names() == sorted(["gaussian", "rbf-mixture", "rq-mixture", "linear", "distance", "polynomial"])
    assert isinstance(K.get("rq-mixture", alphas=(0.1, 1.0, 10.0)), RationalQuadratic)
    assert K.get("polynomial", degree=2).degree == 2
    a, b = _data(0, 3, 2), _data(1, 4, 2)
    np.testing.assert_allclose(K.get("gaussian", sigma=2.0)(a, b).numpy(), gram_loop(np_gaussian(2.0), a.numpy(), b.numpy()), rtol=1e-12)


def test_build_from_specs():
    assert K.build("linear") == Linear()
    g = Gaussian(0.5)
    assert K.build(g) is g
    assert K.build({"name": "gaussian", "sigma": 0.5}) == Gaussian(0.5)
    w = K.build({"name": "linear", "weight": 2.0})
    assert isinstance(w, Scaled) and w.weight == 2.0 and w.kernel == Linear()
    s = K.build(["linear", {"name": "rq-mixture", "alphas": [0.1, 1.0, 10.0]}])
    assert isinstance(s, Sum) and len(s.parts) == 2
    a, b = _data(3, 5, 3), _data(4, 6, 3)
    ref = np_sum(np_linear(), np_rq((0.1, 1.0, 10.0)))
    np.testing.assert_allclose(s(a, b).numpy(), gram_loop(ref, a.numpy(), b.numpy()), rtol=1e-10)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as e:
        K.get("gausian")
    msg = str(e.value)
    assert "gausian" in msg
    for name in K.names():
        assert name in msg
    with pytest.raises(ValueError, match="gaussian"):
        K.build("nope")
    with pytest.raises(ValueError, match="name"):
        K.build({"sigma": 1.0})
    with pytest.raises(ValueError):
        K.build(3.0)


def test_unknown_parameter_is_named():
    with pytest.raises(ValueError, match="bandwidth"):
        K.get("gaussian", bandwidth=1.0)
    with pytest.raises(ValueError, match="sigmas"):
        K.get("gaussian", sigmas=(1.0, 2.0))  # the mixture's field is not a Gaussian parameter
    with pytest.raises(ValueError, match="alpha"):
        K.build({"name": "rq-mixture", "alpha": 1.0})


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Gaussian(0.0),
        lambda: Gaussian(-1.0),
        lambda: Gaussian(float("nan")),
        lambda: Gaussian(float("inf")),
        lambda: RBFMixture(sigmas=()),
        lambda: RBFMixture(sigmas=(1.0, 0.0)),
        lambda: RationalQuadratic(alphas=()),
        lambda: RationalQuadratic(alphas=(-0.5,)),
        lambda: Polynomial(degree=0),
        lambda: Polynomial(degree=-2),
        lambda: Polynomial(degree=2.5),
        lambda: Polynomial(gamma=0.0),
        lambda: Polynomial(gamma=-1.0),
        lambda: K.get("gaussian", sigma=0.0),
        lambda: K.build({"name": "rbf-mixture", "sigmas": []}),
        lambda: K.build({"name": "polynomial", "degree": 0}),
    ],
)
def test_invalid_values_raise(bad):
    with pytest.raises(ValueError):
        bad()


# ----------------------------------------------------------------------------------------------
# input checks


@pytest.mark.parametrize("make", [k[1] for k in KERNELS[::3]], ids=IDS[::3])
def test_shape_and_dtype_mismatch(make):
    kern = make()
    a = _data(0, 4, 3)
    with pytest.raises(ValueError, match="dimension"):
        kern(a, _data(1, 4, 2))
    with pytest.raises(ValueError, match="dtype"):
        kern(a, a.to(torch.float32))
    with pytest.raises(ValueError, match="2-D"):
        kern(a[0])
    with pytest.raises(ValueError, match="2-D"):
        kern(a, a[None])


def test_float32_in_float32_out():
    a = _data(0, 5, 3).float()
    for _, make, ref in KERNELS:
        g = make()(a)
        assert g.dtype == torch.float32
        np.testing.assert_allclose(g.double().numpy(), gram_loop(ref, a.double().numpy(), a.double().numpy()), rtol=1e-4, atol=1e-4)
