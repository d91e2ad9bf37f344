"""Samples from a saved run: a PNG grid (images), a scatter plot (2-D data) or a .npy array."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from igm.train import checkpoint as ckpt
from igm.train.artifacts import save_image_grid, save_scatter
from igm.train.config import ConfigError, RunConfig, from_dict, sample_latent

__all__ = ["load_generator", "sample_to_file"]


def _checkpoint_path(source: Path) -> Path:
    if source.is_dir():
        for name in ("best.pt", "last.pt"):
            if (source / "checkpoints" / name).is_file():
                return source / "checkpoints" / name
        raise ckpt.CheckpointError(f"{source} has no checkpoints/best.pt or checkpoints/last.pt")
    if not source.is_file():
        raise ckpt.CheckpointError(f"checkpoint or run directory not found: {source}")
    return source


def load_generator(source: Path, use_ema: bool = True):
    """(generator in eval mode, dataset or None, config) from a run directory or checkpoint file.

    Only the generator is built, from the data shape stored in the checkpoint: the training data
    need not be present. The dataset is loaded only for toy data (for the target's contours).
    """
    import igm.data
    import igm.nn

    state = ckpt.load(_checkpoint_path(source))
    cfg: RunConfig = from_dict(RunConfig, state["config"])
    shape = tuple(state["data_shape"])
    m = cfg.model
    generator = igm.nn.build(m.generator, "generator", shape=shape, z_dim=m.z_dim, **m.generator_params)
    weights = state["ema"] if (use_ema and state.get("ema") is not None) else state["generator"]
    generator.load_state_dict(weights)
    data = None
    if state.get("data_kind") == "toy":
        try:
            data = igm.data.get(cfg.data.name, **cfg.data.params)
        except (ValueError, OSError):
            data = None
    return generator.eval(), data, cfg


@torch.no_grad()
def sample_to_file(source: Path, out: Path, n: int = 64, seed: int = 0, use_ema: bool = True) -> Path:
    if out.suffix not in (".png", ".npy"):
        raise ConfigError(f"--out must end in .png or .npy; got {out.name}")
    model, data, cfg = load_generator(source, use_ema)
    g = torch.Generator().manual_seed(seed)
    z_dim = cfg.model.z_dim
    z = sample_latent(n, z_dim, cfg.model.z_dist, g)
    samples = model(z).float()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, samples.numpy())
        return out
    if samples.dim() == 2 and samples.shape[1] == 2:
        return save_scatter(samples, out, data, title=f"{n} samples")
    if samples.dim() != 4:
        raise ConfigError(f"samples of shape {tuple(samples.shape[1:])} cannot be drawn as PNG; use a .npy output")
    return save_image_grid(samples, out)
