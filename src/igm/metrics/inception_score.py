"""Inception Score: IS = exp(E_x KL(p(y|x) ‖ p(y))), with p(y) the mean of p(y|x) over the split.

The n rows are cut into ``splits`` contiguous splits (split i holds rows ⌊i n/k⌋ … ⌊(i+1) n/k⌋ − 1,
as in the original code and torch-fidelity); the score is computed per split in float64 and the
mean and population standard deviation (ddof = 0) over splits are returned. Shuffle the rows
beforehand if their order is not random.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["inception_score", "check_probs"]


def check_probs(probs: "Tensor | np.ndarray", atol: float = 1e-3) -> Tensor:
    """Validate class probabilities (n, k): finite, non-negative, rows summing to 1 within ``atol``.
    Returns them as float64. Logits are refused with a hint to apply a softmax."""
    p = torch.as_tensor(probs).detach().to(torch.float64)
    if p.dim() != 2:
        raise ValueError(f"probs must be 2-D (n samples, k classes); got shape {tuple(p.shape)}")
    if p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(f"probs need at least 1 sample and 2 classes; got shape {tuple(p.shape)}")
    if not torch.isfinite(p).all():
        raise ValueError("probs contain non-finite values (NaN or inf)")
    if (p < 0).any():
        raise ValueError(f"probs must be non-negative (min {float(p.min()):.3g}); pass softmax outputs, not logits")
    err = float((p.sum(1) - 1.0).abs().max())
    if err > atol:
        raise ValueError(f"rows of probs must sum to 1 (largest deviation {err:.3g} > atol={atol}); apply a softmax first")
    return p


def inception_score(probs: "Tensor | np.ndarray", splits: int = 10, atol: float = 1e-3) -> tuple[float, float]:
    """IS ``(mean, std)`` over ``splits`` splits of the class probabilities ``probs`` (n, k)."""
    p = check_probs(probs, atol)
    n = p.shape[0]
    if not isinstance(splits, int) or splits < 1:
        raise ValueError(f"splits must be a positive integer; got {splits!r}")
    if n < splits:
        raise ValueError(f"need at least one sample per split; got {n} samples for {splits} splits")
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(0, keepdim=True)
        # KL(p ‖ p_y) with 0·log 0 = 0; where p > 0 the marginal is > 0 too
        kl = (torch.xlogy(part, part) - torch.xlogy(part, marginal)).sum(1)
        scores.append(float(torch.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))
