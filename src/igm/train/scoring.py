"""``igm eval``: score a run's generator, or a folder / array of samples, against a dataset or
another set of samples, with KID, FID and (for classifier extractors) the Inception Score."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from igm.metrics import inception_score, is_infinity, pipeline
from igm.metrics import protocol as P
from igm.metrics.features import embed, resize_images
from igm.metrics.features import get as get_extractor
from igm.nn.latent import sample_latent
from igm.train.config import ConfigError

__all__ = ["load_images", "check_images", "match_shape", "score", "format_table", "write_json"]


RANGES = ("[-1,1]", "[0,1]")


def _is_run(source: Path) -> bool:
    """A run directory or a checkpoint: its images are generated at seeded latents."""
    return source.is_dir() and ((source / "checkpoints").is_dir() or (source / "config.yaml").is_file()) or source.suffix == ".pt"


def load_images(source: Path, n: int, seed: int, value_range: str = "[-1,1]") -> tuple[Tensor, str]:
    """Images in [−1, 1] from a run directory / checkpoint (generated), a folder of images or an
    .npy/.npz array (uint8 pixels, or floats in ``value_range``). Returns (images, description)."""
    import igm.data

    if _is_run(source):
        from igm.train.sampling import load_generator, open_checkpoint

        opened = open_checkpoint(source)
        for line in opened.skipped:
            print(f"igm: {line}", file=sys.stderr)
        model, _, cfg = load_generator(opened)
        g = torch.Generator().manual_seed(seed)
        z = sample_latent(n, cfg.model.z_dim, cfg.model.z_dist, g)
        with torch.no_grad():
            images = torch.cat([model(zc) for zc in z.split(250)])
        return images, opened.describe()
    if source.is_dir():
        data = igm.data.get("image-folder", path=str(source))
    elif source.suffix in (".npy", ".npz"):
        try:
            try:
                data = igm.data.get("npy", path=str(source), range=value_range)
            except ValueError as err:  # uint8 pixels take no range
                if "range applies to float arrays" not in str(err):
                    raise
                data = igm.data.get("npy", path=str(source))
        except ValueError as err:
            if "outside range" not in str(err):
                raise
            other = [r for r in RANGES if r != value_range][0]
            raise ValueError(f"{str(err).splitlines()[0]}; images are uint8 pixels or floats in [-1, 1] "
                             f"(pass --range {other} if yours are floats in {other})") from None
    else:
        raise ConfigError(f"{source}: expected a run directory, a checkpoint (.pt), an image folder or an .npy/.npz file")
    if getattr(data, "kind", "image") != "image":
        raise ConfigError(f"{source}: holds points of shape {data.shape}, not images; igm eval scores images")
    count = min(n, len(data))
    images = torch.stack([data[i] for i in range(count)])
    if source.suffix in (".npy", ".npz") and value_range == "[-1,1]" and images.is_floating_point() \
            and getattr(data, "_data", images).is_floating_point() and float(images.min()) >= 0:
        print(f"igm: warning: {source}: every value is ≥ 0; if these are images in [0, 1], pass --range [0,1]",
              file=sys.stderr)
    return images, str(source)


def check_images(images: Tensor, what: str, *, clamp: bool = False) -> Tensor:
    """Refuse non-finite values and values outside [−1, 1] (beyond float32 rounding of a [−1, 1]
    map: 1e-3, the array reader's margin); ``clamp=True`` clips them instead."""
    if not torch.isfinite(images).all():
        raise ValueError(f"{what}: {int((~torch.isfinite(images)).sum())} values are NaN or infinite")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1 - 1e-3 or hi > 1 + 1e-3:
        if not clamp:
            raise ValueError(f"{what}: values span [{lo:.4g}, {hi:.4g}], outside the images' range [-1, 1]; "
                             "pass --clamp to clip them")
        return images.clamp(-1, 1)
    return images


def match_shape(images: Tensor, shape: tuple[int, ...], what: str, reference: str, *, resize: bool = False) -> Tensor:
    """``images`` unchanged when their (C, H, W) is the reference's ``shape``; resized to its H×W
    when ``resize`` (area average when shrinking, bilinear when enlarging); else a ValueError. The
    channel count is never changed: scoring grey images against colour ones is an error."""
    have, want = tuple(images.shape[1:]), tuple(shape)
    if have == want:
        return images
    show = lambda s: "×".join(map(str, s))  # noqa: E731
    if len(have) != 3 or len(want) != 3 or have[0] != want[0]:
        raise ValueError(f"{what} are {show(have)} but {reference} are {show(want)}: the channels differ; "
                         "convert one set to the other's channels first")
    if not resize:
        raise ValueError(f"{what} are {show(have)} but {reference} are {show(want)}; pass --resize to resize "
                         f"them to {want[1]}×{want[2]}, or score against a reference of their size")
    return resize_images(images, want[1:])


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
    resize: bool = False,
    value_range: str = "[-1,1]",
    clamp: bool = False,
) -> dict[str, Any]:
    """Score ``source`` against a dataset (``data``) or other samples (``against``): the scores
    plus ``"protocol"`` (:func:`igm.metrics.protocol.protocol`). The generated images must match
    the reference's channels and size (or ``resize``) and lie in [−1, 1] (or ``clamp``)."""
    import igm.data

    if (against is None) == (data is None):
        raise ConfigError("give exactly one reference: --against PATH or --data NAME")
    if value_range not in RANGES:
        raise ConfigError(f"--range must be one of {', '.join(RANGES)}; got {value_range!r}")
    ext = None if extractor is None else get_extractor(extractor, **(extractor_params or {}))  # a bad name: before any work
    ds = igm.data.get(data, **(data_params or {})) if data is not None else None  # a missing dataset: before any work
    if ds is not None and getattr(ds, "kind", "image") != "image":
        raise ConfigError(f"dataset '{data}' holds points, not images; igm eval scores images")
    images, what = load_images(source, n, seed, value_range)
    images = check_images(images, f"the samples of {what}", clamp=clamp)
    if against is not None:
        ref_images, ref_what = load_images(against, n, seed + 1, value_range)
        ref_images = check_images(ref_images, f"the reference {ref_what}", clamp=clamp)
        ref_shape = tuple(ref_images.shape[1:])
    else:
        ref_shape, ref_what = tuple(ds.shape), f"the images of dataset '{data}'"
    given_shape = tuple(images.shape[1:])
    images = match_shape(images, ref_shape, f"the samples of {what}", ref_what, resize=resize)
    if ext is None:  # the dataset's, or (against samples) the one for images of this shape
        extractor = pipeline.default_extractor(data, ref_shape)
        ext = get_extractor(extractor, **(extractor_params or {}))
    ext_protocol = P.extractor_protocol(ext, extractor, extractor_params)
    fake, probs = _embed(ext, images)
    if against is not None:
        real, _ = _embed(ext, ref_images)
        cached = False
        reference = {"source": ref_what, "images": int(ref_images.shape[0]), "shape": list(ref_shape), "seed": seed + 1}
    else:
        count = min(n, len(ds)) if hasattr(ds, "__len__") else n
        reference = P.reference_protocol(ds, data, data_params, count, seed=0)
        key = pipeline.reference_key(reference, ext_protocol)
        real, cached = pipeline.reference_features(ds, key, lambda x: _embed(ext, x)[0], cache)
    scores = pipeline.score_features(real, fake, kid_subsets=subsets, kid_subset_size=subset_size, seed=seed, full=True)
    infinity_sizes = scores.pop("fid_infinity_sizes")
    generated = {"source": what, "samples": int(images.shape[0]), "latents_seed": seed if _is_run(source) else None,
                 "shape": list(given_shape), "resized": list(ref_shape) if given_shape != tuple(ref_shape) else None}
    result: dict[str, Any] = {**scores, "reference_cached": cached}
    if probs is not None:
        is_mean, is_std = inception_score(probs, splits=min(10, probs.shape[0]))
        result.update(inception_score=is_mean, inception_score_std=is_std,
                      inception_score_infinity=is_infinity(probs, sizes=infinity_sizes, seed=seed))
    result["protocol"] = P.protocol(reference=reference, generated=generated, extractor=ext_protocol,
                                    kid_subsets=subsets, kid_subset_size=scores["kid_subset_size"], seed=seed)
    result["protocol"].update(knn={"precision_recall_k": pipeline.PR_K, "density_coverage_k": pipeline.DC_K},
                              infinity={"sizes": infinity_sizes, "fit": "score(N) = a + b/N, least squares; a reported"})
    return result


def format_table(result: dict[str, Any]) -> str:
    """The protocol block, a blank line, then one line per score."""
    p = result["protocol"]
    sizes = p["infinity"]["sizes"]
    fit = f"(fit over {len(sizes)} sizes, {sizes[0]}..{sizes[-1]})"
    rows = [("KID", f"{result['kid']:.5g} ± {result['kid_std']:.2g}  (subsets of {result['kid_subset_size']})"),
            ("FID", f"{result['fid']:.4g}"),
            ("FID∞", f"{result['fid_infinity']:.4g}  {fit}")]
    if "inception_score" in result:
        rows += [("IS", f"{result['inception_score']:.4g} ± {result['inception_score_std']:.2g}"),
                 ("IS∞", f"{result['inception_score_infinity']:.4g}")]
    rows += [("precision", f"{result['precision']:.4f}  (k = {p['knn']['precision_recall_k']})"),
             ("recall", f"{result['recall']:.4f}"),
             ("density", f"{result['density']:.4f}  (k = {p['knn']['density_coverage_k']})"),
             ("coverage", f"{result['coverage']:.4f}")]
    width = max(len(k) for k, _ in rows)
    block = P.format_protocol(p).split("\n")
    if result.get("reference_cached"):
        block[0] += "; features from the cache"
    return "\n".join(block) + "\n\n" + "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
