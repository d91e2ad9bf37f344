"""Quality measures for 2-D toy data with a known Gaussian-mixture target.

- high-quality share: samples within ``radius`` standard deviations of their nearest mode;
- modes covered: modes that are the nearest mode of at least ``min_share`` of the high-quality
  samples' expected count (a mode counts as covered when it receives at least that many);
- MMD² to the target: unbiased, Gaussian kernel, against fresh target samples;
- :func:`wasserstein`: the exact p-Wasserstein distance between two equal-size sample sets.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from igm.kernels import Gaussian
from igm.mmd import mmd2

__all__ = ["mode_statistics", "toy_metrics", "wasserstein"]


def mode_statistics(samples: Tensor, modes: Tensor, std: float, radius: float = 3.0, min_count: int = 1) -> dict[str, float]:
    """``{"high_quality": share, "modes_covered": count, "modes": total}``."""
    if samples.dim() != 2 or samples.shape[1] != modes.shape[1]:
        raise ValueError(f"samples must be (n, {modes.shape[1]}); got {tuple(samples.shape)}")
    if not std > 0:
        raise ValueError(f"std must be positive; got {std}")
    samples = samples.to(torch.float64)
    modes = modes.to(torch.float64)
    dist = torch.cdist(samples, modes)
    nearest, which = dist.min(1)
    good = nearest <= radius * std
    counts = torch.bincount(which[good], minlength=modes.shape[0])
    return {
        "high_quality": float(good.double().mean()),
        "modes_covered": int((counts >= min_count).sum()),
        "modes": int(modes.shape[0]),
    }


def toy_metrics(samples: Tensor, dataset, generator: torch.Generator | None = None, bandwidth: float | None = None) -> dict[str, float]:
    """Mode statistics (when the dataset has modes) and MMD² to fresh target samples."""
    out: dict[str, float] = {}
    modes = getattr(dataset, "modes", None)
    if modes is not None:
        min_count = max(1, int(0.01 * samples.shape[0]))  # ≥ 1% of the samples to count a mode
        out.update(mode_statistics(samples, modes, float(dataset.std), min_count=min_count))
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    target = dataset.sample(samples.shape[0], g).to(samples)
    sigma = bandwidth if bandwidth is not None else (float(dataset.std) * 5 if modes is not None else 0.5)
    out["mmd2_target"] = float(mmd2(samples.double(), target.double(), Gaussian(sigma)))
    return out


def wasserstein(samples: Tensor, target: Tensor, p: float = 2) -> float:
    """Exact W_p between the empirical measures of two equal-size sample sets (n, d).

    With n points each of mass 1/n the optimal coupling is a permutation (Birkhoff), so
    W_p = (min_σ (1/n) Σ_i ‖x_i − y_σ(i)‖^p)^{1/p}, solved by ``scipy.optimize.linear_sum_assignment``
    on the n×n cost matrix (O(n³): fine up to a few thousand points)."""
    if samples.dim() != 2 or target.dim() != 2 or samples.shape != target.shape:
        raise ValueError(
            f"samples and target must be (n, d) with the same shape; got {tuple(samples.shape)} and {tuple(target.shape)}"
        )
    if not p >= 1:
        raise ValueError(f"p must be ≥ 1; got {p}")
    from scipy.optimize import linear_sum_assignment  # imported here: scipy is slow to import

    a = samples.detach().to(device="cpu", dtype=torch.float64)
    b = target.detach().to(device="cpu", dtype=torch.float64)
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError("samples and target must be finite")
    cost = (torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist") ** p).numpy()
    rows, cols = linear_sum_assignment(cost)
    return float(np.mean(cost[rows, cols]) ** (1.0 / p))
