"""Samples from a saved run: a PNG grid (images), a scatter plot (2-D data) or a .npy array."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from igm.nn.latent import sample_latent
from igm.train import checkpoint as ckpt
from igm.train.artifacts import save_image_grid, save_scatter
from igm.train.config import ConfigError, RunConfig, from_dict

__all__ = ["Opened", "open_checkpoint", "load_generator", "sample_to_file"]


@dataclass(frozen=True)
class Opened:
    """A checkpoint read for sampling: its state, the file it came from and the files passed over."""

    state: dict
    path: Path
    skipped: tuple[str, ...] = ()

    @property
    def step(self) -> int:
        return int(self.state["step"])

    def describe(self) -> str:
        return f"{self.path} (step {self.step})"


def open_checkpoint(source: Path | Opened) -> Opened:
    """A checkpoint file as given, or a run directory's best one: ``best.pt`` if it is readable, else
    the newest readable step checkpoint (``last.pt`` first), noting in ``skipped`` what was passed
    over and why. A file named explicitly must be readable."""
    if isinstance(source, Opened):
        return source
    source = Path(source)
    if source.is_file():
        return Opened(ckpt.load(source), source)
    if not source.is_dir():
        raise ckpt.CheckpointError(f"checkpoint or run directory not found: {source}")
    folder = source / "checkpoints"
    skipped: list[str] = []
    best = folder / "best.pt"
    if best.is_file():
        try:
            return Opened(ckpt.load(best), best)
        except ckpt.CheckpointError as err:
            skipped.append(f"skipped {best}: {err.reason}")
    try:
        state, path, more = ckpt.load_latest(folder)
    except ckpt.CheckpointError as err:
        raise ckpt.CheckpointError("; ".join([*skipped, str(err)]) if skipped else str(err)) from None
    return Opened(state, path, tuple(skipped + more))


def load_generator(source: Path | Opened, use_ema: bool = True):
    """(generator in eval mode, dataset or None, config) from a run directory, a checkpoint file or
    an :class:`Opened` checkpoint (:func:`open_checkpoint` picks a run directory's file).

    Only the generator is built, from the data shape stored in the checkpoint: the training data
    need not be present. The dataset is loaded only for toy data (for the target's contours).
    """
    import igm.data
    import igm.nn

    state = open_checkpoint(source).state
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


def check_output(out: Path) -> None:
    if Path(out).suffix not in (".png", ".npy"):
        raise ConfigError(f"--out must end in .png or .npy; got {Path(out).name}")


@torch.no_grad()
def sample_to_file(source: Path | Opened, out: Path, n: int = 64, seed: int = 0, use_ema: bool = True) -> Path:
    check_output(out)
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
