"""Sampling from saved runs (``igm sample``) and the loop's image path (grids, no toy evaluator)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from igm.train import apply_overrides, build_run, presets, train
from igm.train import checkpoint as ckpt
from igm.train.config import ConfigError
from igm.train.sampling import load_generator, sample_to_file


@pytest.fixture
def ring_run(tiny, tmp_path):
    run = tiny("ring-smmd", "train.ema=0.5", "eval.every=2", "train.checkpoint_every=2", steps=4, out_dir=tmp_path / "ring")
    train(run)
    return run


@pytest.fixture
def image_run(tmp_path):
    data = tmp_path / "imgs.npy"
    np.save(data, np.random.default_rng(0).integers(0, 256, size=(40, 16, 16, 1), dtype=np.uint8))
    cfg = apply_overrides(
        presets.get("digits-smmd"),
        [
            "data.name=npy",
            f"data.params={{path: '{data}'}}",
            "model.generator_params.base_channels=8",
            "model.critic_params.base_channels=8",
            "train.steps=2",
            "train.batch_size=16",
            "train.progress=false",
            "train.sample_every=1",
            "eval.every=0",
        ],
    )
    run = build_run(cfg, tmp_path / "img")
    train(run)
    return run, data


def test_load_generator_prefers_ema_and_best(ring_run, tmp_path):
    run_dir = ring_run.out_dir
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    model, data, cfg = load_generator(run_dir)
    best = ckpt.load(run_dir / "checkpoints" / "best.pt")
    assert cfg.train.ema == 0.5 and not model.training
    for (k, v), saved in zip(model.state_dict().items(), best["ema"].values()):
        assert torch.equal(v, saved), k
    raw, _, _ = load_generator(run_dir / "checkpoints" / "last.pt", use_ema=False)
    for (k, v), live in zip(raw.state_dict().items(), ring_run.generator.state_dict().values()):
        assert torch.equal(v, live), k


def test_sample_to_file_toy(ring_run, tmp_path):
    a = sample_to_file(ring_run.out_dir, tmp_path / "a.npy", n=33, seed=5)
    b = sample_to_file(ring_run.out_dir, tmp_path / "sub" / "b.npy", n=33, seed=5)
    c = sample_to_file(ring_run.out_dir, tmp_path / "c.npy", n=33, seed=6)
    x, y, z = np.load(a), np.load(b), np.load(c)
    assert x.shape == (33, 2) and np.array_equal(x, y) and not np.array_equal(x, z)
    png = sample_to_file(ring_run.out_dir, tmp_path / "s.png", n=100)
    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG"
    with pytest.raises(ConfigError, match=r"\.png or \.npy"):
        sample_to_file(ring_run.out_dir, tmp_path / "s.gif")
    with pytest.raises(ckpt.CheckpointError, match="nowhere"):
        sample_to_file(tmp_path / "nowhere", tmp_path / "s.npy")
    (tmp_path / "emptyrun").mkdir()
    with pytest.raises(ckpt.CheckpointError, match="last.pt"):
        sample_to_file(tmp_path / "emptyrun", tmp_path / "s.npy")


def test_image_run_writes_grids_and_samples(image_run, tmp_path):
    run, _ = image_run
    assert run.evaluator is None and run.data.shape == (1, 16, 16)
    pngs = sorted(p.name for p in (run.out_dir / "samples").glob("*.png"))
    assert pngs == ["step_0000001.png", "step_0000002.png"]
    arr = np.load(sample_to_file(run.out_dir, tmp_path / "x.npy", n=6))
    assert arr.shape == (6, 1, 16, 16) and np.abs(arr).max() <= 1.0 + 1e-6
    from PIL import Image

    with Image.open(sample_to_file(run.out_dir, tmp_path / "x.png", n=9)) as im:
        assert im.mode == "RGB" and min(im.size) >= 50


def test_sampling_does_not_need_the_training_data(image_run, tmp_path):
    run, data = image_run
    data.unlink()
    arr = np.load(sample_to_file(run.out_dir, tmp_path / "x.npy", n=4))
    assert arr.shape == (4, 1, 16, 16)
