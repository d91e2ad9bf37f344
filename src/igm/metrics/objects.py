"""Accumulating metric objects: ``update`` over batches, ``compute`` at the end, ``reset`` to reuse.

- :class:`FID` keeps sufficient statistics per set (n, Σx, Σxxᵀ in float64): memory O(d²), any n.
- :class:`KID` keeps the features themselves (KID draws subsets of samples), up to ``max_samples``
  per set; later samples beyond the cap are dropped with a warning.
- :class:`InceptionScore` keeps the class probabilities.
- :class:`PrecisionRecall` and :class:`DensityCoverage` keep the features of both sets (the k-NN
  balls need every sample), up to ``max_samples`` per set like KID.

Distributed: when ``torch.distributed`` is initialised with more than one process, ``compute()``
first calls ``sync()``, which returns the global state without touching the local one (so
``compute()`` may be called repeatedly and ``update()`` may go on): FID all-reduces its sums (SUM);
KID, IS, precision/recall and density/coverage all-gather their stored rows (the sizes are gathered first, then padded buffers), in rank
order. Every rank must call ``compute()`` (it is a collective).
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from torch import Tensor

from igm.checks import int_at_least
from igm.metrics.fid import fid_from_stats
from igm.metrics.inception_score import inception_score
from igm.metrics.kid import kid
from igm.metrics.precision_recall import BLOCK, density_coverage, precision_recall

__all__ = ["FID", "KID", "InceptionScore", "PrecisionRecall", "DensityCoverage", "gather_rows"]


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _comm_device(local: "torch.device | None") -> torch.device:
    if local is not None:
        return local
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _max_int(value: int, device: torch.device) -> int:
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def gather_rows(rows: "Tensor | None", dtype: torch.dtype, device: torch.device) -> "Tensor | None":
    """All-gather (n_r, d) tensors of different n_r, concatenated in rank order (a collective: every
    process calls it; ``rows`` None for a process with none). None when no process has rows."""
    n, d = (0, 0) if rows is None else (rows.shape[0], rows.shape[1])
    meta = torch.tensor([n, d], dtype=torch.int64, device=device)
    metas = [torch.zeros_like(meta) for _ in range(dist.get_world_size())]
    dist.all_gather(metas, meta)
    sizes = [int(m[0]) for m in metas]
    width = max(int(m[1]) for m in metas)
    if max(sizes) == 0:
        return None
    buf = torch.zeros(max(sizes), width, dtype=dtype, device=device)
    if rows is not None:
        buf[:n] = rows
    bufs = [torch.empty_like(buf) for _ in sizes]
    dist.all_gather(bufs, buf)
    return torch.cat([b[:s] for b, s in zip(bufs, sizes)])


class FID:
    """Streaming FID from sufficient statistics. ``update(features, real=True|False)``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.dim: int | None = None
        self.count = [0, 0]  # real, fake
        self.sums: list[Tensor | None] = [None, None]
        self.outer: list[Tensor | None] = [None, None]

    def update(self, features: Tensor, real: bool) -> None:
        f = torch.as_tensor(features).detach()
        if f.dim() != 2:
            raise ValueError(f"features must be 2-D (n, d); got shape {tuple(f.shape)}")
        if self.dim is not None and f.shape[1] != self.dim:
            raise ValueError(f"feature dimension changed: {f.shape[1]} after {self.dim}")
        self.dim = f.shape[1]
        f = f.to(torch.float64)
        i = 0 if real else 1
        s, o = f.sum(0), f.T @ f
        self.sums[i] = s if self.sums[i] is None else self.sums[i] + s
        self.outer[i] = o if self.outer[i] is None else self.outer[i] + o
        self.count[i] += f.shape[0]

    def _local(self, d: int, device: torch.device) -> Tensor:
        parts = []
        for i in range(2):
            parts.append(torch.tensor([float(self.count[i])], dtype=torch.float64, device=device))
            s, o = self.sums[i], self.outer[i]
            parts.append(torch.zeros(d, dtype=torch.float64, device=device) if s is None else s.to(device))
            parts.append(torch.zeros(d * d, dtype=torch.float64, device=device) if o is None else o.to(device).reshape(-1))
        return torch.cat(parts)

    def sync(self) -> tuple[list[int], list[Tensor], list[Tensor]]:
        """``(counts, sums, outer products)`` over all processes (the local ones when not distributed)."""
        device = next((t.device for t in self.sums if t is not None), None)
        if not _distributed():
            if self.dim is None:
                raise ValueError("FID.compute() before any update()")
            d, flat = self.dim, self._local(self.dim, device or torch.device("cpu"))
        else:
            device = _comm_device(device)
            d = _max_int(self.dim or 0, device)
            if d == 0:
                raise ValueError("FID.compute() before any update() on any process")
            if self.dim not in (None, d):
                raise ValueError(f"feature dimension {self.dim} on this process, {d} on another")
            flat = self._local(d, device)
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        step = 1 + d + d * d
        blocks = [flat[i * step : (i + 1) * step] for i in range(2)]
        counts = [int(round(float(b[0]))) for b in blocks]
        return counts, [b[1 : 1 + d] for b in blocks], [b[1 + d :].reshape(d, d) for b in blocks]

    def compute(self) -> float:
        counts, sums, outer = self.sync()
        stats = []
        for n, s, o, name in zip(counts, sums, outer, ("real", "fake")):
            if n < 2:
                raise ValueError(f"FID needs at least 2 {name} samples; got {n}")
            mu = s / n
            stats += [mu, (o - n * torch.outer(mu, mu)) / (n - 1)]
        return fid_from_stats(stats[0], stats[1], stats[2], stats[3], counts[0], counts[1])


class _RowStore:
    """Rows kept per set, capped at ``max_samples``; all-gathered on ``sync``."""

    def __init__(self, sets: int, max_samples: int | None, dtype: torch.dtype) -> None:
        if max_samples is not None and max_samples < 1:
            raise ValueError(f"max_samples must be positive or None; got {max_samples}")
        self.sets, self.max_samples, self.dtype = sets, max_samples, dtype
        self.reset()

    def reset(self) -> None:
        self.rows: list[list[Tensor]] = [[] for _ in range(self.sets)]
        self.count = [0] * self.sets
        self.dropped = [0] * self.sets

    def add(self, x: Tensor, i: int, what: str) -> None:
        x = torch.as_tensor(x).detach()
        if x.dim() != 2:
            raise ValueError(f"{what} must be 2-D (n, d); got shape {tuple(x.shape)}")
        if self.rows[i] and x.shape[1] != self.rows[i][0].shape[1]:
            raise ValueError(f"{what} width changed: {x.shape[1]} after {self.rows[i][0].shape[1]}")
        room = x.shape[0] if self.max_samples is None else max(0, self.max_samples - self.count[i])
        if room < x.shape[0]:
            if self.dropped[i] == 0:
                warnings.warn(f"{what}: max_samples={self.max_samples} reached; further samples are dropped", stacklevel=3)
            self.dropped[i] += x.shape[0] - room
            x = x[:room]
        if x.shape[0]:
            self.rows[i].append(x.to(self.dtype))
            self.count[i] += x.shape[0]

    def sync(self) -> list["Tensor | None"]:
        local = [torch.cat(r) if r else None for r in self.rows]
        if not _distributed():
            return local
        device = _comm_device(next((t.device for t in local if t is not None), None))
        out = [gather_rows(t, self.dtype, device) for t in local]
        return [t if t is None or self.max_samples is None else t[: self.max_samples] for t in out]


class KID:
    """Streaming KID: stores up to ``max_samples`` features per set; ``compute()`` → (mean, std)."""

    def __init__(
        self,
        subsets: int = 100,
        subset_size: int = 1000,
        seed: int = 0,
        allow_smaller: bool = False,
        max_samples: int | None = 50_000,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.kwargs = dict(subsets=subsets, subset_size=subset_size, seed=seed, allow_smaller=allow_smaller)
        self.store = _RowStore(2, max_samples, dtype)

    def reset(self) -> None:
        self.store.reset()

    def update(self, features: Tensor, real: bool) -> None:
        self.store.add(features, 0 if real else 1, "KID features")

    def sync(self) -> list["Tensor | None"]:
        """``[real features, fake features]`` from all processes (rank order)."""
        return self.store.sync()

    def compute(self) -> tuple[float, float]:
        real, fake = self.sync()
        if real is None or fake is None:
            raise ValueError("KID.compute() needs both real and fake features; update(features, real=...) first")
        return kid(real, fake, **self.kwargs)


class InceptionScore:
    """Streaming IS: stores class probabilities (n, k); ``compute()`` → (mean, std)."""

    def __init__(self, splits: int = 10, max_samples: int | None = None, dtype: torch.dtype = torch.float64) -> None:
        self.splits = splits
        self.store = _RowStore(1, max_samples, dtype)

    def reset(self) -> None:
        self.store.reset()

    def update(self, probs: Tensor) -> None:
        self.store.add(probs, 0, "IS probabilities")

    def sync(self) -> "Tensor | None":
        """All probabilities from all processes (rank order)."""
        return self.store.sync()[0]

    def compute(self) -> tuple[float, float]:
        probs = self.sync()
        if probs is None:
            raise ValueError("InceptionScore.compute() before any update()")
        return inception_score(probs, self.splits)


class _PairedRows:
    """Shared by the k-NN metrics: real and fake features stored (``update(features, real=...)``),
    gathered across processes in rank order, then handed to ``fn(real, fake, k=..., block=...)``."""

    name = ""

    def __init__(self, k: int, block: int, max_samples: int | None, dtype: torch.dtype) -> None:
        self.k, self.block = int_at_least(k, "k", 1), int_at_least(block, "block", 1)
        self.store = _RowStore(2, max_samples, dtype)

    def reset(self) -> None:
        self.store.reset()

    def update(self, features: Tensor, real: bool) -> None:
        self.store.add(features, 0 if real else 1, f"{self.name} features")

    def sync(self) -> list["Tensor | None"]:
        """``[real features, fake features]`` from all processes (rank order)."""
        return self.store.sync()

    def _both(self) -> tuple[Tensor, Tensor]:
        real, fake = self.sync()
        if real is None or fake is None:
            raise ValueError(f"{self.name}.compute() needs both real and fake features; update(features, real=...) first")
        return real, fake


class PrecisionRecall(_PairedRows):
    """Streaming precision and recall (k-NN balls, k = 3): ``compute()`` → (precision, recall),
    equal to :func:`~igm.metrics.precision_recall.precision_recall` on all the rows seen."""

    name = "PrecisionRecall"

    def __init__(
        self, k: int = 3, block: int = BLOCK, max_samples: int | None = 50_000, dtype: torch.dtype = torch.float32
    ) -> None:
        super().__init__(k, block, max_samples, dtype)

    def compute(self) -> tuple[float, float]:
        return precision_recall(*self._both(), k=self.k, block=self.block)


class DensityCoverage(_PairedRows):
    """Streaming density and coverage (balls around real samples, k = 5): ``compute()`` →
    (density, coverage), equal to :func:`~igm.metrics.precision_recall.density_coverage`."""

    name = "DensityCoverage"

    def __init__(
        self, k: int = 5, block: int = BLOCK, max_samples: int | None = 50_000, dtype: torch.dtype = torch.float32
    ) -> None:
        super().__init__(k, block, max_samples, dtype)

    def compute(self) -> tuple[float, float]:
        return density_coverage(*self._both(), k=self.k, block=self.block)
