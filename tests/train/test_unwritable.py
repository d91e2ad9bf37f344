"""A run directory that stops taking writes (a full disk, a read-only directory) stops training with
one clear line, leaves no half-written file and keeps the previous checkpoint loadable. The full disk
is a real one: a small tmpfs, where the machine lets the test mount one (root on Linux)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from igm.cli import main
from igm.train import checkpoint as ckpt
from igm.train import load_run, train
from igm.train.loop import OutputError


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs, unmounted afterwards; skipped where mounting is not allowed."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if not sys.platform.startswith("linux"):
        pytest.skip("tmpfs is Linux-only")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(folder, keep_free: int = 0) -> None:
    """Write a filler file until the file system has at most ``keep_free`` bytes left."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    with open(folder / "filler", "wb") as fh:
        try:
            fh.write(b"\0" * max(free - keep_free, 0))
            fh.flush()
            os.fsync(fh.fileno())
        except OSError:
            pass


def test_full_disk_mid_run_stops_cleanly_and_resumes(small_disk, tiny):
    run_dir = small_disk / "run"
    run = tiny("ring-smmd", "train.checkpoint_every=5", "optim.schedule=constant", steps=200, out_dir=run_dir)

    def fill_at_step_10(event, step, values):
        if event == "checkpoint" and step == 10:
            _fill(small_disk)

    with pytest.raises(OutputError, match="No space left on device") as info:
        train(run, callbacks=[fill_at_step_10])
    assert info.value.last == run_dir / "checkpoints" / "step-00000010.pt"
    assert "step-00000010.pt, is intact" in str(info.value)
    assert ckpt.load(info.value.last)["step"] == 10  # loadable
    assert not list((run_dir / "checkpoints").glob(ckpt.TEMP_GLOB))  # the failed save left nothing
    (small_disk / "filler").unlink()  # space again: the run resumes from step 10 and finishes
    resumed = load_run(run_dir, ["train.steps=20"])
    assert train(resumed, resume=True)["step"] == 20


def test_full_disk_from_the_start_is_one_line_from_the_cli(small_disk, capsys):
    _fill(small_disk, keep_free=64 * 1024)  # room for config.yaml, not for a checkpoint
    code = main(["train", "--preset", "ring-smmd", "--out", str(small_disk / "run"), "train.progress=false",
                 "train.steps=50", "model.generator_params.hidden=512", "model.critic_params.hidden=512"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("igm: error: cannot write to the run directory"), err
    assert "No space left on device" in lines[0] and "--resume" in lines[0]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes to read-only directories")
def test_read_only_directory_stops_cleanly(tiny, tmp_path):
    run_dir = tmp_path / "run"
    run = tiny("ring-smmd", "train.checkpoint_every=5", steps=200, out_dir=run_dir)

    def freeze_at_step_10(event, step, values):
        if event == "checkpoint" and step == 10:
            for folder in (run_dir / "checkpoints", run_dir):
                folder.chmod(0o555)

    try:
        with pytest.raises(OutputError, match="Permission denied"):
            train(run, callbacks=[freeze_at_step_10])
        assert ckpt.load(run_dir / "checkpoints" / "last.pt")["step"] == 10
    finally:
        for folder in (run_dir, run_dir / "checkpoints"):
            folder.chmod(0o755)
