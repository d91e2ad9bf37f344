"""Each rank's share of a finite dataset under data-parallel training (:mod:`igm.train.distributed`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from igm.train.config import ConfigError

__all__ = ["RankShard"]


class RankShard:
    """Rank ``rank``'s share of a finite dataset, a data source of its own: the indices
    ``perm[rank::world]`` of one permutation drawn from ``seed`` (the same on every rank), so the
    shares are disjoint, cover the dataset and differ in size by at most one. ``sample(n, generator)``
    draws uniformly with replacement within the share; ``shape`` and ``kind`` are the dataset's."""

    def __init__(self, data: Any, rank: int, world: int, seed: int):
        n = len(data)
        if n < world:
            raise ConfigError(f"the dataset has {n} samples, fewer than the {world} processes")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        self.data, self.rank, self.world = data, rank, world
        self.shape, self.kind = tuple(data.shape), getattr(data, "kind", "image")
        self.indices = perm[rank::world].sort().values  # sorted: disk-backed sets read in file order

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Tensor:
        return self.data[int(self.indices[i])]

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        from igm.data.base import draw_indices

        pick = self.indices[draw_indices(len(self.indices), n, generator)]
        gather = getattr(self.data, "_gather", None)
        return gather(pick) if gather is not None else torch.stack([self.data[int(i)] for i in pick])

    def __repr__(self) -> str:
        return f"RankShard({self.data!r}, rank={self.rank}, world={self.world}, size={len(self)})"


def _is_finite_dataset(data: Any) -> bool:
    from igm.data import FiniteDataset

    return isinstance(data, FiniteDataset) or (hasattr(data, "__len__") and hasattr(data, "__getitem__"))
