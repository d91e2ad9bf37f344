"""The generator's input: latent codes z ~ p(z).

Latents belong with the architectures that read them (every generator takes ``(n, z_dim)``); the
loop, the evaluators, sampling and the analysis draw them here.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["LATENT_DISTS", "sample_latent"]

LATENT_DISTS = ("normal", "uniform")


def sample_latent(n: int, z_dim: int, dist: str, generator: torch.Generator) -> Tensor:
    """``n`` latent codes: standard normal, or uniform on [−1, 1] (the SMMD code's choice)."""
    if dist == "uniform":
        return torch.rand(n, z_dim, generator=generator) * 2 - 1
    if dist == "normal":
        return torch.randn(n, z_dim, generator=generator)
    raise ValueError(f"unknown latent distribution {dist!r}; valid: {', '.join(LATENT_DISTS)}")
