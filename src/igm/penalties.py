"""Gradient penalties and Jacobian norms.

Every gradient norm is taken per sample over ALL its input dimensions (the sample is flattened
first). Both official MMD-GAN code bases take the norm over one image axis only; we do not.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from igm.checks import as_features

__all__ = [
    "PENALTIES",
    "interpolates",
    "input_gradient",
    "gradient_penalty",
    "jacobian_sqnorm",
]

PENALTIES = ("gp", "lp", "maxgp")


def interpolates(real: Tensor, fake: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``x̂ = ε x + (1 − ε) y`` with one ``ε ~ U[0, 1]`` per sample."""
    n = min(real.shape[0], fake.shape[0])
    shape = (n,) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, dtype=real.dtype, device=real.device, generator=generator)
    return eps * real[:n] + (1.0 - eps) * fake[:n]


def input_gradient(outputs: Tensor, inputs: Tensor, *, create_graph: bool = True) -> Tensor:
    """Per-sample gradient of a scalar-per-sample function: ``∇_x f(x_b)`` for each b, shape of inputs.

    ``outputs`` must have one scalar per sample (shape (n,) or (n, 1)); samples must not interact
    (no batch norm in training mode), which is what makes the gradient of the sum per-sample.
    """
    if outputs.numel() != inputs.shape[0]:
        raise ValueError(
            f"input_gradient needs one scalar output per sample; got outputs of shape {tuple(outputs.shape)} "
            f"for {inputs.shape[0]} inputs"
        )
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=create_graph)
    return grad


def gradient_penalty(grad: Tensor, kind: str = "gp", target: float = 1.0) -> Tensor:
    """Penalty from per-sample input gradients ``grad`` (n, ...):

    - ``"gp"``: mean (‖∇‖ − target)²  (WGAN-GP)
    - ``"lp"``: mean max(0, ‖∇‖ − target)²  (one-sided)
    - ``"maxgp"``: max ‖∇‖²  (Lipschitz GAN; no target)
    """
    sq = grad.reshape(grad.shape[0], -1).pow(2).sum(1)
    if kind == "maxgp":
        return sq.max()
    # the norm is only ever differentiated where it is > 0 in practice; clamp keeps it finite at 0
    norm = sq.clamp_min(1e-30).sqrt()
    if kind == "gp":
        return (norm - target).pow(2).mean()
    if kind == "lp":
        return torch.relu(norm - target).pow(2).mean()
    raise ValueError(f"unknown gradient penalty {kind!r}; valid: {', '.join(PENALTIES)}")


def jacobian_sqnorm(
    features: Tensor,
    inputs: Tensor,
    *,
    method: str = "exact",
    projections: int = 1,
    create_graph: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Per-sample squared Frobenius norm ‖∂φ(x_b)/∂x_b‖²_F of the (d × D) Jacobian, shape (n,).

    ``features = φ(inputs)`` must already be computed with ``inputs`` in the graph (so the forward
    pass is shared with the loss). ``method="exact"`` runs d backward passes; ``"projection"`` is the
    unbiased Hutchinson estimate E_v ‖vᵀJ‖² with v ~ N(0, I_d) drawn per sample, averaged over
    ``projections`` draws. For d = 1 both are exact and cost one backward pass.
    """
    phi = as_features(features, "critic features")
    n, d = phi.shape
    if method not in ("exact", "projection"):
        raise ValueError(f"unknown Jacobian method {method!r}; valid: exact, projection")
    if d == 1:
        g = input_gradient(phi, inputs, create_graph=create_graph)
        return g.reshape(n, -1).pow(2).sum(1)
    total = torch.zeros(n, dtype=phi.dtype, device=phi.device)
    if method == "exact":
        for p in range(d):
            (g,) = torch.autograd.grad(phi[:, p].sum(), inputs, create_graph=create_graph, retain_graph=True)
            total = total + g.reshape(n, -1).pow(2).sum(1)
        return total
    if not isinstance(projections, int) or projections < 1:
        raise ValueError(f"projections must be a positive integer; got {projections!r}")
    for _ in range(projections):
        v = torch.randn(n, d, dtype=phi.dtype, device=phi.device, generator=generator)
        (g,) = torch.autograd.grad((phi * v).sum(), inputs, create_graph=create_graph, retain_graph=True)
        total = total + g.reshape(n, -1).pow(2).sum(1)
    return total / projections


def critic_input_gradient(critic: Callable[[Tensor], Tensor], points: Tensor) -> tuple[Tensor, Tensor]:
    """``(critic(points), ∇ per sample)`` for a scalar-output critic, with the graph kept."""
    points = points.detach().requires_grad_(True)
    out = critic(points)
    return out, input_gradient(out, points)
