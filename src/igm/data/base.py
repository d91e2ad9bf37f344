"""The dataset interface, the dataset registry and the in-memory finite dataset.

Every dataset has a per-sample ``shape``, a ``kind`` (``"toy"`` or ``"image"``) and
``sample(n, generator)`` returning a float32 ``(n, *shape)`` batch. Finite datasets draw indices
uniformly with replacement from ``generator`` only, so restoring the generator's state makes a
resumed run draw exactly the same batches.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from igm.registry import Registry, construct

__all__ = [
    "Dataset",
    "FiniteDataset",
    "TensorDataset",
    "registry",
    "get",
    "names",
    "uint8_to_unit",
    "draw_indices",
]

KINDS = ("toy", "image")


@runtime_checkable
class Dataset(Protocol):
    """What the training loop relies on."""

    shape: tuple[int, ...]
    kind: str

    def sample(self, n: int, generator: torch.Generator) -> Tensor:  # pragma: no cover - protocol
        ...


def _validate(name: str, entry: Any) -> None:
    if not isinstance(entry, type) or not callable(getattr(entry, "sample", None)):
        raise ValueError(f"dataset {name!r} must be a class with a sample(n, generator) method")


registry: Registry[type] = Registry("dataset", _validate)


def get(name: str, **params: Any) -> Any:
    """Build the dataset registered as ``name``; unknown ``params`` are a ValueError naming them."""
    cls = registry.get(name)
    return construct(cls, params, what=f"dataset {name!r}")


def names() -> list[str]:
    """The registered dataset names, sorted."""
    return registry.names()


def uint8_to_unit(x: Tensor) -> Tensor:
    """Map uint8 pixel values ``v`` to float32 ``(v / 255) * 2 - 1`` in [-1, 1]."""
    return x.to(torch.float32).div_(255.0).mul_(2.0).sub_(1.0)


def draw_indices(size: int, n: int, generator: torch.Generator) -> Tensor:
    """``n`` indices in ``[0, size)`` drawn uniformly with replacement from ``generator`` (on CPU)."""
    if n < 0:
        raise ValueError(f"sample size must be non-negative; got {n}")
    idx = torch.randint(size, (n,), generator=generator, device=generator.device)
    return idx.cpu()


class FiniteDataset:
    """Base of datasets with a fixed number of samples.

    Subclasses set ``shape`` and ``kind`` and implement ``__len__`` and ``__getitem__``; ``sample``
    draws indices with :func:`draw_indices`. ``__getitem__`` returns the sample tensor alone (labels,
    when known, are the ``labels`` attribute), so a torch ``DataLoader`` yields plain batches.
    """

    shape: tuple[int, ...]
    kind: str
    labels: Tensor | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Tensor:
        raise NotImplementedError

    def _gather(self, idx: Tensor) -> Tensor:
        return torch.stack([self[int(i)] for i in idx]) if len(idx) else torch.empty(0, *self.shape)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` samples drawn uniformly with replacement; float32 of shape ``(n, *shape)``."""
        return self._gather(draw_indices(len(self), n, generator))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(len={len(self)}, shape={self.shape}, kind={self.kind!r})"


class TensorDataset(FiniteDataset):
    """A finite dataset held in memory.

    ``data`` is either float32 already in its final range, or uint8 pixels that are mapped to
    [-1, 1] on access (a quarter of the memory for MNIST/CIFAR-sized sets).
    """

    def __init__(self, data: Tensor, kind: str, labels: Tensor | None = None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
        if data.dtype not in (torch.uint8, torch.float32):
            data = data.to(torch.float32)
        if len(data) == 0:
            raise ValueError("a dataset needs at least one sample")
        if labels is not None and len(labels) != len(data):
            raise ValueError(f"{len(labels)} labels for {len(data)} samples")
        self._data = data
        self.kind = kind
        self.shape = tuple(int(s) for s in data.shape[1:])
        self.labels = labels

    def _convert(self, x: Tensor, copy: bool) -> Tensor:
        if x.dtype == torch.uint8:
            return uint8_to_unit(x)
        return x.clone() if copy else x

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, index: int) -> Tensor:
        return self._convert(self._data[index], copy=True)

    def _gather(self, idx: Tensor) -> Tensor:
        return self._convert(self._data[idx], copy=False)  # advanced indexing already copies

    def tensors(self) -> Tensor:
        """All samples as one float32 ``(len, *shape)`` tensor (a fresh copy)."""
        return self._convert(self._data, copy=True)
