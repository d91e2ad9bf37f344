"""`igm presets`, `igm train` and `igm sample` as a user runs them: `python -m igm.cli` in a fresh
working directory. Independent commands run concurrently (each interpreter pays the torch import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TINY = [
    "train.batch_size=16",
    "train.progress=false",
    "train.log_every=1",
    "train.sample_every=0",
    "eval.every=0",
    "eval.samples=200",
    "model.generator_params.hidden=16",
    "model.critic_params.hidden=16",
]


def run_all(commands: dict[str, list[str]], cwd: Path) -> dict[str, tuple[int, str, str]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("IGM_DEBUG", None)
    procs = {
        key: subprocess.Popen(
            [sys.executable, "-m", "igm.cli", *args], cwd=cwd, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for key, args in commands.items()
    }
    out = {}
    for key, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[key] = (proc.returncode, stdout, stderr)
    return out


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Runs each subprocess command once; tests look up their result by name."""
    cwd = tmp_path_factory.mktemp("cli")
    (cwd / "full").mkdir()
    (cwd / "full" / "notes.txt").write_text("keep me\n")
    wave1 = {
        "presets": ["presets"],
        "train": ["train", "--preset", "ring-smmd", "--out", "D", "train.steps=5", *TINY],
        "non_empty": ["train", "--preset", "ring-smmd", "--out", "full", "train.steps=2", *TINY],
        "unknown_key": ["train", "--preset", "ring-smmd", "--out", "U", "train.stepz=3"],
        "sample_missing": ["sample", "nowhere", "--out", "x.png"],
    }
    results = run_all(wave1, cwd)
    assert results["train"][0] == 0, results["train"][2]
    wave2 = {
        "sample_png": ["sample", "D", "--out", "out/x.png", "--n", "50"],
        "sample_npy": ["sample", "D", "--out", "x.npy", "--n", "37", "--seed", "3"],
    }
    results.update(run_all(wave2, cwd))
    return cwd, results


def in_process(capsys, *args):
    """``igm ARGS`` in this interpreter: (exit code, stdout, stderr)."""
    from igm.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(result, *fragments):
    code, out, err = result
    assert code == 2, (code, out, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("igm: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)
    return lines[0]


# ------------------------------------------------------------------------------ subprocesses


def test_presets_lists_ring_smmd_with_description(cli):
    code, out, err = cli[1]["presets"]
    assert code == 0, err
    lines = out.splitlines()
    row = next(line for line in lines if line.split()[0] == "ring-smmd")
    assert len(row.split(None, 1)) == 2 and row.split(None, 1)[1].strip()  # a description follows
    assert not any(line.startswith("_") for line in lines)  # base files are not presets


def test_train_writes_the_run_directory_and_prints_it(cli):
    cwd, results = cli
    code, out, err = results["train"]
    assert code == 0, err
    assert "Traceback" not in err
    assert "run directory: D" in out
    assert "final:" in out and "mmd2_target" in out
    run = cwd / "D"
    assert (run / "config.yaml").is_file() and (run / "summary.json").is_file()
    assert json.loads((run / "summary.json").read_text())["step"] == 5
    assert (run / "checkpoints" / "last.pt").is_file()
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines() if "generator_loss" in line]
    assert steps == [1, 2, 3, 4, 5]


def test_non_empty_directory_without_resume(cli, capsys, monkeypatch):
    cwd, results = cli
    line = one_line_error(results["non_empty"], "full", "--resume")
    assert "not empty" in line
    assert sorted(p.name for p in (cwd / "full").iterdir()) == ["notes.txt"]  # untouched
    monkeypatch.chdir(cwd)
    before = (cwd / "D" / "checkpoints" / "last.pt").read_bytes()
    one_line_error(in_process(capsys, "train", "--preset", "ring-smmd", "--out", "D", "train.steps=2"), "--resume D")
    assert (cwd / "D" / "checkpoints" / "last.pt").read_bytes() == before


def test_unknown_key_is_named(cli):
    cwd, results = cli
    one_line_error(results["unknown_key"], "train.stepz")
    assert not (cwd / "U").exists()  # nothing is created for a config error


def test_sample_png(cli):
    cwd, results = cli
    code, out, err = results["sample_png"]
    assert code == 0, err
    assert "wrote 50 samples" in out
    from PIL import Image

    with Image.open(cwd / "out" / "x.png") as im:
        assert im.format == "PNG" and min(im.size) > 50


def test_sample_npy(cli, capsys, monkeypatch):
    cwd, results = cli
    code, out, err = results["sample_npy"]
    assert code == 0, err
    arr = np.load(cwd / "x.npy")
    assert arr.shape == (37, 2) and arr.dtype == np.float32
    assert np.isfinite(arr).all()
    # the checkpoint file gives the same samples as its run directory for the same seed
    monkeypatch.chdir(cwd)
    code, out, err = in_process(capsys, "sample", "D/checkpoints/last.pt", "--out", "y.npy", "--n", "37", "--seed", "3")
    assert code == 0, err
    assert np.array_equal(arr, np.load(cwd / "y.npy"))
    code, out, err = in_process(capsys, "sample", "D", "--out", "z.npy", "--n", "37", "--seed", "4")
    assert code == 0 and not np.array_equal(arr, np.load(cwd / "z.npy"))


def test_sample_missing_run_directory(cli):
    one_line_error(cli[1]["sample_missing"], "nowhere")


# -------------------------------------------------------------- in this process (same code path)


def test_sample_bad_suffix(cli, capsys, monkeypatch):
    cwd, _ = cli
    monkeypatch.chdir(cwd)
    one_line_error(in_process(capsys, "sample", "D", "--out", "x.jpg"), "x.jpg", ".png", ".npy")
    one_line_error(in_process(capsys, "sample", "nowhere", "--out", "x.txt"), ".png")
    assert not (cwd / "x.jpg").exists()


def test_sample_bad_n(cli, capsys, monkeypatch):
    monkeypatch.chdir(cli[0])
    one_line_error(in_process(capsys, "sample", "D", "--out", "q.npy", "--n", "0"), "--n")


def test_train_default_directory_is_runs_preset(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = in_process(capsys, "train", "--preset", "ring-mmd-net", "train.steps=2", *TINY)
    assert code == 0, err
    assert (tmp_path / "runs" / "ring-mmd-net" / "checkpoints" / "last.pt").is_file()
    assert "run directory: runs/ring-mmd-net" in out


def test_train_from_a_yaml_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text("objective: {name: wgan-gp}\ntrain: {steps: 2}\n")
    code, out, err = in_process(capsys, "train", "cfg.yaml", *TINY, "--out", "Y")
    assert code == 0, err
    assert json.loads((tmp_path / "Y" / "summary.json").read_text())["step"] == 2
    from igm.train import load_config

    cfg = load_config(tmp_path / "Y" / "config.yaml")
    assert cfg.objective.name == "wgan-gp" and cfg.train.batch_size == 16
    # without --out: runs/<config stem>
    code, out, err = in_process(capsys, "train", "cfg.yaml", *TINY)
    assert code == 0, err
    assert (tmp_path / "runs" / "cfg" / "summary.json").is_file()


def test_train_overrides_after_options(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.yaml").write_text("objective: {name: wgan-gp}\n")
    try:
        code, out, err = in_process(capsys, "train", "cfg.yaml", "--out", "Y", "train.steps=2", *TINY)
    except SystemExit as exc:  # argparse's exit
        code = exc.code
    assert code == 0
    assert json.loads((tmp_path / "Y" / "summary.json").read_text())["step"] == 2


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["train", "--preset", "ring-smmd", "--out", "T", "train.steps=abc"], ["train.steps", "abc"]),
        (["train", "--preset", "ring-smmd", "--out", "T", "optim.schedule=cosine"], ["optim.schedule", "linear"]),
        (["train", "--resume", "empty"], ["empty", "last.pt"]),
        (["train", "--resume", "empty", "--preset", "ring-smmd"], ["--resume"]),
        (["train", "--out", "N"], ["--preset"]),
        (["train", "--preset", "ring-smmmd", "--out", "P"], ["ring-smmmd", "ring-smmd"]),
        (["train", "nope.yaml", "--out", "P"], ["nope.yaml"]),
        (["train", "--preset", "ring-smmd", "--out", "T", "train.ema=2"], ["train.ema"]),
    ],
    ids=["bad-type", "bad-literal", "resume-empty", "resume-and-preset", "no-source", "bad-preset", "no-config", "bad-ema"],
)
def test_train_usage_errors(args, fragments, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    one_line_error(in_process(capsys, *args), *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # nothing written


def test_resume_a_finished_run_extends_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert in_process(capsys, "train", "--preset", "ring-smmd", "--out", "R", "train.steps=2", *TINY)[0] == 0
    code, out, err = in_process(capsys, "train", "--resume", "R", "train.steps=4")
    assert code == 0, err
    assert json.loads((tmp_path / "R" / "summary.json").read_text())["step"] == 4
    steps = [json.loads(line)["step"] for line in (tmp_path / "R" / "metrics.jsonl").read_text().splitlines() if "generator_loss" in line]
    assert steps == [1, 2, 3, 4]
