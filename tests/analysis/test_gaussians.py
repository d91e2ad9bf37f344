"""``igm figure gaussians``: the numbers against closed forms and an independent GCMMD solve."""

import json
import math

import pytest
import torch

from igm import cli
from igm.analysis import figures
from igm.analysis.gaussians import GaussiansOptions, distances, sample_pair

QUICK = dict(figures.get("gaussians").quick)


def expected_kernel(mean_diff: float, var_sum: float, psi: float, dim: int, mean_dim: int = 1) -> float:
    """E exp(−‖Z‖²/(2ψ²)) for Z ~ N(mean_diff·e₁, var_sum·I_dim): per coordinate
    ∫ N(z; a, v) exp(−z²/(2ψ²)) dz = sqrt(ψ²/(ψ²+v)) exp(−a²/(2(ψ²+v)))."""
    per = psi**2 / (psi**2 + var_sum)
    return per ** (dim / 2) * math.exp(-(mean_diff**2) / (2 * (psi**2 + var_sum)))


def mmd2_closed(mu: float, s_p: float, s_q: float, psi: float, dim: int = 1) -> float:
    return (expected_kernel(0, 2 * s_p**2, psi, dim) + expected_kernel(0, 2 * s_q**2, psi, dim)
            - 2 * expected_kernel(mu, s_p**2 + s_q**2, psi, dim))


def test_expected_kernel_formula_by_monte_carlo():
    # the closed form itself, checked by brute force (so the tests below rest on a verified formula)
    gen = torch.Generator().manual_seed(1)
    s, mu, psi, d = 0.7, 1.3, 0.9, 2
    x = s * torch.randn(400_000, d, generator=gen, dtype=torch.float64)
    y = s * torch.randn(400_000, d, generator=gen, dtype=torch.float64)
    y[:, 0] += mu
    mc = torch.exp(-((x - y) ** 2).sum(1) / (2 * psi**2)).mean().item()
    assert mc == pytest.approx(expected_kernel(mu, 2 * s**2, psi, d), rel=5e-3)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gaussians")
    assert cli.main(["figure", "gaussians", "--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "gaussians.json").read_text())


def test_cli_writes_pngs_and_json(quick_run):
    out, data = quick_run
    assert (out / "gaussians.png").stat().st_size > 10_000
    assert (out / "gaussians-maps.png").stat().st_size > 10_000
    assert len(data["curves"]["mu"]) == QUICK["mu_count"]
    assert data["summary"]


def test_fixed_kernel_mmd_matches_closed_form(quick_run):
    _, data = quick_run
    opts = data["options"]
    for psi, values in data["curves"]["fixed"].items():
        for mu, v in zip(data["curves"]["mu"], values["mmd"]):
            exact = mmd2_closed(mu, opts["s_p"], opts["s_p"], float(psi), opts["dim"])
            # plug-in estimate from 60 coupled samples: a few per cent off at most
            assert v == pytest.approx(exact, rel=0.15, abs=0.01), (psi, mu)


def test_estimator_converges_to_closed_form_with_many_samples():
    for mu, s_q, psi in [(0.3, 0.1, 0.1), (1.0, 0.3, 1.0), (5.0, 0.1, 10.0)]:
        x, y = sample_pair(1000, 1, 0.1, mu, s_q, seed=3, couple=False)
        d = distances(x, y, psi, lam=1.0, measure_points=20)
        exact = mmd2_closed(mu, 0.1, s_q, psi)
        # the biased estimate has bias O(1/n) and noise O(1/sqrt(n))
        assert d["mmd"] == pytest.approx(exact, rel=0.05), (mu, s_q, psi)
        assert d["mmd_gcmmd"] == pytest.approx(d["mmd"], rel=1e-9)


def test_smmd_uses_the_papers_scale(quick_run):
    _, data = quick_run
    opts = data["options"]
    for psi, values in data["curves"]["fixed"].items():
        expected = 1.0 / (opts["lam"] + 1.0 + opts["dim"] / float(psi) ** 2)  # λ + E k(x,x) + E‖∇φ‖²
        for mmd, smmd, scale in zip(values["mmd"], values["smmd"], values["scale"]):
            assert scale == pytest.approx(expected, rel=1e-9)
            assert smmd == pytest.approx(expected * mmd, rel=1e-9, abs=1e-15)


def gcmmd2_primal(x, y, z, psi, lam):
    """GCMMD² by brute force in 1-D: maximise (E_P f − E_Q f)² over f in the span of
    {k(u,·) : u ∈ x ∪ y ∪ z} ∪ {∂₁k(z_a,·)} (which contains the optimum) under
    mean_a f(z_a)² + mean_a f'(z_a)² + λ‖f‖²_H ≤ 1, i.e. gᵀ B⁺ g."""
    x, y, z = (t.reshape(-1).double() for t in (x, y, z))
    p2 = psi**2
    k = lambda a, b: torch.exp(-((a[:, None] - b[None, :]) ** 2) / (2 * p2))  # noqa: E731
    u = torch.cat([x, y, z])
    # element functions evaluated at points t, and their t-derivatives
    def values(t):
        kv = k(u, t)  # (U, T): k(u, t)
        kd = k(z, t)
        diff = t[None, :] - z[:, None]  # t − a
        return torch.cat([kv, diff / p2 * kd]), torch.cat([(u[:, None] - t[None, :]) / p2 * kv,
                                                            (1 / p2 - diff**2 / p2**2) * kd])

    kk = k(u, u)
    dz = u[:, None] - z[None, :]  # a = u, b = z: ⟨k(u,·), ∂₁k(z_b,·)⟩ = ∂_b k(u, b) = (u − b)/ψ² k
    ku_dz = dz / p2 * k(u, z)
    zz = z[:, None] - z[None, :]
    dd = (1 / p2 - zz**2 / p2**2) * k(z, z)
    gram = torch.cat([torch.cat([kk, ku_dz], 1), torch.cat([ku_dz.T, dd], 1)])
    vz, dvz = values(z)
    vx, _ = values(x)
    vy, _ = values(y)
    g = vx.mean(1) - vy.mean(1)
    m = z.shape[0]
    b = (vz @ vz.T + dvz @ dvz.T) / m + lam * gram
    evals, evecs = torch.linalg.eigh(0.5 * (b + b.T))
    keep = evals > evals.max() * 1e-12
    proj = evecs[:, keep].T @ g
    return float((proj**2 / evals[keep]).sum())


@pytest.mark.parametrize("psi", [0.1, 0.5, 3.0])
def test_gcmmd_matches_an_independent_primal_solve(psi):
    x, y = sample_pair(30, 1, 0.1, 0.4, 0.2, seed=5, couple=False)
    got = distances(x, y, psi, lam=1.0, measure_points=10)["gcmmd"]
    assert got == pytest.approx(gcmmd2_primal(x, y, x[:10], psi, 1.0), rel=1e-5)


def test_json_values_are_reproduced_from_the_public_helpers(quick_run):
    _, data = quick_run
    o = GaussiansOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in data["options"].items()})
    i = 3
    mu = data["curves"]["mu"][i]
    x, y = sample_pair(o.samples, o.dim, o.s_p, mu, o.s_p, o.seed, o.couple)
    d = distances(x, y, 0.1, o.lam, o.measure_points)
    for name in ("mmd", "smmd", "gcmmd"):
        assert data["curves"]["fixed"]["0.1"][name][i] == pytest.approx(d[name], rel=1e-9)


def test_scaled_below_gradient_constrained_below_mmd_over_lambda(quick_run):
    # SMMD's constraint set is inside GCMMD's (paper §3.3): SMMD² ≤ GCMMD²; and GCMMD² ≤ MMD²/λ
    _, data = quick_run
    lam = data["options"]["lam"]
    blocks = [data["curves"]["fixed"][p] for p in data["curves"]["fixed"]]
    blocks += [{n: sum(v, []) for n, v in data["maps"]["fixed"][p].items()} for p in data["maps"]["fixed"]]
    for b in blocks:
        for mmd, smmd, gc in zip(b["mmd"], b["smmd"], b["gcmmd"]):
            assert smmd <= gc * (1 + 1e-6) + 1e-12
            assert gc <= mmd / lam * (1 + 1e-6) + 1e-12


def test_claims_saturation_and_optimised_mmd_rising_first(quick_run):
    _, data = quick_run
    c = data["curves"]
    # a narrow fixed kernel saturates: the last two mean shifts (6 and 30) give the same distance
    for name in ("mmd", "smmd", "gcmmd"):
        v = c["fixed"]["0.1"][name]
        assert v[-1] == pytest.approx(v[-2], rel=0.02)
    # with the kernel optimised, MMD is near its maximum long before SMMD and GCMMD
    opt = c["optimised"]
    share = {n: math.sqrt(opt[n][2] / max(opt[n])) for n in opt}  # at μ ≈ 0.25
    assert share["mmd"] > 0.5
    assert share["smmd"] < 0.5 * share["mmd"] and share["gcmmd"] < 0.5 * share["mmd"]
    assert c["half_max_mu"]["mmd"] < c["half_max_mu"]["smmd"]
