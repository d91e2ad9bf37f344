"""One evaluation pipeline for training, ``igm eval``, the figures and data-parallel runs.

- :func:`default_extractor`: the feature extractor a dataset is scored with, picked in one place.
- :func:`reference_key` / :func:`reference_features`: the real-data features, computed once and
  cached on disk under a key built here only. Under ``torch.distributed`` rank 0 fills the cache
  and the other ranks read it.
- :func:`generated_features`: a generator's samples at fixed latents, embedded. Under
  ``torch.distributed`` each rank embeds its contiguous share of the latents and the rows are
  gathered in rank order, so every rank holds exactly the single-process features.
- :func:`evaluate_generator`: KID (and FID) of those features against the reference.

Nothing here knows about runs, configs or ranks beyond ``torch.distributed`` itself: one process
and many take the same path, and give the same numbers.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn

from igm.metrics.cache import cached_features
from igm.metrics.fid import fid
from igm.metrics.features import embed
from igm.metrics.kid import kid
from igm.metrics.objects import gather_rows

__all__ = [
    "default_extractor",
    "reference_key",
    "reference_features",
    "local_share",
    "comm_device",
    "all_rows",
    "generated_features",
    "evaluate_generator",
    "score_features",
    "infinity_sizes_for",
]


MNIST_DATA = ("mnist", "mnist5k")
PR_K, DC_K = 3, 5  # the k of precision/recall (Kynkäänniemi et al.) and density/coverage (Naeem et al.)


def default_extractor(data_name: str | None = None, shape: tuple[int, ...] | None = None) -> str:
    """The extractor a dataset is scored with: ``"digits"`` for sklearn's digits (by name, or images
    of shape (1, 8, 8)), ``"mnist"`` for MNIST (``mnist``/``mnist5k`` by name, or images of shape
    (1, 28, 28)), else ``"inception"``. The name decides when it is known: digits upsampled to
    28×28 are still scored by the digits net."""
    if data_name == "digits":
        return "digits"
    if data_name in MNIST_DATA:
        return "mnist"
    if shape is not None and tuple(shape) == (1, 8, 8):
        return "digits"
    if shape is not None and tuple(shape) == (1, 28, 28):
        return "mnist"
    return "inception"


def reference_key(reference: dict[str, Any], extractor: dict[str, Any]) -> dict[str, Any]:
    """The cache key of a reference's features (the only place it is built): the reference protocol
    (:func:`igm.metrics.protocol.reference_protocol`: dataset, parameters, split, image shape,
    number of images, seed), the extractor protocol (name, parameters, sha256 of the weights, the
    resize) and the igm and torch versions. The weights file's path is left out: its sha256 decides."""
    from igm.metrics.protocol import versions

    v = versions()
    return {"reference": dict(reference), "extractor": {k: val for k, val in extractor.items() if k != "weights"},
            "versions": {"igm": v["igm"], "torch": v["torch"]}}


def _ranks() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def reference_features(dataset: Any, key: dict[str, Any], embed_fn: Callable[[Tensor], Tensor],
                       cache_dir: str | None = None) -> tuple[Tensor, bool]:
    """``(features, was_cached)`` of the ``images`` samples of ``dataset`` drawn with ``seed``, both
    from ``key["reference"]`` (a :func:`reference_key`). Under ``torch.distributed`` rank 0 computes
    (or loads) them first; the others then load them."""
    ref = key["reference"]

    def compute() -> Tensor:
        return embed_fn(dataset.sample(ref["images"], torch.Generator().manual_seed(ref["seed"])))

    rank, world = _ranks()
    if world > 1 and rank != 0:
        dist.barrier()  # after rank 0 has written the cache
        return cached_features(key, compute, cache_dir)
    out = cached_features(key, compute, cache_dir)
    if world > 1:
        dist.barrier()
    return out


def local_share(z: Tensor) -> Tensor:
    """This process's contiguous share of ``z`` (all of it on one process)."""
    rank, world = _ranks()
    return z if world == 1 else z.tensor_split(world)[rank]


def comm_device(device: torch.device | None) -> torch.device:
    """Where a collective over tensors on ``device`` runs: that GPU with NCCL, else the CPU (gloo)."""
    if device is not None and dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device(device)
    return torch.device("cpu")


def all_rows(rows: Tensor | None, dtype: torch.dtype, device: torch.device | None = None) -> Tensor | None:
    """Every process's rows of :func:`local_share` outputs, concatenated in rank order (``rows``
    itself on one process). ``device``: where the collective runs (default :func:`comm_device`)."""
    if _ranks()[1] == 1:
        return rows
    comm = device if device is not None else comm_device(rows.device if rows is not None else None)
    if rows is None:
        return gather_rows(None, dtype, comm)
    shape = rows.shape[1:]
    out = gather_rows(rows.reshape(rows.shape[0], -1).to(comm, dtype), dtype, comm)
    return None if out is None else out.reshape(out.shape[0], *shape)


@torch.no_grad()
def generated_features(generator: Callable[[Tensor], Tensor], z: Tensor, embed_fn: Callable[[Tensor], Tensor],
                       batch_size: int, comm_device: torch.device | None = None) -> Tensor:
    """The features of ``generator(z)`` (in batches of ``batch_size``), on every process, in the
    order of ``z``; each process generates and embeds its share only."""
    local = local_share(z)
    rows = torch.cat([embed_fn(generator(zc)) for zc in local.split(batch_size)]) if local.shape[0] else None
    out = all_rows(rows, torch.float32 if rows is None else rows.dtype, comm_device)
    if out is None:
        raise ValueError("no latents to evaluate")
    return out.cpu()


def evaluate_generator(generator: Callable[[Tensor], Tensor], z: Tensor, embed_fn: Callable[[Tensor], Tensor],
                       real: Tensor, *, kid_subsets: int, kid_subset_size: int, with_fid: bool = True,
                       batch_size: int = 250, seed: int = 0, comm_device: torch.device | None = None) -> dict[str, float]:
    """``{"kid", "kid_std"[, "fid"]}``: :func:`score_features` of ``generator`` at the latents ``z``
    against the reference features ``real``."""
    fake = generated_features(generator, z, embed_fn, batch_size, comm_device)
    out = score_features(real, fake, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, with_fid=with_fid, seed=seed)
    del out["kid_subset_size"]  # a setting, not a score: training logs scores only
    return out


def infinity_sizes_for(n: int) -> list[int]:
    """FID∞/IS∞ subset sizes for ``n`` generated samples: the authors' 15 sizes from 5,000 to n, or
    from n/5 when there are no more than 5,000 (no warning: the choice is recorded with the score)."""
    from igm.metrics.infinity import SMALLEST, infinity_sizes

    return infinity_sizes(n, smallest=SMALLEST if n > SMALLEST else max(2, n // 5))


def score_features(real: Tensor, fake: Tensor, *, kid_subsets: int, kid_subset_size: int, with_fid: bool = True,
                   seed: int = 0, full: bool = False) -> dict[str, float]:
    """``{"kid", "kid_std", "kid_subset_size"[, "fid"]}`` of two feature sets; the subset size is
    capped by both sample counts. What every evaluation path ends in.

    ``full=True`` (``igm eval``) adds ``precision``/``recall`` (k = 3), ``density``/``coverage``
    (k = 5), ``fid_infinity`` and ``fid_infinity_sizes`` (:func:`infinity_sizes_for`); ``real`` is
    the reference in each."""
    size = min(kid_subset_size, fake.shape[0], real.shape[0])
    mean, std = kid(real, fake, subsets=kid_subsets, subset_size=size, seed=seed)
    out: dict[str, Any] = {"kid": mean, "kid_std": std, "kid_subset_size": size}
    if with_fid:
        out["fid"] = fid(real, fake)
    if full:
        from igm.metrics.infinity import fid_infinity
        from igm.metrics.precision_recall import density_coverage, precision_recall

        out["precision"], out["recall"] = precision_recall(real, fake, k=PR_K)
        out["density"], out["coverage"] = density_coverage(real, fake, k=DC_K)
        sizes = infinity_sizes_for(fake.shape[0])
        out["fid_infinity"] = fid_infinity(real, fake, sizes=sizes, seed=seed)
        out["fid_infinity_sizes"] = sizes
    return out


def embedder(extractor: nn.Module, batch_size: int, device: torch.device | None = None) -> Callable[[Tensor], Tensor]:
    """``images → features`` with ``extractor`` (batched, float64 on the CPU)."""
    return lambda images: embed(extractor, images, batch_size, device)["features"]
