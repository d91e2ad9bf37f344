"""Datasets for training implicit generative models.

``igm.data.get(name, **params)`` builds a registered dataset; ``igm.data.names()`` lists them.
Every dataset has ``shape``, ``kind`` ("toy" or "image") and ``sample(n, generator)``; finite ones
also support ``len``/indexing (for torch ``DataLoader``), and in-memory ones ``tensors()``.
Images are float32 (C, H, W) in [-1, 1]. See ``docs/data.md``.
"""

from __future__ import annotations

from .base import Dataset, FiniteDataset, TensorDataset, get, names, registry, uint8_to_unit
from .digits import Digits
from .images import LSUN, CelebA, ImageFolder
from .mnist5k import MNIST5k
from .readers import CIFAR10, MNIST, NpyDataset, read_idx
from .toy import GaussianMixture2D, Grid, Ring, SwissRoll

__all__ = [
    "CIFAR10",
    "CelebA",
    "Dataset",
    "Digits",
    "FiniteDataset",
    "GaussianMixture2D",
    "Grid",
    "ImageFolder",
    "LSUN",
    "MNIST",
    "MNIST5k",
    "NpyDataset",
    "Ring",
    "SwissRoll",
    "TensorDataset",
    "get",
    "names",
    "read_idx",
    "registry",
    "uint8_to_unit",
]
