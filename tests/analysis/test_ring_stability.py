"""``igm figure ring-stability``: the convergence criterion on hand-built sample sets, the table,
and the quick figure through the CLI (with resumption)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import igm.data
from igm.analysis import ring_stability as rs
from igm.cli import main


@pytest.fixture(scope="module")
def ring():
    return igm.data.get("ring", std=0.01)


def test_true_ring_samples_converge(ring):
    x = ring.sample(2000, torch.Generator().manual_seed(0)).numpy()
    v = rs.ring_verdict(x, ring)
    assert v["modes_covered"] == 8 and v["modes"] == 8
    # P(‖N(0, σ²I₂)‖ ≤ 3σ) = 1 − exp(−9/2) ≈ 0.989
    assert v["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert sum(v["per_mode"]) == round(v["high_quality"] * 2000)
    assert v["converged"] is True and v["finite"] is True


def test_one_mode_is_not_converged(ring):
    x = ring.modes[3].numpy() + 0.01 * np.random.default_rng(0).standard_normal((1000, 2))
    v = rs.ring_verdict(x, ring)
    assert v["modes_covered"] == 1 and v["per_mode"][3] == round(v["samples"] * v["high_quality"])
    assert v["high_quality"] > 0.95  # sharp, but collapsed
    assert v["converged"] is False
    assert rs.ring_verdict(x, ring, min_modes=1)["converged"] is True  # the threshold is what rejects it


def test_uniform_samples_are_not_converged(ring):
    x = np.random.default_rng(1).uniform(-3, 3, size=(4000, 2))
    v = rs.ring_verdict(x, ring)
    # expected high-quality share: 8 discs of radius 0.03 over a 6 × 6 square
    assert v["high_quality"] == pytest.approx(8 * math.pi * 0.03**2 / 36, abs=0.004)
    assert v["modes_covered"] == 0  # no mode gets 0.1 × 500 = 50 samples
    assert v["converged"] is False


def test_hand_counted_modes_and_thresholds(ring):
    modes = ring.modes.double().numpy()
    # 100 exactly on each of modes 0..4; 30 on mode 5 (2 std off: still high quality);
    # 10 on mode 6 (4 std off: not high quality); 60 at the origin (far from every mode)
    off = np.array([0.02, 0.0])
    x = np.concatenate([
        np.repeat(modes[:5], 100, axis=0),
        np.repeat(modes[5:6] + off, 30, axis=0),
        np.repeat(modes[6:7] + 2 * off, 10, axis=0),
        np.zeros((60, 2)),
    ])
    n = len(x)  # 600: a covered mode needs ceil(0.1 · 600 / 8) = 8 high-quality samples
    s = rs.ring_statistics(x, modes, 0.01)
    assert s["per_mode"] == [100, 100, 100, 100, 100, 30, 0, 0]
    assert s["min_count"] == 8 and s["modes_covered"] == 6
    assert s["high_quality"] == pytest.approx(530 / n)
    assert rs.converged(s, min_modes=6, min_high_quality=0.88) is True
    assert rs.converged(s, min_modes=6, min_high_quality=0.89) is False  # 530/600 = 0.883
    assert rs.converged(s, min_modes=7, min_high_quality=0.0) is False
    # with a larger share, mode 5's 30 samples no longer count (ceil(0.5 · 600 / 8) = 38)
    assert rs.ring_statistics(x, modes, 0.01, mode_share=0.5)["modes_covered"] == 5
    # a wider quality radius brings mode 6 in
    assert rs.ring_statistics(x, modes, 0.01, quality_radius=4.5)["per_mode"][6] == 10


def test_non_finite_samples_count_as_low_quality(ring):
    x = ring.sample(800, torch.Generator().manual_seed(2)).numpy()
    x[:400] = np.nan
    v = rs.ring_verdict(x, ring)
    assert v["finite"] is False and v["high_quality"] < 0.5 and v["converged"] is False
    # the other half alone would pass: the non-finite samples are what rejects the run
    assert v["modes_covered"] == 8 and rs.converged({**v, "finite": True}) is True
    with pytest.raises(ValueError):
        rs.ring_statistics(np.zeros((3, 3)), ring.modes, 0.01)


def test_paper_settings_reach_the_run_config():
    opts = rs.RingStabilityOptions(steps=7)
    g = rs.run_config("gram", 200, 16, opts)
    assert g.objective.name == "gram" and g.objective.params["sigmas"] == [1.0]
    assert g.model.critic_out == 10 and g.model.critic_params == {"hidden": 100, "depth": 2, "activation": "relu"}
    assert g.model.generator_params == {"hidden": 200, "depth": 2, "activation": "relu"} and g.model.z_dim == 16
    assert g.optim.lr_generator == g.optim.lr_critic == 1e-3 and tuple(g.optim.betas) == (0.5, 0.999)
    assert g.data.params["std"] == 0.01 and g.train.batch_size == 200 and g.train.steps == 7
    assert g.optim.schedule == "constant" and g.train.n_critic == 1
    gan = rs.run_config("gan", 20, 2, opts)
    assert gan.objective.name == "gan" and gan.optim.lr_generator == 1e-4 and gan.train.n_critic == 1
    mmd = rs.run_config("mmd-net", 20, 2, opts)
    assert mmd.optim.optimizer == "rmsprop" and mmd.objective.params["kernel"] == {"name": "gaussian", "sigma": 1.0}


def test_quick_figure_through_the_cli(tmp_path, capsys):
    out = tmp_path / "fig"
    runs = tmp_path / "runs"
    assert main(["figure", "ring-stability", "--quick", "--out", str(out), f"runs_dir={runs}"]) == 0
    table = (out / "ring-stability.md").read_text()
    assert "**gram**" in table and "**gan**" in table and "| 20 |" in table
    payload = json.loads((out / "ring-stability.json").read_text())
    assert {r["method"] for r in payload["runs"]} == {"gram", "gan"}
    for r in payload["runs"]:
        assert r["step"] == 20 and r["status"] == "finished" and r["modes"] == 8
        assert isinstance(r["converged"], bool) and 0 <= r["high_quality"] <= 1
    assert payload["counts"]["gram"]["runs"] == 1
    for name in ("ring-stability.png", "ring-stability-gram.png", "ring-stability-gan.png"):
        with open(out / name, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not (out / "runs").exists() and (runs / "gram" / "h20-z2-seed0" / "ring_result.json").is_file()
    printed = capsys.readouterr().out
    assert "gram: 0/1 converged" in printed or "gram: 1/1 converged" in printed

    # a second call reads the finished runs back instead of training again
    stamp = (runs / "gram" / "h20-z2-seed0" / "ring_result.json").stat().st_mtime_ns
    assert main(["figure", "ring-stability", "--quick", "--out", str(out), f"runs_dir={runs}"]) == 0
    assert (runs / "gram" / "h20-z2-seed0" / "ring_result.json").stat().st_mtime_ns == stamp
    again = json.loads((out / "ring-stability.json").read_text())
    assert [r["high_quality"] for r in again["runs"]] == [r["high_quality"] for r in payload["runs"]]
