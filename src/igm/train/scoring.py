"""``igm eval``: score a run's generator, or a folder / array of samples, against a dataset or
another set of samples, with KID, FID and (for classifier extractors) the Inception Score."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from igm.metrics import inception_score, pipeline
from igm.metrics.features import embed
from igm.metrics.features import get as get_extractor
from igm.nn.latent import sample_latent
from igm.train.config import ConfigError

__all__ = ["load_images", "score", "format_table"]


def load_images(source: Path, n: int, seed: int) -> tuple[Tensor, str]:
    """Images in [−1, 1] from a run directory / checkpoint (generated), a folder of images or an
    .npy/.npz array. Returns (images, description)."""
    import igm.data

    if source.is_dir() and ((source / "checkpoints").is_dir() or (source / "config.yaml").is_file()) or source.suffix == ".pt":
        from igm.train.sampling import load_generator, open_checkpoint

        opened = open_checkpoint(source)
        for line in opened.skipped:
            print(f"igm: {line}", file=sys.stderr)
        model, _, cfg = load_generator(opened)
        g = torch.Generator().manual_seed(seed)
        z = sample_latent(n, cfg.model.z_dim, cfg.model.z_dist, g)
        with torch.no_grad():
            images = torch.cat([model(zc) for zc in z.split(250)])
        return images, f"{n} samples from {opened.describe()}"
    if source.is_dir():
        data = igm.data.get("image-folder", path=str(source))
    elif source.suffix in (".npy", ".npz"):
        data = igm.data.get("npy", path=str(source))
    else:
        raise ConfigError(f"{source}: expected a run directory, a checkpoint (.pt), an image folder or an .npy/.npz file")
    count = min(n, len(data))
    images = torch.stack([data[i] for i in range(count)])
    return images, f"{count} images from {source}"


def _embed(extractor, images: Tensor) -> tuple[Tensor, Tensor | None]:
    out = embed(extractor, images)
    return out["features"], out.get("probs")


def score(
    source: Path,
    *,
    against: Path | None = None,
    data: str | None = None,
    data_params: dict[str, Any] | None = None,
    extractor: str | None = None,
    extractor_params: dict[str, Any] | None = None,
    n: int = 2000,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    cache: str | None = None,
) -> dict[str, Any]:
    import igm.data

    if (against is None) == (data is None):
        raise ConfigError("give exactly one reference: --against PATH or --data NAME")
    ext = None if extractor is None else get_extractor(extractor, **(extractor_params or {}))  # a bad name: before any work
    images, what = load_images(source, n, seed)
    if ext is None:  # the dataset's, or (against samples) the one for images of this shape
        extractor = pipeline.default_extractor(data, tuple(images.shape[1:]))
        ext = get_extractor(extractor, **(extractor_params or {}))
    fake, probs = _embed(ext, images)
    if against is not None:
        ref_images, ref_what = load_images(against, n, seed + 1)
        real, _ = _embed(ext, ref_images)
        cached = False
    else:
        ds = igm.data.get(data, **(data_params or {}))
        count = min(n, len(ds)) if hasattr(ds, "__len__") else n
        key = pipeline.reference_key(data, data_params, extractor, extractor_params, count)
        real, cached = pipeline.reference_features(ds, key, lambda images: _embed(ext, images)[0], cache)
        ref_what = f"{count} images of dataset '{data}'"
    scores = pipeline.score_features(real, fake, kid_subsets=subsets, kid_subset_size=subset_size, seed=seed)
    result: dict[str, Any] = {"samples": what, "reference": ref_what, "extractor": extractor, **scores,
                              "reference_cached": cached}
    if probs is not None:
        is_mean, is_std = inception_score(probs, splits=min(10, probs.shape[0]))
        result.update(inception_score=is_mean, inception_score_std=is_std)
    return result


def format_table(result: dict[str, Any]) -> str:
    rows = [("samples", result["samples"]), ("reference", result["reference"] + (" (cached)" if result["reference_cached"] else "")),
            ("extractor", result["extractor"]),
            ("KID", f"{result['kid']:.5g} ± {result['kid_std']:.2g}  (subsets of {result['kid_subset_size']})"),
            ("FID", f"{result['fid']:.4g}")]
    if "inception_score" in result:
        rows.append(("IS", f"{result['inception_score']:.4g} ± {result['inception_score_std']:.2g}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
