"""Fault injection: a training subprocess killed at random moments (seeded) and resumed each time
ends exactly where an uninterrupted run ends. SIGKILL gives the process no chance to clean up;
SIGTERM asks it to checkpoint and stop (exit status 130)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from igm.train import checkpoint as ckpt

STEPS = 1500
ARGS = ["train.threads=1", "train.progress=false", f"train.steps={STEPS}", "train.batch_size=32",
        "train.log_every=10", "train.checkpoint_every=25", "train.sample_every=0", "eval.every=500",
        "eval.samples=200", "model.generator_params.hidden=16", "model.critic_params.hidden=16",
        "optim.schedule=constant"]
TIMING = {"sec_per_step"}  # wall-clock figures, the only values allowed to differ


def _cmd(run_dir: Path, resume: bool) -> list[str]:
    head = [sys.executable, "-m", "igm", "train"]
    return [*head, "--resume", str(run_dir)] if resume else [*head, "--preset", "ring-smmd", "--out", str(run_dir), *ARGS]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _records(run_dir: Path) -> list[dict]:
    """The logged rows without wall-clock figures, and without the speed-settings row that each
    process writes once when it starts (a resumed attempt applies them again)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows if row.get("event") != "speed"]


def _final_weights(run_dir: Path) -> dict:
    state = ckpt.load(run_dir / "checkpoints" / "last.pt")
    assert state["step"] == STEPS
    return {**{f"g.{k}": v for k, v in state["generator"].items()}, **{f"c.{k}": v for k, v in state["critic"].items()}}


def _started(run_dir: Path) -> bool:
    return bool(ckpt.step_checkpoints(run_dir / "checkpoints")) if (run_dir / "checkpoints").is_dir() else False


def _training_since(run_dir: Path, launched: float) -> bool:
    """A step checkpoint past step 0 written by this attempt: it is in the loop (signals handled)."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return False
    for path in ckpt.step_checkpoints(folder):
        try:
            if path.stat().st_mtime >= launched and not path.name.endswith("-00000000.pt"):
                return True
        except FileNotFoundError:  # rotated away meanwhile
            continue
    return False


def _interrupted_run(run_dir: Path, sig: int, kills: int, seed: int) -> list[int]:
    """Start, interrupt ``kills`` times at random moments after training has begun, resume each time,
    then let the last attempt finish. Returns the exit status of each interrupted attempt."""
    rng = random.Random(seed)
    codes = []
    while True:
        resume = _started(run_dir)
        if not resume and run_dir.exists():
            shutil.rmtree(run_dir)  # killed before its first checkpoint: nothing to resume
        proc = subprocess.Popen(_cmd(run_dir, resume), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if len(codes) == kills:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            return codes
        launched, deadline = time.time(), time.monotonic() + 120
        while not _training_since(run_dir, launched) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # wait for this attempt to be inside its training loop
        time.sleep(rng.uniform(0.1, 0.8))
        if proc.poll() is not None:  # finished before the signal: the machine is fast, train longer
            pytest.fail(f"the run finished before interruption {len(codes) + 1}; raise STEPS")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        codes.append(proc.returncode)
        if sig == signal.SIGTERM:
            assert proc.returncode == 130, err
            assert "continue with: igm train --resume" in err, err


def _check_against_reference(tmp_path: Path, run_dir: Path) -> None:
    ref = tmp_path / "reference"
    done = subprocess.run(_cmd(ref, False), env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _records(run_dir) == _records(ref)  # each logged step once, in order, with the same values
    a, b = _final_weights(run_dir), _final_weights(ref)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs from the uninterrupted run"
    leftovers = [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, leftovers


@pytest.mark.slow
def test_sigkill_five_times_then_resume_matches_an_uninterrupted_run(tmp_path):
    run_dir = tmp_path / "killed"
    codes = _interrupted_run(run_dir, signal.SIGKILL, kills=5, seed=20261202)
    assert codes == [-signal.SIGKILL] * 5
    _check_against_reference(tmp_path, run_dir)


@pytest.mark.slow
def test_sigterm_checkpoints_and_exits_130_then_resume_matches(tmp_path):
    run_dir = tmp_path / "terminated"
    codes = _interrupted_run(run_dir, signal.SIGTERM, kills=3, seed=7)
    assert codes == [130] * 3
    _check_against_reference(tmp_path, run_dir)
