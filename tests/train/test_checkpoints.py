"""Checkpoint rotation and fallback: the last ``train.keep_checkpoints`` step checkpoints are kept,
``--resume`` and ``igm sample`` use the newest readable one and say which, and truncated, empty or
random-byte files cost the steps since the previous checkpoint, not the run."""

from __future__ import annotations

import json
import os

import pytest
import torch

from igm.cli import main
from igm.train import checkpoint as ckpt
from igm.train import load_run, train
from igm.train.sampling import open_checkpoint

EVERY = ["train.checkpoint_every=5", "optim.schedule=constant"]


def _run(tiny, out_dir, steps=20, *extra):
    run = tiny("ring-smmd", *EVERY, *extra, steps=steps, out_dir=out_dir)
    train(run)
    return run


def _steps(folder):
    return [ckpt.load(p)["step"] for p in ckpt.step_checkpoints(folder)]


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path):
    path.write_bytes(b"")


def _random(path):
    path.write_bytes(os.urandom(4096))


CORRUPTIONS = {"truncated": _truncate, "empty": _empty, "random-bytes": _random}


def test_keeps_the_newest_step_checkpoints_and_last_is_the_newest(tiny, tmp_path):
    _run(tiny, tmp_path / "r", 20, "train.keep_checkpoints=3")
    folder = tmp_path / "r" / "checkpoints"
    assert _steps(folder) == [20, 15, 10]
    assert ckpt.load(folder / "last.pt")["step"] == 20
    assert not list(folder.glob(ckpt.TEMP_GLOB))
    _run(tiny, tmp_path / "one", 20, "train.keep_checkpoints=1")
    assert _steps(tmp_path / "one" / "checkpoints") == [20]


@pytest.mark.parametrize("how", CORRUPTIONS, ids=list(CORRUPTIONS))
def test_resume_skips_a_corrupt_last_checkpoint(how, tiny, tmp_path, capsys):
    # last.pt replaced by a broken file (another inode): step-20 is intact, so nothing is lost
    _run(tiny, tmp_path / "r", 20)
    folder = tmp_path / "r" / "checkpoints"
    data = (folder / "last.pt").read_bytes()
    (folder / "last.pt").unlink()
    (folder / "last.pt").write_bytes(data)  # its own file now, not step-20's
    CORRUPTIONS[how](folder / "last.pt")
    run = load_run(tmp_path / "r", ["train.steps=25"])
    capsys.readouterr()
    assert train(run, resume=True)["step"] == 25
    err = capsys.readouterr().err
    assert f"skipped {folder / 'last.pt'}" in err
    assert f"resuming from {folder / 'step-00000020.pt'} at step 20" in err


@pytest.mark.parametrize("how", CORRUPTIONS, ids=list(CORRUPTIONS))
def test_resume_falls_back_to_the_previous_step_and_retrains_it(how, tiny, tmp_path, capsys):
    # the newest checkpoint itself is broken (last.pt and step-20 are one file): resume from step 15,
    # drop the log past it, and end where an uninterrupted run ends, bit for bit
    ref = _run(tiny, tmp_path / "ref", 25)
    _run(tiny, tmp_path / "r", 20)
    folder = tmp_path / "r" / "checkpoints"
    CORRUPTIONS[how](folder / "step-00000020.pt")
    if not os.path.samefile(folder / "last.pt", folder / "step-00000020.pt"):  # no hard links here
        CORRUPTIONS[how](folder / "last.pt")
    run = load_run(tmp_path / "r", ["train.steps=25"])
    capsys.readouterr()
    train(run, resume=True)
    err = capsys.readouterr().err
    assert f"resuming from {folder / 'step-00000015.pt'} at step 15" in err
    steps = [json.loads(line)["step"] for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # steps 16-20 were logged once, after the resume
    for a, b in zip(ref.generator.state_dict().values(), run.generator.state_dict().values()):
        assert torch.equal(a, b)


def test_no_readable_checkpoint_is_one_clear_error(tiny, tmp_path):
    _run(tiny, tmp_path / "r", 10)
    folder = tmp_path / "r" / "checkpoints"
    for path in folder.glob("*.pt"):
        _random(path)
    with pytest.raises(ckpt.CheckpointError, match="no readable checkpoint"):
        ckpt.load_latest(folder)


def test_cli_resume_and_sample_say_which_checkpoint(tiny, tmp_path, capsys):
    _run(tiny, tmp_path / "r", 10)
    folder = tmp_path / "r" / "checkpoints"
    data = (folder / "last.pt").read_bytes()
    (folder / "last.pt").unlink()
    (folder / "last.pt").write_bytes(data[:100])  # truncated, step-10 intact
    assert main(["train", "--resume", str(tmp_path / "r"), "train.steps=12", "train.progress=false"]) == 0
    err = capsys.readouterr().err
    assert f"igm: skipped {folder / 'last.pt'}:" in err and "at step 10" in err
    # igm sample: best.pt broken → the newest readable step checkpoint, and it says so
    (folder / "best.pt").write_bytes(b"")
    assert main(["sample", str(tmp_path / "r"), "--out", str(tmp_path / "s.npy"), "--n", "8"]) == 0
    out, err = capsys.readouterr()
    assert f"skipped {folder / 'best.pt'}: the file is empty" in err
    assert "(step 12)" in out and "last.pt" in out


def test_open_checkpoint_prefers_best_then_the_newest(tiny, tmp_path):
    _run(tiny, tmp_path / "r", 10)
    folder = tmp_path / "r" / "checkpoints"
    opened = open_checkpoint(tmp_path / "r")
    assert opened.path == (folder / "best.pt" if (folder / "best.pt").is_file() else folder / "last.pt")
    with pytest.raises(ckpt.CheckpointError, match="nowhere"):
        open_checkpoint(tmp_path / "nowhere.pt")


def test_leftover_temporaries_are_removed(tiny, tmp_path):
    _run(tiny, tmp_path / "r", 10)
    folder = tmp_path / "r" / "checkpoints"
    (folder / ".last.pt.abc123.tmp").write_bytes(b"half")
    run = load_run(tmp_path / "r", ["train.steps=12"])
    train(run, resume=True)
    assert not list(folder.glob(ckpt.TEMP_GLOB))
