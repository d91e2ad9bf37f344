"""The feature-extractor registry and the base class every extractor derives from.

An extractor is a frozen ``nn.Module``: ``forward(images)`` takes float images in [-1, 1] of shape
(n, C, H, W), any H and W, does its own resizing and normalisation, and returns a dict with at
least ``"features"`` (n, ``dim``) and, for classifiers, ``"probs"`` (n, classes; rows sum to 1),
which the Inception Score uses. ``get(name, **params)`` builds one; ``names()`` lists them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from igm.registry import Registry, construct

__all__ = ["FeatureExtractor", "registry", "get", "names", "resize_images", "as_image_batch", "embed"]


class FeatureExtractor(nn.Module):
    """Base class: a feature network that stays in eval mode with frozen parameters.

    Subclasses set ``name`` (the registry name) and ``dim`` (the length of ``"features"``; ``None``
    when it depends on the input) and call :meth:`freeze` at the end of ``__init__``.
    """

    name: str = ""
    dim: int | None = None

    def freeze(self) -> FeatureExtractor:
        """Switch to eval mode and stop gradients to the parameters."""
        for p in self.parameters():
            p.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> FeatureExtractor:
        """Feature extractors are never trained through this interface: always stays in eval mode."""
        return super().train(False)

    def input_protocol(self) -> dict[str, Any]:
        """How the extractor resizes its input, for the protocol recorded with a score:
        ``{"method", "size", "text"}`` (``size`` [H, W] or None for "as given")."""
        return {"method": "none", "size": None, "text": "none (images used at their own size)"}

    def forward(self, images: Tensor) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


def _validate(name: str, entry: Any) -> None:
    if not (isinstance(entry, type) and issubclass(entry, FeatureExtractor)):
        raise ValueError(f"feature extractor {name!r} must be a FeatureExtractor subclass")


registry: Registry[type] = Registry("feature extractor", _validate)


def get(name: str, **params: Any) -> FeatureExtractor:
    """Build the extractor registered as ``name``; unknown names or ``params`` are a ValueError."""
    return construct(registry.get(name), params, what=f"feature extractor {name!r}")


def names() -> list[str]:
    """The registered extractor names, sorted."""
    return registry.names()


def as_image_batch(images: Tensor, channels: tuple[int, ...] | None = None, *, who: str) -> Tensor:
    """Check that ``images`` is an (n, C, H, W) tensor (C in ``channels`` if given); float32 copy-free."""
    if not isinstance(images, Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"{who} expects images of shape (n, C, H, W); got {shape}")
    if channels is not None and images.shape[1] not in channels:
        raise ValueError(f"{who} expects {' or '.join(map(str, channels))} channels; got {images.shape[1]}")
    if not images.is_floating_point():
        raise ValueError(f"{who} expects float images in [-1, 1]; got dtype {images.dtype}")
    return images.to(torch.float32)


def resize_images(images: Tensor, size: int | tuple[int, int], mode: str = "auto") -> Tensor:
    """Resize (n, C, H, W) images to ``size``.

    ``mode="auto"`` averages over areas when shrinking (``F.interpolate(mode="area")``, an adaptive
    average pool, so non-integer ratios work) and interpolates bilinearly (``align_corners=False``)
    when enlarging; other values are passed to ``F.interpolate``. Unchanged sizes return the input.
    """
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) == hw:
        return images
    if mode == "auto":
        mode = "area" if hw[0] <= images.shape[-2] and hw[1] <= images.shape[-1] else "bilinear"
    if mode in ("bilinear", "bicubic"):
        return F.interpolate(images, size=hw, mode=mode, align_corners=False)
    return F.interpolate(images, size=hw, mode=mode)


@torch.no_grad()
def embed(extractor: nn.Module, images: Tensor, batch_size: int = 250, device: torch.device | None = None) -> dict[str, Tensor]:
    """Run ``extractor`` over ``images`` in batches; every output concatenated, float64, on the CPU."""
    parts: dict[str, list[Tensor]] = {}
    for chunk in images.split(batch_size):
        out = extractor(chunk.to(device).float() if device is not None else chunk.float())
        for key, value in out.items():
            parts.setdefault(key, []).append(value.double().cpu())
    return {key: torch.cat(values) for key, values in parts.items()}
