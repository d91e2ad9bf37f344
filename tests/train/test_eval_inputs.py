"""`igm eval` refuses what it cannot score honestly (shape, channels, range), records its protocol in
eval.json and above its table, and in-training evaluation rows record theirs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

import igm.train as T
from igm.metrics.features import resize_images, shipped_weights
from igm.train.scoring import check_images, match_shape, score

FAST = ["--n", "60", "--subset-size", "50", "--subsets", "3"]


def _igm(*args, cwd):
    return subprocess.run([sys.executable, "-m", "igm.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def _fails(proc, *parts):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for part in parts:
        assert part in proc.stderr, proc.stderr


def test_a_wrong_size_is_an_error_unless_resize_is_asked(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "odd.npy", rng.uniform(-1, 1, size=(100, 3, 5)).astype(np.float32))  # 100 images of 3×5
    _fails(_igm("eval", "odd.npy", "--data", "digits", *FAST, cwd=tmp_path), "1×3×5", "1×8×8", "--resize")
    ok = _igm("eval", "odd.npy", "--data", "digits", "--resize", "--json", "r.json", *FAST, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads((tmp_path / "r.json").read_text())["protocol"]["generated"]["resized"] == [1, 8, 8]


def test_other_channels_are_an_error_even_with_resize(tmp_path):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "rgb.npy", rng.integers(0, 256, size=(60, 3, 16, 16), dtype=np.uint8))
    for extra in ((), ("--resize",)):
        _fails(_igm("eval", "rgb.npy", "--data", "digits", *extra, *FAST, cwd=tmp_path), "channels differ")


def test_values_outside_the_range_are_an_error_with_the_fix(tmp_path):
    rng = np.random.default_rng(2)
    np.save(tmp_path / "pixels.npy", rng.uniform(0, 255, size=(60, 1, 8, 8)).astype(np.float32))
    np.save(tmp_path / "unit.npy", rng.uniform(0, 1, size=(60, 1, 8, 8)).astype(np.float32))
    ref = ("--data", "digits", "--cache", "c")
    _fails(_igm("eval", "pixels.npy", *ref, *FAST, cwd=tmp_path), "outside range=[-1,1]", "uint8")
    _fails(_igm("eval", "pixels.npy", *ref, "--range", "[0,1]", *FAST, cwd=tmp_path), "outside range=[0,1]")
    warned = _igm("eval", "unit.npy", *ref, *FAST, cwd=tmp_path)
    assert warned.returncode == 0 and "--range [0,1]" in warned.stderr, warned.stderr
    quiet = _igm("eval", "unit.npy", *ref, "--range", "[0,1]", *FAST, cwd=tmp_path)
    assert quiet.returncode == 0 and "warning" not in quiet.stderr, quiet.stderr


def test_check_images_and_match_shape_directly():
    import torch

    x = torch.linspace(-1.5, 1.5, 2 * 64).reshape(2, 1, 8, 8)
    with pytest.raises(ValueError, match="--clamp"):
        check_images(x, "x")
    assert float(check_images(x, "x", clamp=True).abs().max()) == 1.0
    with pytest.raises(ValueError, match="NaN"):
        check_images(torch.full((1, 1, 2, 2), float("nan")), "x", clamp=True)
    within = torch.full((1, 1, 2, 2), 1 + 5e-4)  # float rounding of a [-1, 1] map passes unchanged
    assert check_images(within, "x") is within
    small = torch.rand(3, 1, 8, 8) * 2 - 1
    assert torch.equal(match_shape(small, (1, 16, 16), "s", "r", resize=True), resize_images(small, (16, 16)))
    assert match_shape(small, (1, 8, 8), "s", "r") is small


def test_eval_json_and_stdout_carry_the_protocol(tmp_path):
    rng = np.random.default_rng(3)
    np.save(tmp_path / "a.npy", rng.uniform(-1, 1, size=(60, 1, 8, 8)).astype(np.float32))
    proc = _igm("eval", "a.npy", "--data", "digits", "--json", "out.json", "--seed", "4", "--cache", "c", *FAST,
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((tmp_path / "out.json").read_text())["protocol"]
    assert rec["reference"]["dataset"] == "digits" and rec["reference"]["images"] == 60
    assert rec["reference"]["shape"] == [1, 8, 8] and rec["generated"]["samples"] == 60
    assert rec["extractor"]["name"] == "digits"  # the digits data's own net, not a CLI default
    assert rec["extractor"]["weights_sha256"] == hashlib.sha256(shipped_weights("digits").read_bytes()).hexdigest()
    assert rec["kid"] == {"subsets": 3, "subset_size": 50} and rec["seed"] == 4
    assert {"igm", "torch"} <= set(rec["versions"])
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("reference") and lines.index("") < [i for i, l in enumerate(lines) if l.startswith("KID  ")][0]
    again = _igm("eval", "a.npy", "--data", "digits", "--seed", "4", "--cache", "c", *FAST, cwd=tmp_path)
    assert "features from the cache" in again.stdout.splitlines()[0]


def test_training_rows_record_the_protocol(tmp_path):
    out = tmp_path / "run"
    T.fit("digits-gan", out, ["train.progress=false", "train.sample_every=0", "eval.samples=100", "eval.kid_subsets=3",
                              "eval.real_samples=120", "train.batch_size=16", "train.steps=4", "eval.every=2",
                              "model.generator_params.base_channels=8", "model.critic_params.base_channels=8",
                              f"eval.cache_dir={tmp_path / 'cache'}"])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/kid" in r]
    assert len(evals) == 2 and all(r["eval_protocol"] == evals[0]["eval_protocol"] for r in evals)
    rec = evals[0]["eval_protocol"]
    assert rec["reference"] == {"dataset": "digits", "params": {"size": 16}, "split": "all", "shape": [1, 16, 16],
                                "images": 120, "seed": 0}
    assert rec["generated"]["samples"] == 100 and rec["kid"] == {"subsets": 3, "subset_size": 100}
    assert rec["extractor"]["name"] == "digits" and rec["extractor"]["resize"]["size"] == [8, 8]
    assert json.loads((out / "summary.json").read_text())["eval_protocol"] == rec


def test_a_run_is_scored_with_its_own_extractor(tmp_path):
    out = tmp_path / "run"
    T.fit("digits-gan", out, ["train.progress=false", "train.sample_every=0", "eval.every=0", "train.steps=1",
                              "train.batch_size=8", "model.generator_params.base_channels=8",
                              "model.critic_params.base_channels=8", "eval.extractor=raw", "eval.extractor_params.size=4"])
    proc = _igm("eval", str(out), *FAST, "--cache", "c", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((out / "eval.json").read_text())["protocol"]
    assert rec["extractor"]["name"] == "raw" and rec["extractor"]["params"] == {"size": 4}


def test_score_against_samples_needs_the_same_shape(tmp_path):
    rng = np.random.default_rng(5)
    np.save(tmp_path / "a.npy", rng.uniform(-1, 1, size=(40, 1, 8, 8)).astype(np.float32))
    np.save(tmp_path / "b.npy", rng.uniform(-1, 1, size=(40, 1, 28, 28)).astype(np.float32))
    with pytest.raises(ValueError, match="1×8×8 but .*b.npy are 1×28×28"):
        score(tmp_path / "a.npy", against=tmp_path / "b.npy", n=40, subsets=2, subset_size=30)
    result = score(tmp_path / "a.npy", against=tmp_path / "b.npy", n=40, subsets=2, subset_size=30, resize=True)
    assert result["protocol"]["extractor"]["name"] == "mnist"  # the reference's 1×28×28 decides


def test_eval_reports_every_metric_as_the_pure_functions_compute_it(tmp_path):
    import torch

    from igm.metrics import density_coverage, fid, fid_infinity, kid, precision_recall
    from igm.metrics.infinity import infinity_sizes

    rng = np.random.default_rng(6)
    b = rng.uniform(-1, 1, size=(120, 1, 4, 4)).astype(np.float32)
    a = (0.5 * rng.uniform(-1, 1, size=b.shape) + 0.2).astype(np.float32)  # narrower and shifted: P, R < 1
    np.save(tmp_path / "fake.npy", a)
    np.save(tmp_path / "real.npy", b)
    proc = _igm("eval", "fake.npy", "--against", "real.npy", "--extractor", "raw", "--n", "120", "--subsets", "4",
                "--subset-size", "100", "--json", "e.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads((tmp_path / "e.json").read_text())
    fake, real = torch.from_numpy(a).reshape(120, -1).double(), torch.from_numpy(b).reshape(120, -1).double()
    sizes = infinity_sizes(120, smallest=24)  # n/5 when there are no more than 5,000 samples
    assert got["protocol"]["infinity"]["sizes"] == sizes
    expected = {"kid": kid(real, fake, subsets=4, subset_size=100, seed=0)[0], "fid": fid(real, fake),
                "fid_infinity": fid_infinity(real, fake, sizes=sizes, seed=0)}
    expected["precision"], expected["recall"] = precision_recall(real, fake, k=3)
    expected["density"], expected["coverage"] = density_coverage(real, fake, k=5)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert got["recall"] < 0.5 < got["precision"]  # narrow fakes: inside the real support, covering little of it
    for label in ("FID∞", "precision", "recall", "density", "coverage"):
        assert any(line.startswith(label) for line in proc.stdout.splitlines()), label
