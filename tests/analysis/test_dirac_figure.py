"""``igm figure diracgan``: its numbers against the DiracGAN closed forms of SPEC §5, the paper's
qualitative claims (seed 000, figures 1 and 5), and the command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from igm.analysis import dirac, figures
from igm.analysis import dirac_figure as D
from igm.cli import main


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One quick run through the CLI, shared by the tests below."""
    out = tmp_path_factory.mktemp("diracgan")
    assert main(["figure", "diracgan", "--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "diracgan.json").read_text())


def _field(payload, name):
    f = payload["fields"][name]
    theta, psi = np.meshgrid(np.asarray(f["theta"]), np.asarray(f["psi"]))  # (len ψ, len θ), like u and v
    return theta, psi, np.asarray(f["u"]), np.asarray(f["v"])


def _mmd2(theta, psi):
    return 2.0 * (1.0 - np.exp(-(psi**2) * theta**2 / 2.0))


def _smmd2(theta, psi, lam, w):
    return _mmd2(theta, psi) / (lam + 1.0 + w * psi**2)


def _fd(fn, theta, psi, h=1e-6):
    """Central differences of a closed form: (∂_θ, ∂_ψ)."""
    return ((fn(theta + h, psi) - fn(theta - h, psi)) / (2 * h), (fn(theta, psi + h) - fn(theta, psi - h)) / (2 * h))


def test_cli_writes_the_figures(quick):
    out, payload = quick
    for name in ("diracgan-fields.png", "diracgan-critics.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    opts = payload["options"]
    assert len(payload["fields"]["mmd"]["theta"]) == opts["grid"] == 5
    assert set(payload["final"]) == set(opts["methods"])
    assert "lipmmd" not in opts["methods"]  # too slow for the quick mode; tested on its own below


def test_mmd_field_matches_closed_form(quick):
    """MMD² = 2(1 − exp(−ψ²θ²/2)); field (−∂_θ MMD², +∂_ψ MMD²) (the critic ascends MMD²)."""
    theta, psi, u, v = _field(quick[1], "mmd")
    e = np.exp(-(psi**2) * theta**2 / 2)
    np.testing.assert_allclose(u, -2 * psi**2 * theta * e, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(v, 2 * psi * theta**2 * e, rtol=1e-9, atol=1e-13)
    assert np.abs(u).max() > 0.1 and np.abs(v).max() > 0.1  # not a trivially zero field


def test_smmd_field_matches_closed_form(quick):
    """SMMD² = MMD² / (λ + 1 + wψ²) (μ = P, paper parametrisation), differentiated numerically."""
    payload = quick[1]
    lam, w = payload["options"]["smmd_lam"], payload["options"]["smmd_grad_weight"]
    theta, psi, u, v = _field(payload, "smmd")
    d_theta, d_psi = _fd(lambda t, p: _smmd2(t, p, lam, w), theta, psi)
    np.testing.assert_allclose(u, -d_theta, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(v, d_psi, rtol=1e-6, atol=1e-8)


def test_sn_mmd_is_bandwidth_one_mmd_with_a_frozen_critic(quick):
    """φ(x) = sign(ψ)x: MMD² = 2(1 − exp(−θ²/2)) for every ψ ≠ 0, ∂_ψ = 0; ψ = 0 is the zero critic."""
    theta, psi, u, v = _field(quick[1], "sn-mmd")
    d_theta, _ = _fd(lambda t, p: _mmd2(t, 1.0), theta, psi)
    ok = psi != 0
    assert ok.sum() == 20
    np.testing.assert_allclose(u[ok], -d_theta[ok], rtol=1e-6, atol=1e-8)
    assert np.all(u[~ok] == 0.0)
    assert np.abs(v).max() < 1e-12  # zero up to rounding in the spectral parametrisation


def test_wgan_fields_match_closed_form(quick):
    """WGAN: critic loss ψθ, generator −ψθ → (ψ, −θ); WGAN-GP adds λ(|ψ| − 1)² to the critic."""
    payload = quick[1]
    theta, psi, u, v = _field(payload, "wgan")
    np.testing.assert_allclose(u, psi, atol=1e-12)
    np.testing.assert_allclose(v, -theta, atol=1e-12)
    lam = payload["options"]["wgan_gp_lam"]
    theta, psi, u, v = _field(payload, "wgan-gp")
    np.testing.assert_allclose(u, psi, atol=1e-12)
    ok = np.abs(psi) > 0  # the penalty's kink at ψ = 0
    np.testing.assert_allclose(v[ok], (-theta - 2 * lam * (np.abs(psi) - 1) * np.sign(psi))[ok], atol=1e-8)


def test_mmd_has_stuck_regions_that_smmd_escapes(quick):
    payload = quick[1]
    # (a) the paper's C: a sharp kernel (|ψθ| large) leaves MMD with essentially no gradient at all,
    # while the SMMD critic still has a strong signal to reduce |ψ| ("reducing the critic gradient")
    theta, psi, u, v = _field(payload, "mmd")
    sharp = np.abs(psi * theta) >= 4.5
    assert sharp.sum() >= 4
    assert np.hypot(u, v)[sharp].max() < 2e-3
    theta, psi, u_s, v_s = _field(payload, "smmd")
    assert np.all(np.abs(v_s[sharp]) > 0.02)
    assert np.all(v_s[sharp] * np.sign(psi[sharp]) < 0)
    # (b) near ψ = 0 the generator's gradient vanishes (∝ ψ²): a bandwidth 1/ψ far wider than θ
    opts = figures.get("diracgan").options()
    thetas = np.array([0.5, 1.0, 2.0, 3.0])
    u0, _ = D.field("mmd", opts, thetas, np.array([0.05]))
    u1, _ = D.field("mmd", opts, thetas, np.array([1.0]))
    assert np.abs(u0).max() < 0.02 * np.abs(u1).max()
    assert np.all(np.abs(u0) > 0)


def test_smmd_converges_and_mmd_does_not_from_the_same_start(quick):
    payload = quick[1]
    opts, final = payload["options"], payload["final"]
    assert opts["start_theta"] == 2.0 and opts["start_psi"] == 2.5
    assert final["smmd"]["abs_theta"] < 1e-2
    assert final["mmd"]["abs_theta"] > 0.95 * opts["start_theta"]
    assert final["gcmmd-p"]["abs_theta"] > 0.95 * opts["start_theta"]  # μ = P only flattens f at 0
    assert final["gcmmd"]["abs_theta"] < 1e-2  # μ between P and Q bounds the slope along the way
    traj = payload["trajectories"]["smmd"][0]
    assert traj["stride"] == 1 and traj["step"] == list(range(opts["steps"] + 1))
    # SMMD first reduces ψ (the critic's gradient), then θ moves
    assert traj["psi"][-1] < opts["start_psi"] - 0.5


def test_trajectory_is_dirac_train():
    opts = figures.get("diracgan").options(lr=0.3)
    got = D._trajectory("smmd", opts, 2.0, 2.5, 5)
    hist = dirac.train(D.build_objective("smmd", opts), theta=2.0, psi=2.5, steps=5, lr=0.3, batch=opts.batch)
    assert got["theta"] == [h.theta for h in hist] and got["psi"] == [h.psi for h in hist]


def test_optimised_distances(quick):
    """Figure 1(d): sup_ψ MMD = √2 for every θ ≠ 0 (discontinuous at 0); SMMD's sup is continuous."""
    dist = quick[1]["distances"]
    theta = np.asarray(dist["theta"])
    mmd = np.asarray(dist["values"]["mmd"])
    assert theta[0] == 0.0 and mmd[0] == 0.0
    np.testing.assert_allclose(mmd[1:], math.sqrt(2.0), rtol=1e-6)
    smmd = np.asarray(dist["values"]["smmd"])
    opts = quick[1]["options"]
    lam, w = opts["smmd_lam"], opts["smmd_grad_weight"]
    grid = np.geomspace(0.02, opts["sup_psi_max"], opts["sup_psis"])  # the figure's ψ candidates
    fine = np.geomspace(0.02, opts["sup_psi_max"], 20000)
    for t, got in zip(theta[1:], smmd[1:]):
        assert got == pytest.approx(math.sqrt(_smmd2(t, grid, lam, w).max()), rel=1e-9)
        assert got > 0.9 * math.sqrt(_smmd2(t, fine, lam, w).max())  # the coarse quick grid is near the sup
    assert np.all(np.diff(smmd) > 0) and smmd[1] < 0.8 * mmd[1]
    # GCMMD with μ = P = δ₀ is discontinuous too: as ψ → ∞, k(θ, ·) ⟂ k(0, ·), ∂k(0, ·) and
    # ⟨η, (D_μ + λ)⁻¹ η⟩ → 1/(1 + λ) + 1/λ for every θ ≠ 0
    lam = opts["gcmmd_lam"]
    gc = np.asarray(dist["values"]["gcmmd-p"])
    np.testing.assert_allclose(gc[1:], math.sqrt(1 / (1 + lam) + 1 / lam), rtol=1e-6)


def test_critic_curves(quick):
    crit = quick[1]["critics"]
    x, theta = np.asarray(crit["x"]), crit["theta"]
    for name, c in crit["curves"].items():
        g = np.asarray(c["normalised"])
        assert np.interp(0.0, x, g) == pytest.approx(1.0, abs=1e-9), name
        assert np.interp(theta, x, g) == pytest.approx(0.0, abs=1e-9), name
    assert crit["curves"]["sn-mmd"]["psi"] == 1.0
    for name in ("smmd", "mmd"):  # the witness η(x) = k(0, x) − k(θ, x), scaled
        psi = crit["curves"][name]["psi"]
        eta = np.exp(-(psi**2) * x**2 / 2) - np.exp(-(psi**2) * (x - theta) ** 2 / 2)
        eta_0, eta_t = np.interp([0.0, theta], x, eta)
        np.testing.assert_allclose(crit["curves"][name]["normalised"], (eta - eta_t) / (eta_0 - eta_t), atol=1e-8)
    assert crit["curves"]["mmd"]["saturated"] and not crit["curves"]["smmd"]["saturated"]
    assert crit["curves"]["smmd"]["psi"] < crit["curves"]["mmd"]["psi"]  # SMMD's critic is smoother


@pytest.mark.parametrize("name", ["gcmmd", "gcmmd-p"])
@pytest.mark.parametrize("theta,psi", [(1.3, 0.8), (-0.6, 2.0)])
def test_gcmmd_critic_attains_the_library_value(name, theta, psi):
    """E_P f̃ − E_Q f̃ = ⟨η, (D_μ + λ)⁻¹ η⟩_H = GCMMD² for the critic function drawn in panel (c)."""
    import torch

    opts = figures.get("diracgan").options(critic_theta=abs(theta))
    out = dirac.losses(D.build_objective(name, opts), theta, psi, batch=opts.batch)
    real = torch.zeros(opts.batch, 1, dtype=torch.float64)
    fake = torch.full((opts.batch, 1), theta, dtype=torch.float64)
    points = D._midpoint_interpolates(real, fake, opts.gcmmd_points) if name == "gcmmd" else real
    f = D.gcmmd_witness(dirac.DiracCritic(psi), real, fake, points, D._gauss(), opts.gcmmd_lam)
    vals = f(torch.tensor([[0.0], [theta]], dtype=torch.float64))
    assert float(vals[0] - vals[1]) == pytest.approx(out["generator_loss"], rel=1e-8)
    assert out["generator_loss"] > 0.05


def test_lipschitz_mmd_is_bounded_by_the_lipschitz_constant():
    """A sharp kernel: LipMMD = L|θ| (the constraint binds), so LipMMD² = θ² and ∂_θ = 2θ."""
    obj = D.build_objective("lipmmd")
    theta, psi = 0.4, 5.0
    out = dirac.losses(obj, theta, psi)
    assert out["generator_loss"] == pytest.approx(theta**2, rel=2e-3)
    assert out["dgen_dtheta"] == pytest.approx(2 * theta, rel=5e-3)
    assert abs(out["dcritic_dpsi"]) < 1e-3
    # a wide kernel: the RKHS ball binds first and LipMMD is the MMD
    out = dirac.losses(obj, 2.0, 0.3)
    assert out["generator_loss"] == pytest.approx(_mmd2(2.0, 0.3), rel=1e-4)


def test_lipschitz_panel_runs(tmp_path):
    res = figures.run("diracgan", tmp_path, quick=True, overrides=[
        "methods=[lipmmd]", "lip_grid=2", "steps=2", "sup_thetas=2", "lip_sup_psis=2", "critic_points=11"])
    assert np.asarray(res["fields"]["lipmmd"]["u"]).shape == (2, 2)
    assert len(res["trajectories"]["lipmmd"][0]["theta"]) == 3
    assert (tmp_path / "diracgan-fields.png").is_file()


@pytest.mark.parametrize(
    "option,message",
    [("bogus=1", "unknown option 'bogus'"), ("methods=[mmd, nosuch]", "unknown DiracGAN method 'nosuch'"),
     ("theta_range=[1, -1]", "theta_range must be"), ("extra_starts=[1.0]", "pairs")],
)
def test_bad_options_are_rejected(tmp_path, capsys, option, message):
    assert main(["figure", "diracgan", "--quick", "--out", str(tmp_path), option]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "diracgan.json").exists()


def test_json_copy_keeps_every_stride_step_and_the_last():
    run = {"start": [2.0, 2.5], "theta": [float(i) for i in range(201)], "psi": [0.1 * i for i in range(201)]}
    out = D._compact({"fields": {}, "trajectories": {"m": [run]}, "critics": {"x": [0.0], "curves": {}}})
    got = out["trajectories"]["m"][0]
    assert got["stride"] == 2 and got["step"][-1] == 200 and len(got["step"]) == 101
    assert list(got["theta"]) == [float(i) for i in range(0, 201, 2)]
    run["theta"], run["psi"] = run["theta"][:200], run["psi"][:200]  # 199 steps: the last is kept
    got = D._compact({"fields": {}, "trajectories": {"m": [run]}, "critics": {"x": [0.0], "curves": {}}})
    assert got["trajectories"]["m"][0]["step"][-2:] == [198, 199]
    assert D._sig([1.23456789012345]).tolist() == [1.23456789]
