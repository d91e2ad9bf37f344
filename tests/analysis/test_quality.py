"""The ring-quality scoring of igm.analysis.quality on hand-written run directories, and one real
short run read back through run_one (resumable, keyed by its configuration)."""

import json

import pytest

from igm.analysis.quality import aggregate, converged, markdown_table, run_one, score_run


def test_converged_needs_every_mode_and_the_share():
    assert converged({"modes_covered": 8, "modes": 8, "high_quality": 0.70})
    assert converged({"eval/modes_covered": 8, "eval/modes": 8, "eval/high_quality": 0.9})
    assert not converged({"modes_covered": 7, "modes": 8, "high_quality": 0.95})
    assert not converged({"modes_covered": 8, "modes": 8, "high_quality": 0.6999})
    assert not converged({"modes_covered": 8, "modes": 8, "high_quality": float("nan")})
    assert not converged({"modes": 8})
    assert converged({"modes_covered": 8, "modes": 8, "high_quality": 0.5}, min_high_quality=0.5)


def _write_run(path, rows, summary):
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path / "summary.json").write_text(json.dumps(summary))


def test_score_run_finds_the_first_converged_step_and_its_seconds(tmp_path):
    rows = [
        {"step": 0, "event": "speed"},
        {"step": 50, "sec_per_step": 0.1, "critic_loss": 0.0},
        {"step": 50, "eval/high_quality": 0.3, "eval/modes_covered": 8, "eval/modes": 8, "eval/mmd2_target": 0.1},
        {"step": 100, "sec_per_step": 0.2},
        {"step": 100, "eval/high_quality": 0.75, "eval/modes_covered": 7, "eval/modes": 8, "eval/mmd2_target": 0.05},
        {"step": 150, "sec_per_step": 0.1},
        {"step": 150, "eval/high_quality": 0.72, "eval/modes_covered": 8, "eval/modes": 8, "eval/mmd2_target": 0.01},
        {"step": 200, "sec_per_step": 0.3},
        {"step": 200, "eval/high_quality": 0.8, "eval/modes_covered": 8, "eval/modes": 8, "eval/mmd2_target": 0.002},
        {"step": 200, "eval/high_quality": 0.8, "eval/modes_covered": 8, "eval/modes": 8, "eval/mmd2_target": 0.002},
    ]
    summary = {"step": 200, "rollbacks": 0, "eval/high_quality": 0.8, "eval/modes_covered": 8, "eval/modes": 8,
               "eval/mmd2_target": 0.002}
    _write_run(tmp_path / "ring-x" / "seed3", rows, summary)
    s = score_run(tmp_path / "ring-x" / "seed3", seed=3)
    assert s.preset == "ring-x" and s.seed == 3 and s.steps == 200
    assert s.converged and s.converged_step == 150  # step 100 lacks a mode
    assert s.converged_seconds == pytest.approx(50 * 0.1 + 50 * 0.2 + 50 * 0.1)
    assert s.seconds == pytest.approx(50 * (0.1 + 0.2 + 0.1 + 0.3))
    assert [c[0] for c in s.curve] == [50, 100, 150, 200]  # the repeated final evaluation counted once


def test_a_run_that_drifts_away_is_not_converged(tmp_path):
    rows = [
        {"step": 50, "sec_per_step": 0.1},
        {"step": 50, "eval/high_quality": 0.9, "eval/modes_covered": 8, "eval/modes": 8},
        {"step": 100, "sec_per_step": 0.1},
        {"step": 100, "eval/high_quality": 0.4, "eval/modes_covered": 5, "eval/modes": 8},
    ]
    summary = {"step": 100, "eval/high_quality": 0.4, "eval/modes_covered": 5, "eval/modes": 8, "eval/mmd2_target": 0.3}
    _write_run(tmp_path / "p" / "seed0", rows, summary)
    s = score_run(tmp_path / "p" / "seed0")
    assert not s.converged and s.converged_step == 50


def test_aggregate_and_table(tmp_path):
    base = dict(steps=200, modes=8, mmd2_target=0.01, rollbacks=0, curve=[])
    scores = [
        {**base, "preset": "ring-a", "seed": 1, "high_quality": 0.8, "modes_covered": 8, "converged": True,
         "converged_step": 150, "converged_seconds": 30.0, "seconds": 40.0},
        {**base, "preset": "ring-a", "seed": 0, "high_quality": 0.9, "modes_covered": 8, "converged": True,
         "converged_step": 100, "converged_seconds": 20.0, "seconds": 44.0},
        {**base, "preset": "ring-b", "seed": 0, "high_quality": 0.1, "modes_covered": 3, "converged": False,
         "converged_step": None, "converged_seconds": None, "seconds": 10.0},
    ]
    agg = aggregate(scores)
    assert [e["preset"] for e in agg] == ["ring-a", "ring-b"]
    a, b = agg
    assert a["converged"] == 2 and a["seeds"] == [0, 1] and a["median_step"] == 125 and a["median_seconds"] == 25
    assert b["converged"] == 0 and b["median_step"] is None
    table = markdown_table(agg).splitlines()
    assert table[2] == "| `ring-a` | 2/2 | 0.90/8, 0.80/8 | 125 of 200 | 25 | 42 |"
    assert table[3] == "| `ring-b` | 0/1 | 0.10/3 | never | — | 10 |"


def test_run_one_trains_reads_back_and_restarts_on_a_new_config(tmp_path):
    extra = ["train.steps=4", "eval.samples=200", "train.checkpoint_every=2", "train.log_every=2", "train.sample_every=0"]
    first = run_one("ring-smmd", 0, tmp_path / "r", eval_every=2, extra=extra)
    assert first["steps"] == 4 and [c[0] for c in first["curve"]] == [2, 4]
    mtime = (tmp_path / "r" / "summary.json").stat().st_mtime_ns
    again = run_one("ring-smmd", 0, tmp_path / "r", eval_every=2, extra=extra)  # read back, not retrained
    assert again == first and (tmp_path / "r" / "summary.json").stat().st_mtime_ns == mtime
    other = run_one("ring-smmd", 0, tmp_path / "r", eval_every=2, extra=extra[:1] + ["train.steps=6"] + extra[1:])
    assert other["steps"] == 6


def test_run_one_resumes_an_interrupted_run(tmp_path):
    extra = ["train.steps=4", "eval.samples=200", "train.checkpoint_every=2", "train.log_every=2", "train.sample_every=0"]
    full = run_one("ring-smmd", 1, tmp_path / "full", eval_every=2, extra=extra)
    # an interrupted run: trained to step 2 with the same configuration, then stopped
    from igm.analysis import quality
    from igm.train import apply_overrides, build_run, presets, train
    from igm.train.loop import TrainingInterrupted

    cfg = apply_overrides(presets.get("ring-smmd"), quality.run_overrides(1, 2, extra))
    run = build_run(cfg, tmp_path / "cut")
    (tmp_path / "cut" / "quality-config.txt").write_text(quality._config_hash(cfg) + "\n")

    def stop(event, step, values):
        if event == "checkpoint" and step == 2:
            raise TrainingInterrupted(step, None)

    with pytest.raises(TrainingInterrupted):
        train(run, callbacks=[stop])
    assert not (tmp_path / "cut" / "summary.json").exists()
    resumed = run_one("ring-smmd", 1, tmp_path / "cut", eval_every=2, extra=extra)
    assert resumed["high_quality"] == full["high_quality"] and resumed["mmd2_target"] == full["mmd2_target"]


def test_config_hash_ignores_bookkeeping_but_not_training_keys():
    # a finished run stays valid when only the number of kept checkpoints changes; a training
    # setting (the steps, the critic's learning rate) makes it another run
    from igm.analysis.quality import _config_hash
    from igm.train import apply_overrides, presets

    base = presets.get("ring-smmd")
    key = _config_hash(base)
    assert _config_hash(apply_overrides(base, ["train.keep_checkpoints=7"])) == key
    assert _config_hash(apply_overrides(base, ["train.steps=1600"])) != key
    assert _config_hash(apply_overrides(base, ["optim.lr_critic=2e-4"])) != key
