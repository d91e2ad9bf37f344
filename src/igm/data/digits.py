"""scikit-learn's bundled 8×8 handwritten digits (1797 images, no download)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import TensorDataset, registry

__all__ = ["Digits"]


@registry.register("digits")
class Digits(TensorDataset):
    """``sklearn.datasets.load_digits`` as (1, size, size) float32 images in [-1, 1].

    Pixel values 0..16 map to ``v / 8 - 1``. ``size`` other than 8 resizes with bilinear
    interpolation (``align_corners=False``), which keeps values in [-1, 1]. ``labels`` holds the
    digit classes (int64).
    """

    def __init__(self, size: int = 8):
        if not (isinstance(size, int) and size >= 1):
            raise ValueError(f"size must be a positive integer; got {size!r}")
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = torch.as_tensor(bunch.data, dtype=torch.float32).reshape(-1, 1, 8, 8)
        x = x / 16.0 * 2.0 - 1.0
        if size != 8:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(-1, 1)
        super().__init__(x.contiguous(), "image", torch.as_tensor(bunch.target, dtype=torch.int64))
        self.size = size
