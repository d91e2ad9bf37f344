"""Gradient-Constrained MMD: the estimator against independent computations, and the objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from igm.constrained.gcmmd import gcmmd2, gcmmd2_critic, gcmmd_witness, gcmmd_witness_critic, pivoted_cholesky
from igm.kernels import Distance, Gaussian, Linear, Polynomial
from igm.objectives.base import get as get_objective
from igm.objectives.gcmmd import GradientConstrainedMMD
from tolerance import assert_close

DT = torch.float64
SQ2 = np.sqrt(2.0)


def rand(*shape: int, seed: int = 0, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=DT) + shift


def eye_jac(m: int, d: int) -> torch.Tensor:
    return torch.eye(d, dtype=DT).expand(m, d, d).clone()


def mlp(d_in: int, d_out: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d_in, 6), torch.nn.Tanh(), torch.nn.Linear(6, d_out)).to(DT)


def closed_form(feat_x, feat_y, feat_z, jac_z, lam):
    """sup over f = wᵀϕ: Δᵀ(A + λI)⁻¹Δ with A = mean_a [ϕ(z_a)ϕ(z_a)ᵀ + Jϕ(z_a)Jϕ(z_a)ᵀ] (numpy)."""
    delta = feat_x.mean(0) - feat_y.mean(0)
    a = np.mean([np.outer(p, p) + j @ j.T for p, j in zip(feat_z, jac_z)], 0)
    return float(delta @ np.linalg.solve(a + lam * np.eye(len(delta)), delta))


def poly_features(x):
    x1, x2 = x[:, 0], x[:, 1]
    return np.stack([x1**2, x2**2, SQ2 * x1 * x2, SQ2 * x1, SQ2 * x2, np.ones_like(x1)], 1)


def poly_feature_jacobian(z):
    x1, x2 = z
    return np.array([[2 * x1, 0], [0, 2 * x2], [SQ2 * x2, SQ2 * x1], [SQ2, 0], [0, SQ2], [0, 0]])


# -- finite feature maps: closed form -------------------------------------------------------------


@pytest.mark.parametrize("lam", [0.05, 1.0])
def test_linear_kernel_closed_form(lam):
    x, y, z = rand(7, 3, seed=1, shift=0.5), rand(5, 3, seed=2), rand(6, 3, seed=3)
    want = closed_form(x.numpy(), y.numpy(), z.numpy(), [np.eye(3)] * 6, lam)
    got = gcmmd2(x, y, z, eye_jac(6, 3), Linear(), lam)
    assert float(got) == pytest.approx(want, rel=1e-8)


@pytest.mark.parametrize("lam", [0.05, 0.7])
def test_polynomial_kernel_closed_form(lam):
    x, y, z = rand(8, 2, seed=4, shift=0.3), rand(6, 2, seed=5), rand(9, 2, seed=6)
    want = closed_form(
        poly_features(x.numpy()), poly_features(y.numpy()), poly_features(z.numpy()),
        [poly_feature_jacobian(p) for p in z.numpy()], lam,
    )
    kernel = Polynomial(degree=2, gamma=1.0, coef0=1.0)
    for method in ("exact", "cholesky"):
        got = gcmmd2(x, y, z, eye_jac(9, 2), kernel, lam, method=method)
        assert float(got) == pytest.approx(want, rel=1e-8)


@pytest.mark.parametrize("d_in,d_out", [(3, 2), (2, 3)])  # D > d (Cholesky of J Jᵀ) and D < d (L = J)
@pytest.mark.parametrize("separate_mu", [False, True])
def test_nonlinear_critic_linear_kernel_closed_form(d_in, d_out, separate_mu):
    critic = mlp(d_in, d_out, seed=7)
    real, fake = rand(9, d_in, seed=8, shift=0.4), rand(7, d_in, seed=9)
    mu = rand(5, d_in, seed=10) if separate_mu else real
    with torch.no_grad():
        fx, fy, fz = critic(real).numpy(), critic(fake).numpy(), critic(mu).numpy()
    jacs = [torch.autograd.functional.jacobian(critic, p).numpy() for p in mu]
    want = closed_form(fx, fy, fz, jacs, 0.3)
    got, stats = gcmmd2_critic(critic, real, fake, Linear(), 0.3, measure_points=mu if separate_mu else None)
    assert float(got.detach()) == pytest.approx(want, rel=1e-8)
    assert float(stats["gcmmd2"]) == float(got)
    assert float(stats["mmd2"]) == pytest.approx(float(((fx.mean(0) - fy.mean(0)) ** 2).sum()), rel=1e-10)


# -- Gaussian kernel: the unreduced M(D+1) system built from raw-input autograd ---------------------


def gauss(sigma):
    """Row-wise Gaussian kernel on raw inputs: broadcasts over leading dimensions."""
    return lambda a, b: torch.exp(-((a - b) ** 2).sum(-1) / (2 * sigma**2))


def pair_derivatives(k, a, b):
    """k(a_i, b_j), ∂k/∂x_p and ∂²k/∂x_p∂y_q on every pair, by autograd on raw inputs."""
    xa = a[:, None, :].expand(len(a), len(b), a.shape[1]).clone().requires_grad_(True)
    yb = b[None, :, :].expand(len(a), len(b), b.shape[1]).clone().requires_grad_(True)
    kv = k(xa, yb)
    (d1,) = torch.autograd.grad(kv.sum(), xa, create_graph=True)
    d2 = [torch.autograd.grad(d1[..., p].sum(), yb, retain_graph=True)[0] for p in range(a.shape[1])]
    return kv.detach(), d1.detach(), torch.stack(d2, 2)


def witness_and_gradient(k, x, y, t):
    """η(t_a) = mean_i k(x_i, t_a) − mean_j k(y_j, t_a) and ∇η(t_a)."""
    t = t.clone().requires_grad_(True)
    eta = k(x[:, None, :], t[None]).mean(0) - k(y[:, None, :], t[None]).mean(0)
    (grad,) = torch.autograd.grad(eta.sum(), t)
    return eta.detach(), grad


def biased_mmd2(k, x, y):
    kxx, kyy, kxy = (k(a[:, None, :], b[None]) for a, b in ((x, x), (y, y), (x, y)))
    return float(kxx.mean() + kyy.mean() - 2 * kxy.mean())


def unreduced(k, x, y, z, lam):
    """GCMMD² from the elements k(z_a,·), ∂_i k(z_a,·) on raw inputs: the M(D+1) system (numpy)."""
    mm, dd = z.shape
    kzz, d1, d2 = pair_derivatives(k, z, z)
    gram = torch.zeros(mm * (dd + 1), mm * (dd + 1), dtype=DT)
    gram[:mm, :mm] = kzz
    gram[mm:, :mm] = d1.permute(0, 2, 1).reshape(mm * dd, mm)  # ⟨∂_i k(z_a,·), k(z_b,·)⟩
    gram[:mm, mm:] = gram[mm:, :mm].T
    gram[mm:, mm:] = d2.permute(0, 2, 1, 3).reshape(mm * dd, mm * dd)
    eta, grad_eta = witness_and_gradient(k, x, y, z)
    v = torch.cat([eta, grad_eta.reshape(-1)]).numpy()
    quad = v @ np.linalg.solve(gram.numpy() + mm * lam * np.eye(len(v)), v)
    return (biased_mmd2(k, x, y) - quad) / lam


def test_gaussian_identity_critic_unreduced():
    x, y, z = rand(6, 2, seed=11, shift=0.7), rand(5, 2, seed=12), rand(10, 2, seed=13)
    want = unreduced(gauss(1.3), x, y, z, 0.2)
    got = gcmmd2(x, y, z, eye_jac(10, 2), Gaussian(1.3), 0.2)
    assert float(got) == pytest.approx(want, rel=1e-8)


@pytest.mark.parametrize("d,singular", [(1, False), (2, False), (2, True)])
def test_gaussian_linear_critic_unreduced(d, singular):
    """φ(x) = W x, D = 4 > d: the reduced M(d+1) system equals the raw M(D+1) one. With two equal
    rows of W, J Jᵀ is singular and its Cholesky factor needs the jitter."""
    w = rand(d, 4, seed=14)
    if singular:
        w = torch.cat([w[:1], w[:1]])
    x, y, z = rand(6, 4, seed=15, shift=0.5), rand(7, 4, seed=16), rand(8, 4, seed=17)
    base = gauss(0.9)
    want = unreduced(lambda a, b: base(a @ w.T, b @ w.T), x, y, z, 0.4)
    got = gcmmd2(x @ w.T, y @ w.T, z @ w.T, w.expand(8, d, 4), Gaussian(0.9), 0.4)
    assert float(got) == pytest.approx(want, rel=1e-8)


def test_gaussian_primal_in_span():
    """Without Woodbury: whiten span{k(x_i,·), k(y_j,·), k(z_a,·), ∂_i k(z_a,·)}, then Δᵀ(A + λI)⁻¹Δ."""
    x, y, z = rand(4, 2, seed=18, shift=1.0), rand(4, 2, seed=19), rand(5, 2, seed=20)
    k, lam = gauss(1.0), 0.3
    pts = torch.cat([x, y, z])
    npts, mm = len(pts), len(z)
    kk, _, _ = pair_derivatives(k, pts, pts)
    _, d1, d2 = pair_derivatives(k, z, pts)  # d1: ⟨∂_i k(z_a,·), k(p,·)⟩
    gam = torch.zeros(npts + 2 * mm, npts + 2 * mm, dtype=DT)
    gam[:npts, :npts] = kk
    gam[npts:, :npts] = d1.permute(0, 2, 1).reshape(2 * mm, npts)
    gam[:npts, npts:] = gam[npts:, :npts].T
    gam[npts:, npts:] = d2[:, npts - mm :].permute(0, 2, 1, 3).reshape(2 * mm, 2 * mm)
    s, u = np.linalg.eigh(gam.numpy())
    keep = s > 1e-14 * s.max()
    coords = u[:, keep] * np.sqrt(s[keep])  # row u: coordinates of element u in an orthonormal basis
    beta = np.r_[np.full(4, 1 / 4), np.full(4, -1 / 4), np.zeros(3 * mm)]
    delta = coords.T @ beta
    el = coords[8:]  # the μ elements k(z_a,·) and ∂_i k(z_a,·)
    a = el.T @ el / mm
    want = delta @ np.linalg.solve(a + lam * np.eye(len(delta)), delta)
    got = gcmmd2(x, y, z, eye_jac(mm, 2), Gaussian(1.0), lam)
    assert float(got) == pytest.approx(want, rel=1e-6)


# -- the witness f̃ = (D_μ + λI)⁻¹ η against a dense solve in feature space --------------------------


def dense_witness(feat_x, feat_y, feat_z, jac_z, lam, feat_t):
    """f̃(t) = ϕ(t)ᵀw with w = (A + λI)⁻¹Δ, A as in :func:`closed_form` (the dense F×F system, numpy),
    and the rounding bound's ingredients: the magnitude Σ_p |ϕ_p(t) w_p| and cond(A + λI)."""
    delta = feat_x.mean(0) - feat_y.mean(0)
    a = np.mean([np.outer(p, p) + j @ j.T for p, j in zip(feat_z, jac_z)], 0) + lam * np.eye(len(delta))
    w = np.linalg.solve(a, delta)
    return feat_t @ w, np.abs(feat_t) @ np.abs(w), np.linalg.cond(a)


def check_witness(got, want, magnitude, cond, size):
    """Both sides solve a system of condition ``cond`` (the F×F one here, the M(r+1) Woodbury one in the
    library: the same nonzero spectrum up to the factor M) and sum ``size`` terms."""
    assert_close(got, want, dtype=DT, magnitude=magnitude, terms=size, cond=cond)


@pytest.mark.parametrize("lam", [0.05, 0.7])
def test_witness_polynomial_kernel_dense_solve(lam):
    x, y, z = rand(8, 2, seed=4, shift=0.3), rand(6, 2, seed=5), rand(9, 2, seed=6)
    t = rand(11, 2, seed=30, shift=0.2)
    want, mag, cond = dense_witness(
        poly_features(x.numpy()), poly_features(y.numpy()), poly_features(z.numpy()),
        [poly_feature_jacobian(p) for p in z.numpy()], lam, poly_features(t.numpy()),
    )
    f = gcmmd_witness(x, y, z, eye_jac(9, 2), Polynomial(degree=2, gamma=1.0, coef0=1.0), lam)
    check_witness(f(t), want, mag / lam, cond, 9 * 3)
    assert np.abs(want).max() > 0.1  # not a trivially small function


@pytest.mark.parametrize("d_in,d_out", [(3, 2), (2, 3)])  # D > d (Cholesky of J Jᵀ) and D < d (L = J)
@pytest.mark.parametrize("separate_mu", [False, True])
def test_witness_nonlinear_critic_dense_solve(d_in, d_out, separate_mu):
    critic = mlp(d_in, d_out, seed=7)
    real, fake = rand(9, d_in, seed=8, shift=0.4), rand(7, d_in, seed=9)
    mu = rand(5, d_in, seed=10) if separate_mu else real
    t = rand(13, d_in, seed=31)
    with torch.no_grad():
        fx, fy, fz, ft = (critic(v).numpy() for v in (real, fake, mu, t))
    jacs = [torch.autograd.functional.jacobian(critic, p).numpy() for p in mu]
    want, mag, cond = dense_witness(fx, fy, fz, jacs, 0.3, ft)
    f = gcmmd_witness_critic(critic, real, fake, Linear(), 0.3, measure_points=mu if separate_mu else None)
    check_witness(f(t), want, mag / 0.3, cond, len(mu) * (min(d_in, d_out) + 1))


def test_witness_attains_gcmmd2_gaussian():
    """E_P f̃ − E_Q f̃ = ⟨η, f̃⟩_H = GCMMD² (Gaussian kernel, a nonlinear critic, separate μ)."""
    critic = mlp(2, 3, seed=32)
    real, fake, mu = rand(7, 2, seed=33, shift=0.8), rand(6, 2, seed=34), rand(8, 2, seed=35)
    sigma, lam = 1.1, 0.25
    f = gcmmd_witness_critic(critic, real, fake, Gaussian(sigma), lam, measure_points=mu)
    value, _ = gcmmd2_critic(critic, real, fake, Gaussian(sigma), lam, measure_points=mu)
    value = value.detach()
    gap = f(real).mean() - f(fake).mean()
    # both are (MMD²_b − vᵀ(G + MλI)⁻¹v)/λ with 0 ≤ vᵀ(·)⁻¹v ≤ MMD²_b ≤ 2 (kernel values in [0, 1]);
    # cond(G + MλI) ≤ 1 + tr G / (Mλ), tr G = M + Σ_a ‖J_a‖²_F / σ² (⟨∂_p K(u,·), ∂_p K(u,·)⟩ = 1/σ²)
    jac_sq = sum(float((torch.autograd.functional.jacobian(critic, p) ** 2).sum()) for p in mu)
    cond = 1 + (len(mu) + jac_sq / sigma**2) / (len(mu) * lam)
    assert_close(gap, value, dtype=DT, magnitude=4.0 / lam, terms=len(mu) * 3, cond=cond)
    assert float(value) > 0.05

# -- low-rank method -------------------------------------------------------------------------------


def test_pivoted_cholesky_reconstructs_and_is_differentiable():
    b = rand(12, 5, seed=21)
    a = b @ b.T  # rank 5
    r = pivoted_cholesky(a, None, 1e-10)
    assert r.shape == (12, 5)
    torch.testing.assert_close(r @ r.T, a, rtol=0, atol=1e-10)
    full = a + 0.1 * torch.eye(12, dtype=DT)
    r3 = pivoted_cholesky(full, 3, 0.0)
    assert r3.shape == (12, 3)
    assert torch.linalg.eigvalsh(full - r3 @ r3.T).min() > -1e-10  # residual stays PSD
    sym = lambda m: pivoted_cholesky(0.5 * (m + m.T) + 12 * torch.eye(12, dtype=DT), 4, 0.0)
    assert torch.autograd.gradcheck(sym, (rand(12, 12, seed=22).requires_grad_(True),))


def test_cholesky_method_matches_exact_and_converges():
    x, y, z = rand(8, 2, seed=23, shift=0.5), rand(8, 2, seed=24), rand(12, 2, seed=25)
    args = (x, y, z, eye_jac(12, 2), Gaussian(1.0), 0.1)
    exact = float(gcmmd2(*args))
    assert float(gcmmd2(*args, method="cholesky")) == pytest.approx(exact, rel=1e-6)  # tol=1e-6, no rank
    assert float(gcmmd2(*args, method="cholesky", tol=0.0)) == pytest.approx(exact, rel=1e-8)
    assert float(gcmmd2(*args, method="cholesky", rank=36, tol=0.0)) == pytest.approx(exact, rel=1e-8)
    values = [float(gcmmd2(*args, method="cholesky", rank=r, tol=0.0)) for r in range(1, 37)]
    assert all(b >= a - 1e-10 for a, b in zip(values, values[1:]))  # monotone in the rank
    assert all(v <= exact + 1e-10 for v in values)  # a lower bound on the exact value
    # rank 27 of 36: within 0.1 % on this batch (measured 0.0015 %; the pivots are argmaxes of tiny
    # residuals, so rounding-level ties may pick other pivots on another CPU)
    assert exact - values[26] < 1e-3 * exact
    assert exact - values[3] > 0.5 * exact  # rank 4 is far off (the test can tell)


# -- bounds and gradients --------------------------------------------------------------------------


def test_bounds():
    critic = mlp(3, 2, seed=26)
    real, fake = rand(10, 3, seed=27, shift=0.6), rand(10, 3, seed=28)
    lam, k = 0.5, gauss(1.0)
    value, stats = gcmmd2_critic(critic, real, fake, Gaussian(1.0), lam)
    mmd = float(stats["mmd2"])
    assert 0.0 < float(value) <= mmd / lam
    # f = η gives the independent lower bound ‖η‖⁴ / ⟨η, (D_μ + λ)η⟩
    with torch.no_grad():
        fx, fy = critic(real), critic(fake)

    t = real.clone().requires_grad_(True)
    ft = critic(t)
    eta = k(fx[:, None, :], ft[None]).mean(0) - k(fy[:, None, :], ft[None]).mean(0)
    (grad_eta,) = torch.autograd.grad(eta.sum(), t)
    d_eta = (eta.detach() ** 2 + (grad_eta**2).sum(1)).mean()
    assert float(value) >= mmd**2 / (lam * mmd + float(d_eta)) * (1 - 1e-10)
    same, _ = gcmmd2_critic(critic, real, real.clone(), Gaussian(1.0), lam)
    assert abs(float(same)) < 1e-12


@pytest.mark.parametrize("d_in,method", [(3, "exact"), (2, "exact"), (3, "cholesky")])
def test_gradcheck(d_in, method):
    fx, fy, fz = rand(4, 2, seed=29), rand(3, 2, seed=30, shift=0.5), rand(3, 2, seed=31)
    jac = rand(3, 2, d_in, seed=32)
    inputs = tuple(t.clone().requires_grad_(True) for t in (fx, fy, fz, jac))
    fn = lambda *a: gcmmd2(*a, Gaussian(1.0), 0.3, method=method, rank=5 if method == "cholesky" else None)
    assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)


def test_objective_losses_and_gradients():
    torch.manual_seed(33)
    critic, gen = mlp(3, 2, seed=34), torch.nn.Linear(2, 3).to(DT)
    real, noise = rand(8, 3, seed=35, shift=0.5), rand(8, 2, seed=36)
    obj = GradientConstrainedMMD(lam=0.5)
    closs, cstats = obj.critic_loss(critic, real, gen(noise).detach())
    closs.backward()
    *inner, last_bias = critic.parameters()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in inner)
    # the Gaussian kernel is translation invariant, so the output bias moves neither the features'
    # differences nor their Jacobians: its gradient is zero (up to rounding)
    assert float(last_bias.grad.abs().max()) < 1e-12
    critic.zero_grad()
    fake = gen(noise)
    gloss, gstats = obj.generator_loss(critic, real, fake)
    gloss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in gen.parameters())
    assert float(gloss) == pytest.approx(-float(closs), rel=1e-12) and float(gloss) > 0
    assert set(gstats) == {"gcmmd2", "mmd2"} and not gstats["gcmmd2"].requires_grad
    want, _ = gcmmd2_critic(critic, real, fake, Gaussian(1.0), 0.5)
    assert float(gloss) == pytest.approx(float(want), rel=1e-12)


def test_objective_registry_and_config():
    obj = get_objective("gcmmd", kernel={"name": "gaussian", "sigma": 2.0}, lam=0.1, method="cholesky", rank=8)
    assert isinstance(obj, GradientConstrainedMMD) and obj.kernel == Gaussian(2.0) and obj.rank == 8
    assert GradientConstrainedMMD(kernel="linear").kernel == Linear()
    for bad in (dict(lam=0.0), dict(lam=-1.0), dict(method="svd"), dict(rank=0), dict(kernel="nope")):
        with pytest.raises(ValueError):
            GradientConstrainedMMD(**bad)


# -- errors ------------------------------------------------------------------------------------------


def test_bad_inputs():
    x, y, z, j = rand(4, 2), rand(4, 2), rand(3, 2), eye_jac(3, 2)
    k = Gaussian(1.0)
    with pytest.raises(ValueError, match="lam"):
        gcmmd2(x, y, z, j, k, 0.0)
    with pytest.raises(ValueError, match="feature dimensions"):
        gcmmd2(x, rand(4, 3), z, j, k, 1.0)
    with pytest.raises(ValueError, match="jacobians"):
        gcmmd2(x, y, z, eye_jac(4, 2), k, 1.0)
    with pytest.raises(ValueError, match="jacobians"):
        gcmmd2(x, y, z, rand(3, 2), k, 1.0)
    with pytest.raises(ValueError, match="method"):
        gcmmd2(x, y, z, j, k, 1.0, method="svd")
    with pytest.raises(ValueError, match="Distance"):
        gcmmd2(x, y, z, j, Distance(), 1.0)
    with pytest.raises(ValueError, match="rank"):
        gcmmd2(x, y, z, j, k, 1.0, method="cholesky", rank=0)
    big = eye_jac(1400, 2)
    with pytest.raises(ValueError, match='method="cholesky"'):
        gcmmd2(x, y, rand(1400, 2), big, k, 1.0)
    with pytest.raises(ValueError, match="measure points"):
        gcmmd2_critic(mlp(2, 2, 0), x, y, k, 1.0, measure_points=rand(3, 3))


@pytest.mark.parametrize("batched", [True, False])
def test_critic_jacobians_both_paths(batched, monkeypatch):
    from igm.constrained.gcmmd import critic_jacobians

    critic = mlp(3, 2, seed=37)
    pts = rand(4, 3, seed=38).requires_grad_(True)
    if not batched:  # force the per-feature loop used when a critic does not support batched grads
        grad = torch.autograd.grad

        def no_batched(*args, **kwargs):
            if kwargs.get("is_grads_batched"):
                raise RuntimeError("vmap not supported")
            return grad(*args, **kwargs)

        monkeypatch.setattr(torch.autograd, "grad", no_batched)
    jac = critic_jacobians(critic(pts), pts)
    want = torch.stack([torch.autograd.functional.jacobian(critic, p.detach()) for p in pts])
    torch.testing.assert_close(jac, want, rtol=1e-12, atol=1e-12)
    assert jac.requires_grad  # create_graph: differentiable in the critic parameters


def test_forward_jacobians_when_the_input_is_smaller_than_the_features():
    """D = 2 < d = 5: gcmmd2_critic takes the Jacobians from forward-mode products; the value and the
    critic's gradients equal gcmmd2 on Jacobians from torch.autograd.functional, sample by sample."""
    critic = mlp(2, 5, seed=40)
    real, fake = rand(7, 2, seed=41, shift=0.4), rand(6, 2, seed=42)
    value, _ = gcmmd2_critic(critic, real, fake, Gaussian(1.0), 0.5)
    grads = torch.autograd.grad(value, list(critic.parameters()))
    jac = torch.stack([torch.autograd.functional.jacobian(lambda t: critic(t[None])[0], x, create_graph=True) for x in real])
    fx = critic(real)
    want = gcmmd2(fx, critic(fake), fx, jac, Gaussian(1.0), 0.5)
    want_grads = torch.autograd.grad(want, list(critic.parameters()))
    assert float(value) == pytest.approx(float(want), rel=1e-10)
    for g, w in zip(grads, want_grads):
        torch.testing.assert_close(g, w, rtol=1e-8, atol=1e-12)


def test_generator_step_needs_no_critic_graph():
    critic = mlp(2, 5, seed=43)
    gen = torch.nn.Linear(3, 2).to(DT)
    real, noise = rand(8, 2, seed=44), rand(8, 3, seed=45)
    obj = GradientConstrainedMMD(lam=0.5)
    loss, _ = obj.generator_loss(critic, real, gen(noise))
    with_graph, _ = gcmmd2_critic(critic, real, gen(noise), Gaussian(1.0), 0.5)
    assert float(loss) == pytest.approx(float(with_graph), rel=1e-12)
    g1 = torch.autograd.grad(loss, list(gen.parameters()))
    g2 = torch.autograd.grad(with_graph, list(gen.parameters()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)


# -- layering ----------------------------------------------------------------------------------------


def test_constrained_does_not_import_objectives():
    """constrained/ is a lower layer than objectives/: importing it (and running the critic
    estimator) pulls in no objective; ``critic_features`` lives in igm.checks and is re-exported."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from igm.constrained import gcmmd2_critic\n"
        "from igm.kernels import Gaussian\n"
        "x = torch.randn(4, 2, dtype=torch.float64)\n"
        "gcmmd2_critic(torch.nn.Linear(2, 3).double(), x, x + 1, Gaussian(1.0), 1.0)\n"
        "assert not any(m.startswith('igm.objectives') for m in sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    from igm.checks import critic_features
    from igm.objectives import base

    assert base.critic_features is critic_features
