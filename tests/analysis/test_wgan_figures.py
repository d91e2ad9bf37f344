"""``igm figure wgan-parallel-lines`` and ``wgan-optimal-critic`` (seed 001, figures 1 and 2):
the closed forms exactly, the helpers against direct computations, and the quick runs' estimates
against the closed forms and the paper's claims.

The tolerances were set from quick runs at seeds 0, 1 and 2 (what we saw is in each test's comment);
each leaves room of at least 2× over the worst of the three.
"""

import itertools
import json
import math

import pytest
import torch
from torch import nn

from igm import cli, objectives
from igm.analysis import figures
from igm.analysis.wgan_critics import critic_quantities, function_and_derivative, gan_quantities
from igm.analysis.wgan_figures import (LOG2, _estimate, fit_scale, gp_optimum, js_closed, make_critic,
                                       sample_segment, train_critic, w_closed)


# -- closed forms --------------------------------------------------------------------------------

def test_closed_forms_exact():
    for t in (-1.0, -0.3, 1e-9, 0.5, 1.0):
        assert w_closed(t) == abs(t)
        assert js_closed(t) == math.log(2)
    assert w_closed(0.0) == 0.0 and js_closed(0.0) == 0.0 and js_closed(-0.0) == 0.0


def test_w_is_the_optimal_transport_cost_of_coupled_samples():
    # the same six heights on both segments: the cheapest of all 720 matchings moves each point sideways
    gen = torch.Generator().manual_seed(3)
    y = torch.rand(6, generator=gen, dtype=torch.float64)
    for theta in (0.0, 0.4, -1.0):
        cost = torch.sqrt(theta**2 + (y[:, None] - y[None, :]) ** 2)
        best = min(sum(float(cost[i, p[i]]) for i in range(6)) / 6 for p in itertools.permutations(range(6)))
        assert best == pytest.approx(w_closed(theta), abs=1e-12)


def test_js_from_histograms():
    # P₀ and P_θ as histograms over (x, y-bin); JS = ½KL(P‖M) + ½KL(Q‖M) computed directly
    bins = 10
    for theta in (0.0, 0.5):
        support = sorted({0.0, theta})
        p = {(0.0, b): 1 / bins for b in range(bins)}
        q = {(theta, b): 1 / bins for b in range(bins)}
        js = 0.0
        for key in {(x, b) for x in support for b in range(bins)}:
            m = (p.get(key, 0) + q.get(key, 0)) / 2
            for dist in (p, q):
                if dist.get(key, 0) > 0:
                    js += 0.5 * dist[key] * math.log(dist[key] / m)
        assert js == pytest.approx(js_closed(theta), abs=1e-12)


def test_gp_optimum_by_grid_search():
    for theta, lam in ((1.0, 10.0), (0.3, 10.0), (2.0, 1.0)):
        s = torch.linspace(0, 3, 300_001, dtype=torch.float64)
        best = float((s * abs(theta) - lam * (s - 1) ** 2).max())
        s_star = 1 + abs(theta) / (2 * lam)
        assert s_star * abs(theta) - lam * (s_star - 1) ** 2 == pytest.approx(best, abs=1e-9)
        assert gp_optimum(theta, lam) == pytest.approx(s_star * abs(theta))


def test_fit_scale_is_least_squares_through_the_origin():
    thetas, est = [-1.0, 0.0, 0.5, 1.0], [2.1, 0.1, 0.9, 1.9]
    k = fit_scale(thetas, est)
    for dk in (-1e-3, 1e-3):
        assert sum((e - k * abs(t)) ** 2 for t, e in zip(thetas, est)) < sum(
            (e - (k + dk) * abs(t)) ** 2 for t, e in zip(thetas, est))


# -- helpers --------------------------------------------------------------------------------------

def test_gan_estimate_is_half_L_plus_log2():
    torch.manual_seed(0)
    critic = make_critic(2, 8, 1, "tanh")
    gen = torch.Generator().manual_seed(1)
    real, fake = sample_segment(0.0, 500, gen), sample_segment(0.7, 500, gen)
    with torch.no_grad():
        d_real, d_fake = torch.sigmoid(critic(real)), torch.sigmoid(critic(fake))
        direct = 0.5 * float(torch.log(d_real).mean() + torch.log(1 - d_fake).mean()) + math.log(2)
    assert _estimate("gan", objectives.get("gan"), critic, real, fake) == pytest.approx(direct, abs=1e-5)
    assert direct <= math.log(2)  # L(D) ≤ 0 for every D


def test_train_critic_keeps_wgan_weights_clipped():
    torch.manual_seed(0)
    critic = make_critic(2, 16, 2, "leaky_relu")
    gen = torch.Generator().manual_seed(0)
    train_critic(objectives.get("wgan", clip=0.01), critic,
                 lambda n: (sample_segment(0.0, n, gen), sample_segment(0.5, n, gen)),
                 steps=20, batch=32, optimiser="rmsprop", lr=5e-3)
    assert max(float(p.abs().max()) for p in critic.parameters()) <= 0.01


def test_gan_quantities_against_finite_differences():
    lin = nn.Linear(1, 1)
    with torch.no_grad():
        lin.weight.fill_(3.0)
        lin.bias.fill_(0.5)
    x = torch.tensor([-2.0, -0.1, 0.0, 0.4, 3.0], dtype=torch.float64)
    logit, dlogit = function_and_derivative(lin, x)
    assert torch.allclose(dlogit, torch.full_like(x, 3.0))
    q = gan_quantities(logit, dlogit)
    h = 1e-6

    def d(z):
        return torch.sigmoid(3 * z + 0.5)

    assert torch.allclose(q["dd"], (d(x + h) - d(x - h)) / (2 * h), rtol=1e-5, atol=1e-9)
    assert torch.allclose(q["d_log_one_minus_d"], (torch.log(1 - d(x + h)) - torch.log(1 - d(x - h))) / (2 * h),
                          rtol=1e-5, atol=1e-9)
    assert torch.allclose(q["d_log_d"], (torch.log(d(x + h)) - torch.log(d(x - h))) / (2 * h), rtol=1e-5, atol=1e-9)
    far = gan_quantities(torch.tensor([40.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64))
    assert 0 < float(far["dd"]) < 1e-16  # no rounding of 1 − D to 0 from the logit


def test_critic_quantities_of_a_line():
    x = torch.linspace(-3, 3, 61, dtype=torch.float64)
    f, df = 2 - 0.5 * x, torch.full_like(x, -0.5)
    q = critic_quantities(x, f, df, torch.full((7,), -0.5, dtype=torch.float64), (x >= -2) & (x <= 2))
    assert q["min_abs_grad_between_rel"] == pytest.approx(1.0) and q["grad_at_fakes_rel"] == pytest.approx(1.0)
    assert q["r2_between"] == pytest.approx(1.0) and q["r2_all"] == pytest.approx(1.0)
    assert q["towards_real_share"] == 1.0


# -- parallel lines, quick run ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    out = tmp_path_factory.mktemp("lines")
    assert cli.main(["figure", "wgan-parallel-lines", "--quick", "--out", str(out)]) == 0
    assert (out / "wgan-parallel-lines.png").stat().st_size > 10_000
    return json.loads((out / "wgan-parallel-lines.json").read_text())


def test_lines_json_holds_the_grid_and_exact_closed_forms(lines):
    quick = figures.get("wgan-parallel-lines").quick
    t = lines["thetas"]
    assert len(t) == quick["theta_count"] and 0.0 in t
    assert lines["closed_forms"]["w"] == [abs(v) for v in t]
    assert lines["closed_forms"]["js"] == [math.log(2) if v != 0 else 0.0 for v in t]
    assert set(lines["estimates"]) == {"wgan", "wgan-gp", "gan"} and lines["summary"]


def test_lines_gp_estimate_tracks_w(lines):
    # |est − |θ|| ≤ 0.15|θ| + 0.05 for |θ| ≥ 0.25, the GP's own bias θ²/(2λ) included (0.05 at |θ| = 1);
    # seeds 0-2 saw at most 0.068 at |θ| = 1 and 0.005 at |θ| = 0.25. At θ = 0: |est| ≤ 0.05 (saw ≤ 0.004).
    for t, e in zip(lines["thetas"], lines["estimates"]["wgan-gp"]):
        if abs(t) >= 0.25:
            assert abs(e - abs(t)) <= 0.15 * abs(t) + 0.05, (t, e)
        if t == 0:
            assert abs(e) <= 0.05


def test_lines_clipped_estimate_is_roughly_proportional_to_w(lines):
    # the clipped family is K-Lipschitz for an unknown K: the estimate has the sign of W, grows with |θ|
    # on each side, and est/|θ| stays within a factor 2 across |θ| ≥ 0.25 (seeds 0-2: at most 1.65,
    # the ratio depending on the corner of the clipping box the critic ends in); at θ = 0 it is
    # negligible, |est| ≤ 0.05 K (saw ≤ 1e-3 K).
    t, e = lines["thetas"], lines["estimates"]["wgan"]
    k = lines["wgan_scale"]
    assert k == pytest.approx(fit_scale(t, e)) and k > 0
    assert lines["wgan_rescaled"] == pytest.approx([v / k for v in e])
    for side in ([i for i, v in enumerate(t) if v < 0][::-1], [i for i, v in enumerate(t) if v > 0]):
        vals = [e[i] for i in side]  # ordered by growing |θ|
        assert all(v > 0 for v in vals) and all(b > a for a, b in zip(vals, vals[1:])), vals
    ratios = [v / abs(s) for s, v in zip(t, e) if abs(s) >= 0.25]
    assert max(ratios) / min(ratios) <= 2.0
    assert abs(e[t.index(0.0)]) <= 0.05 * k


def test_lines_gan_bound_is_log2_off_zero_and_zero_at_zero(lines):
    # a lower bound: ≤ log 2 always; ≥ log 2 − 0.01 for |θ| ≥ 0.25 (seeds 0-2: log 2 to 5 digits, the
    # discriminator separates the lines perfectly); |bound| ≤ 0.02 at θ = 0 (saw ≤ 4e-5)
    for t, b in zip(lines["thetas"], lines["estimates"]["gan"]):
        assert b <= LOG2 + 1e-6
        if abs(t) >= 0.25:
            assert b >= LOG2 - 0.01, (t, b)
        if t == 0:
            assert abs(b) <= 0.02


# -- optimal critics, quick run --------------------------------------------------------------------

@pytest.fixture(scope="module")
def critics(tmp_path_factory):
    out = tmp_path_factory.mktemp("critics")
    assert cli.main(["figure", "wgan-optimal-critic", "--quick", "--out", str(out)]) == 0
    assert (out / "wgan-optimal-critic.png").stat().st_size > 10_000
    return json.loads((out / "wgan-optimal-critic.json").read_text())


def test_critics_json(critics):
    assert set(critics["metrics"]) == {"gan", "wgan", "wgan-gp"} and critics["summary"]
    assert len(critics["x"]) == figures.get("wgan-optimal-critic").quick["grid"]
    c = critics["curves"]["gan"]  # D' recomputed from the stored logit and its derivative
    logit = torch.tensor(c["logit"], dtype=torch.float64)
    expected = torch.sigmoid(logit) * torch.sigmoid(-logit) * torch.tensor(c["dlogit"], dtype=torch.float64)
    assert torch.allclose(torch.tensor(c["dd"], dtype=torch.float64), expected, rtol=1e-6, atol=0.0)


def test_claim_the_gan_discriminator_saturates(critics):
    # D' at the fakes ≤ 1% of its peak and ≤ 0.05 absolute (seeds 0-2: 4e-8 .. 2e-4 of the peak, 2e-7 .. 2e-3
    # absolute), flat (< 1% of the peak) on ≥ 70% of the interval between the modes (saw 88-90%), peak at
    # the decision boundary near the midpoint x = 0 (saw |x| ≤ 0.06); the minimax generator's signal
    # |∂ log(1 − D)/∂x| at the fakes vanishes with it (≤ 0.05, saw ≤ 0.002), the non-saturating one does
    # not (≥ 1, saw 15.5-19.2)
    g = critics["metrics"]["gan"]
    assert g["dD_at_fakes_rel"] <= 0.01 and g["dD_at_fakes"] <= 0.05
    assert g["flat_share_between"] >= 0.7
    assert abs(g["x_at_max_abs_dD"]) <= 0.5
    assert g["minimax_signal_at_fakes"] <= 0.05 and g["non_saturating_signal_at_fakes"] >= 1.0


def test_claim_the_wgan_critics_give_clean_gradients(critics):
    # clipped: min/max |f'| between the modes ≥ 0.2 (seeds 0-2: 0.50-0.55), |f'| at the fakes ≥ 0.3 of the
    # max (saw 0.51-0.66), a line fits with R² ≥ 0.97 (saw ≥ 0.993), the descent direction points towards
    # the real mode on ≥ 99% of the line (saw 100%). GP (best of 3 restarts): min/max ≥ 0.8 (saw ≥ 0.96),
    # mean |f'| within 0.15 of the best linear critic's slope 1 + Δμ/(2λ) = 1.2 (saw 1.19-1.20), and not the
    # wrong-sign local optimum (towards the reals on ≥ 99% of the line; saw 100%)
    w = critics["metrics"]["wgan"]
    assert w["min_abs_grad_between_rel"] >= 0.2 and w["grad_at_fakes_rel"] >= 0.3
    assert w["r2_between"] >= 0.97 and w["towards_real_share"] >= 0.99
    gp = critics["metrics"]["wgan-gp"]
    assert gp["linear_optimum_slope"] == pytest.approx(1.2)
    assert gp["wrong_sign_local_optimum_slope"] == pytest.approx(-0.8)
    chosen = gp["restarts"][gp["chosen_restart"]]["held_out_loss"]
    assert chosen == min(r["held_out_loss"] for r in gp["restarts"])
    assert gp["min_abs_grad_between_rel"] >= 0.8 and gp["towards_real_share"] >= 0.99
    assert abs(gp["mean_abs_grad_between"] - gp["linear_optimum_slope"]) <= 0.15
    assert gp["r2_between"] >= 0.99
