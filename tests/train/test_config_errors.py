"""Every error that the config alone determines comes out of build_run: before any training step,
progress bar, checkpoint or run directory. The CLI prints it as one line and exits 2."""

from __future__ import annotations

import pytest

from igm.cli import main
from igm.train import apply_overrides, build_run, presets
from igm.train.config import ConfigError

BAD = {
    "batch-below-min": ("ring-smmd", ["train.batch_size=1"], "train.batch_size=1 is too small"),
    "batch-below-min-gp": ("ring-mmd-gan-gp", ["train.batch_size=1"], "needs at least 2 samples"),
    "eval-samples": ("ring-smmd", ["eval.samples=1"], "eval.samples must be at least 2"),
    "kid-subset": ("ring-smmd", ["eval.kid_subset_size=1"], "eval.kid_subset_size"),
    "keep-checkpoints": ("ring-smmd", ["train.keep_checkpoints=0"], "train.keep_checkpoints must be at least 1"),
    "image-net-on-points": ("ring-smmd", ["model.generator=dcgan", "model.generator_params={}"], "needs an image shape"),
    "bad-hyperparameter": ("ring-smmd", ["objective.params.grad_weight=-1"], "grad_weight"),
}


@pytest.mark.parametrize("preset,overrides,message", BAD.values(), ids=list(BAD))
def test_config_errors_come_from_build_run(preset, overrides, message, tmp_path):
    cfg = apply_overrides(presets.get(preset), ["train.progress=false", *overrides])
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("preset,overrides,message", BAD.values(), ids=list(BAD))
def test_cli_says_one_line_before_any_work(preset, overrides, message, tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert main(["train", "--preset", preset, "--out", str(out_dir), *overrides]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("igm: error: ") and message in lines[0], err
    assert "train:" not in err and not out  # no progress bar, nothing printed as if it had run
    assert not out_dir.exists()

