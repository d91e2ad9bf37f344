"""The ``"raw"`` extractor: flattened pixels, optionally resized first."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from .registry import FeatureExtractor, as_image_batch, registry, resize_images

__all__ = ["RawPixels"]


@registry.register("raw")
class RawPixels(FeatureExtractor):
    """``"features"`` = the pixels of (n, C, H, W) images as (n, C·H·W) rows; no ``"probs"``.

    ``size`` resizes the images to ``size``×``size`` first (area average when shrinking, bilinear
    when enlarging). ``dim`` is ``channels·size²`` when both are given, else ``None`` (it depends
    on the input); ``channels``, when given, is also checked against the input.
    """

    name = "raw"

    def __init__(self, size: int | None = None, channels: int | None = None):
        super().__init__()
        for key, value in (("size", size), ("channels", channels)):
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{key} must be a positive integer or None; got {value!r}")
        self.size, self.channels = size, channels
        self.dim = channels * size * size if size is not None and channels is not None else None
        self.freeze()

    def input_protocol(self) -> dict[str, Any]:
        if self.size is None:
            return super().input_protocol()
        return {"method": "area when shrinking, bilinear when enlarging", "size": [self.size, self.size],
                "text": f"to {self.size}×{self.size}: area average when shrinking, bilinear when enlarging"}

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        x = as_image_batch(images, None if self.channels is None else (self.channels,), who="the raw extractor")
        if self.size is not None:
            x = resize_images(x, self.size)
        return {"features": x.flatten(1)}
