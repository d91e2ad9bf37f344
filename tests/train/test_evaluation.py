"""In-training evaluation: KID/FID with the digits extractor, best-by-KID, the KID-adaptive LR,
the feature cache and `igm eval`."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import igm.train as T
from igm.metrics import fid, kid
from igm.metrics.cache import cached_features
from igm.train.evaluation import ImageEvaluator, KIDAdaptiveLR

BASE = ["train.progress=false", "train.sample_every=0", "eval.samples=200", "eval.kid_subsets=5",
        "eval.real_samples=300", "train.batch_size=16", "model.generator_params.base_channels=8",
        "model.critic_params.base_channels=8"]


@pytest.fixture
def cache(tmp_path):
    return f"eval.cache_dir={tmp_path / 'cache'}"


def test_evaluator_matches_the_metric_functions(cache):
    cfg = T.apply_overrides(T.presets.get("digits-wgan-gp"), BASE + [cache, "eval.every=5"])
    run = T.build_run(cfg, None)
    ev = run.evaluator
    assert isinstance(ev, ImageEvaluator) and ev.key == "kid"
    out = ev(run.generator.eval())
    real = ev.real_features()
    fake = ev.sample_features(run.generator, 200, cfg.train.seed + 4242)
    mean, std = kid(real, fake, subsets=5, subset_size=200, seed=0)
    assert out["kid"] == pytest.approx(mean, rel=1e-12) and out["kid_std"] == pytest.approx(std, rel=1e-12)
    assert out["fid"] == pytest.approx(fid(real, fake), rel=1e-12)


def test_feature_cache_round_trip(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return torch.arange(6.0).reshape(3, 2)

    a, hit_a = cached_features({"k": 1}, compute, tmp_path)
    b, hit_b = cached_features({"k": 1}, compute, tmp_path)
    c, hit_c = cached_features({"k": 2}, compute, tmp_path)
    assert (hit_a, hit_b, hit_c) == (False, True, False) and len(calls) == 2
    assert torch.equal(a, b)


def test_best_checkpoint_is_the_lowest_kid(tmp_path, cache):
    out = tmp_path / "run"
    T.fit("digits-smmd", out, BASE + [cache, "train.steps=9", "eval.every=3", "train.checkpoint_every=3"])
    evals = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if "eval/kid" in l]
    assert [e["step"] for e in evals] == [3, 6, 9]
    best_step = min(evals, key=lambda e: e["eval/kid"])["step"]
    state = torch.load(out / "checkpoints" / "best.pt", weights_only=True)
    assert state["step"] == best_step
    assert state["best"] == pytest.approx(min(e["eval/kid"] for e in evals))


def test_kid_adaptive_decays_after_patience_and_round_trips(cache):
    cfg = T.apply_overrides(
        T.presets.get("digits-smmd"),
        BASE + [cache, "eval.adaptive=true", "eval.adaptive_every=1", "eval.adaptive_window=2",
                "eval.adaptive_patience=2", "eval.adaptive_threshold=0.0", "eval.adaptive_samples=100",
                "eval.adaptive_factor=0.5", "eval.adaptive_floor=3e-5"],
    )
    run = T.build_run(cfg, None)
    adaptive = run.adaptive
    assert isinstance(adaptive, KIDAdaptiveLR)
    opts, scheds = [run.opt_g, run.opt_c], [None, None]
    actions = [adaptive.step(s, run.generator, opts, scheds)["action"] for s in range(1, 8)]
    # 2 warm-up tests, then (threshold 0: never significant) a decay every 2nd test
    assert actions == ["warming up", "warming up", "keep", "learning rates × 0.5", "keep", "learning rates × 0.5", "keep"]
    assert run.opt_g.param_groups[0]["lr"] == pytest.approx(5e-5)  # 2e-4 → 1e-4 → 5e-5
    adaptive.step(8, run.generator, opts, scheds)
    adaptive.step(9, run.generator, opts, scheds)
    assert run.opt_g.param_groups[0]["lr"] == pytest.approx(3e-5)  # floored
    fresh = KIDAdaptiveLR(cfg, run.evaluator)
    fresh.load_state_dict(adaptive.state_dict())
    assert fresh.failures == adaptive.failures and len(fresh.history) == len(adaptive.history)
    assert all(torch.equal(a, b) for a, b in zip(fresh.history, adaptive.history))


def test_adaptive_decisions_are_logged(tmp_path, cache):
    out = tmp_path / "run"
    T.fit("digits-gan", out, BASE + [cache, "train.steps=4", "eval.adaptive=true", "eval.adaptive_every=2",
                                     "eval.adaptive_window=1", "eval.adaptive_samples=100"])
    events = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if "kid_adaptive" in l]
    assert [e["step"] for e in events] == [2, 4]
    assert "p_value" in events[1] and 0.0 <= events[1]["p_value"] <= 1.0


def test_missing_inception_weights_is_a_config_error(tmp_path):
    with pytest.raises(T.ConfigError, match="eval.every=0"):
        cfg = T.apply_overrides(T.presets.get("digits-gan"), BASE + ["eval.every=5", "eval.extractor=inception",
                                                                      f"eval.extractor_params.weights={tmp_path / 'nope.pth'}"])
        T.build_run(cfg, None)


def _igm(*args, cwd):
    return subprocess.run([sys.executable, "-m", "igm.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_igm_eval_arrays_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, size=(60, 1, 8, 8)).astype(np.float32)  # float arrays are read as [-1, 1]
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", a[::-1].copy())
    proc = _igm("eval", "a.npy", "--against", "b.npy", "--n", "60", "--subset-size", "50", "--subsets", "3",
                "--json", "out.json", "--extractor", "raw", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["fid"] == pytest.approx(0.0, abs=1e-6)  # the same images in another order
    assert "KID" in proc.stdout and "FID" in proc.stdout
    for args, message in [(("eval", "nope.npy", "--data", "digits"), "not found"),
                          (("eval", "a.npy"), "exactly one reference"),
                          (("eval", "a.npy", "--data", "digits", "--extractor", "nosuch"), "unknown feature extractor")]:
        bad = _igm(*args, cwd=tmp_path)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
