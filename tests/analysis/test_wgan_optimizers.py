"""`igm figure wgan-adam-vs-rmsprop` in quick mode, and its summary against hand computations."""

from __future__ import annotations

import json
import math

import pytest

from igm.analysis import figures
from igm.analysis.wgan_optimizers import PRESET, logged, optimizer_summary
from igm.train.config import load_config


def test_summary_by_hand():
    rows = [{"cosine": [(50, 0.5), (100, -0.25)], "em": [(50, 1.0), (100, 1.5), (150, 1.0)], "kid": 100.0},
            {"cosine": [(50, 0.25)], "em": [(50, 2.0), (100, 2.25)], "kid": 110.0}]
    s = optimizer_summary(rows)
    assert s["cosine_mean"] == pytest.approx((0.5 - 0.25 + 0.25) / 3)
    assert s["negative_share"] == pytest.approx(1 / 3) and s["cosine_min"] == -0.25
    assert s["em_jitter"] == pytest.approx((0.5 + 0.25) / 2)  # per run: mean |Δ| = 0.5 and 0.25
    assert s["kid"] == pytest.approx(105.0) and s["kid_std"] == pytest.approx(math.sqrt(50.0))


def test_logged_reads_the_later_record_of_a_step(tmp_path):
    lines = [{"step": 1, "x": 1.0}, {"step": 2, "y": 5.0}, {"step": 1, "x": 3.0}, {"step": 3, "x": -1.0}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(l) for l in lines) + "\n")
    assert logged(tmp_path, "x") == [(1, 3.0), (3, -1.0)]
    assert logged(tmp_path / "nothing", "x") == []


def test_quick_figure_runs_both_optimisers(tmp_path):
    result = figures.run("wgan-adam-vs-rmsprop", tmp_path, quick=True)
    assert set(result["optimizers"]) == {"rmsprop", "adam"}
    saved = json.loads((tmp_path / "wgan-adam-vs-rmsprop.json").read_text())
    for name in ("rmsprop", "adam"):
        runs = saved["runs"][name]
        cfg = load_config(tmp_path / name / "runs" / PRESET / "seed0" / "config.yaml")  # the WGAN code's BN critic
        assert cfg.model.critic_params["norm"] == "batch" and cfg.optim.optimizer == name
        assert [r["seed"] for r in runs] == [0, 1]
        assert all(r["cosine"] and all(-1 - 1e-6 <= c <= 1 + 1e-6 for _, c in r["cosine"]) for r in runs)
        assert all(len(r["cosine"]) == 4 and len(r["em"]) == 4 for r in runs)  # one per generator step
        s = saved["optimizers"][name]
        cos = [c for r in runs for _, c in r["cosine"]]
        assert s["cosine_mean"] == pytest.approx(sum(cos) / len(cos))
    assert (tmp_path / "wgan-adam-vs-rmsprop.png").is_file() and len(result["summary"]) == 2
