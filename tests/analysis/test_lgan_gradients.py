"""``igm figure lgan-gradients``: shares recomputed by brute force, and the paper's claim."""

import json
import math

import pytest
import torch

from igm import cli
from igm.analysis import figures
from igm.analysis.lgan_gradients import (LGANGradientOptions, chance_level, fake_gradients, make_critic,
                                         min_angles, parse_variant)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lgan")
    assert cli.main(["figure", "lgan-gradients", "--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "lgan-gradients.json").read_text())


def angle_deg(u, v):
    dot = u[0] * v[0] + u[1] * v[1]
    nu, nv = math.hypot(*u), math.hypot(*v)
    return math.degrees(math.acos(max(-1.0, min(1.0, dot / (nu * nv)))))


def test_cli_writes_png_and_one_result_per_variant(quick_run):
    out, data = quick_run
    assert (out / "lgan-gradients.png").stat().st_size > 10_000
    assert [r["variant"] for r in data["results"]] == list(figures.get("lgan-gradients").quick["variants"])
    assert data["summary"]


def test_share_matches_a_brute_force_loop(quick_run):
    _, data = quick_run
    alpha = data["options"]["angle_deg"]
    for r in data["results"]:
        hits, angles = 0, []
        for y, g in zip(data["fake"], r["gradients"]):
            best = min(angle_deg(g, (x[0] - y[0], x[1] - y[1])) for x in data["real"])
            angles.append(best)
            hits += best <= alpha
        assert r["share"] == pytest.approx(hits / len(data["fake"]), abs=1e-9)
        assert r["min_angle_deg"] == pytest.approx(angles, abs=1e-3)


def covered_fraction(y, real, alpha):
    """Exact measure of the union of arcs [θ_i − α, θ_i + α] on the circle, as a fraction."""
    a = math.radians(alpha)
    arcs = []
    for x in real:
        t = math.atan2(x[1] - y[1], x[0] - y[0])
        lo, hi = t - a, t + a
        for shift in (-2 * math.pi, 0.0, 2 * math.pi):  # unwrap into [−π, π]
            arcs.append((max(lo + shift, -math.pi), min(hi + shift, math.pi)))
    arcs = sorted((lo, hi) for lo, hi in arcs if hi > lo)
    total, cur_lo, cur_hi = 0.0, None, None
    for lo, hi in arcs:
        if cur_hi is None or lo > cur_hi:
            if cur_hi is not None:
                total += cur_hi - cur_lo
            cur_lo, cur_hi = lo, hi
        else:
            cur_hi = max(cur_hi, hi)
    total += cur_hi - cur_lo
    return total / (2 * math.pi)


def test_chance_level_matches_exact_arc_union(quick_run):
    _, data = quick_run
    alpha = data["options"]["angle_deg"]
    exact = sum(covered_fraction(y, data["real"], alpha) for y in data["fake"]) / len(data["fake"])
    assert data["chance"] == pytest.approx(exact, abs=2.0 / data["options"]["chance_directions"] + 1e-3)


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    critic = make_critic(LGANGradientOptions(hidden=16, activation="tanh")).double()
    y = torch.randn(5, 2, dtype=torch.float64)
    g = fake_gradients(critic, y)
    h = 1e-6
    for j in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[j] = h
        with torch.no_grad():
            fd = (critic(y + e) - critic(y - e)).reshape(-1) / (2 * h)
        assert torch.allclose(g[:, j], fd, atol=1e-6)


def test_min_angles_and_variants():
    fake = torch.tensor([[0.0, 0.0]])
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert min_angles(torch.tensor([[1.0, 1.0]]), fake, real).item() == pytest.approx(45.0, abs=1e-4)
    assert min_angles(torch.tensor([[1.0, 0.1]]), fake, real).item() == pytest.approx(math.degrees(math.atan(0.1)), abs=1e-4)
    assert chance_level(fake, real, 10.0, 3600) == pytest.approx(40 / 360, abs=1e-3)
    assert parse_variant("softplus:none", 0.1) == ("softplus", "maxgp", 0.0)
    assert parse_variant("exp:gp:2", 0.1) == ("exp", "gp", 2.0)
    with pytest.raises(ValueError):
        parse_variant("nope:maxgp", 0.1)


def test_claim_maxgp_gradients_point_at_real_samples(quick_run):
    # seed 004, figure 3: with MaxGP the gradient at (almost) every fake points to a real sample
    _, data = quick_run
    maxgp = [r for r in data["results"] if r["penalty"] == "maxgp"]
    assert maxgp
    for r in maxgp:
        assert r["share"] >= 0.8, r["variant"]
        assert r["share"] >= data["chance"] + 0.5, r["variant"]
        assert r["median_angle_deg"] < 5.0
