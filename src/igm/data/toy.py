"""Two-dimensional toy distributions sampled exactly from their true law.

``ring`` and ``grid`` are equal-weight isotropic Gaussian mixtures that expose their ``modes``
(k × 2 means), ``std`` and exact ``log_prob``; ``swiss-roll`` is the 2-D swiss roll of
``sklearn.datasets.make_swiss_roll`` drawn in torch (``modes`` and ``std`` are ``None``).
All randomness comes from the generator passed to ``sample``; samples live on its device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import registry

__all__ = ["GaussianMixture2D", "Ring", "Grid", "SwissRoll"]


class GaussianMixture2D:
    """Equal-weight mixture of isotropic Gaussians ``N(modes[k], std² I)`` in the plane."""

    kind = "toy"
    shape = (2,)

    def __init__(self, modes: Tensor, std: float):
        modes = torch.as_tensor(modes, dtype=torch.float32)
        if modes.ndim != 2 or modes.shape[1] != 2 or len(modes) == 0:
            raise ValueError(f"modes must be a non-empty k x 2 tensor; got shape {tuple(modes.shape)}")
        if not (isinstance(std, (int, float)) and std > 0):
            raise ValueError(f"std must be a positive number; got {std!r}")
        self.modes = modes
        self.std = float(std)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Pick a mode uniformly, then add ``std``-scaled standard normal noise."""
        dev = generator.device
        k = torch.randint(len(self.modes), (n,), generator=generator, device=dev)
        noise = torch.randn(n, 2, generator=generator, device=dev)
        return self.modes.to(dev)[k] + self.std * noise

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log density at ``x`` of shape (..., 2); computed in ``x``'s dtype and device."""
        x = torch.as_tensor(x)
        if not x.is_floating_point():
            x = x.to(torch.float32)
        mu = self.modes.to(device=x.device, dtype=x.dtype)
        sq = (x.unsqueeze(-2) - mu).pow(2).sum(-1)  # (..., k)
        var = self.std**2
        log_comp = -sq / (2 * var) - math.log(2 * math.pi * var)
        return torch.logsumexp(log_comp, dim=-1) - math.log(len(mu))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(k={len(self.modes)}, std={self.std})"


@registry.register("ring")
class Ring(GaussianMixture2D):
    """``modes`` Gaussians evenly spaced on a circle of ``radius`` (the first at angle 0)."""

    def __init__(self, radius: float = 2.0, std: float = 0.02, modes: int = 8):
        if not (isinstance(modes, int) and modes >= 1):
            raise ValueError(f"modes must be a positive integer; got {modes!r}")
        angle = 2 * math.pi * torch.arange(modes, dtype=torch.float64) / modes
        means = float(radius) * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
        super().__init__(means.to(torch.float32), std)
        self.radius = float(radius)


@registry.register("grid")
class Grid(GaussianMixture2D):
    """``side × side`` Gaussians on a square grid with ``spacing``, centred at the origin.

    The defaults give the classic 25 modes at ``{-4, -2, 0, 2, 4}²``.
    """

    def __init__(self, std: float = 0.05, spacing: float = 2.0, side: int = 5):
        if not (isinstance(side, int) and side >= 1):
            raise ValueError(f"side must be a positive integer; got {side!r}")
        coords = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * float(spacing)
        gx, gy = torch.meshgrid(coords, coords, indexing="ij")
        means = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
        super().__init__(means.to(torch.float32), std)
        self.spacing = float(spacing)


@registry.register("swiss-roll")
class SwissRoll:
    """The 2-D swiss roll ``t (cos t, sin t)`` with ``t ~ U[1.5π, 4.5π]``, as in scikit-learn.

    ``noise`` is the standard deviation of Gaussian noise added in scikit-learn's units (before
    scaling); the result is multiplied by ``scale = 2 / (4.5π)`` so the noiseless roll fits in
    [-2, 2]².
    """

    kind = "toy"
    shape = (2,)
    modes = None
    std = None
    scale = 2.0 / (4.5 * math.pi)

    def __init__(self, noise: float = 0.25):
        if not (isinstance(noise, (int, float)) and noise >= 0):
            raise ValueError(f"noise must be a non-negative number; got {noise!r}")
        self.noise = float(noise)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` points on the roll plus noise."""
        dev = generator.device
        t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator, device=dev))
        x = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)
        x = x + self.noise * torch.randn(n, 2, generator=generator, device=dev)
        return x * self.scale

    def __repr__(self) -> str:
        return f"SwissRoll(noise={self.noise})"
