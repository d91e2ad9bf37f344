"""Gradient penalties and Jacobian norms.

Every gradient norm is taken per sample over ALL its input dimensions (the sample is flattened
first). Both official MMD-GAN code bases take the norm over one image axis only; we do not.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from igm.checks import as_features, positive_int

__all__ = [
    "PENALTIES",
    "interpolates",
    "input_gradient",
    "gradient_penalty",
    "jacobian_sqnorm",
    "forward_jacobian_sqnorm",
    "forward_jacobians",
    "JACOBIAN_METHODS",
    "PROBES",
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


JACOBIAN_METHODS = ("exact", "forward", "projection")
PROBES = ("rademacher", "gaussian")


def jacobian_sqnorm(
    features: Tensor,
    inputs: Tensor,
    *,
    method: str = "exact",
    projections: int = 1,
    probe: str = "rademacher",
    create_graph: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Per-sample squared Frobenius norm ‖∂φ(x_b)/∂x_b‖²_F of the (d × D) Jacobian, shape (n,).

    ``features = φ(inputs)`` must already be computed with ``inputs`` in the graph (so the forward
    pass is shared with the loss).

    - ``method="exact"``: d backward passes, one per output (one for a scalar critic);
    - ``method="projection"``: the Hutchinson estimate ‖vᵀJ‖², unbiased for ‖J‖²_F when
      E vvᵀ = I, averaged over ``projections`` probes v drawn per sample: ``probe="rademacher"``
      (entries ±1; variance 2(‖JJᵀ‖²_F − Σ_i (JJᵀ)_ii²), the smallest of any i.i.d. probe) or
      ``"gaussian"`` (variance 2‖JJᵀ‖²_F). For d = 1 both methods are exact and cost one backward pass.

    The exact norm from D Jacobian-vector products instead of d backward passes is :func:`forward_jacobian_sqnorm`
    (it needs the function, not its output). docs/smmd.md says when each is the right choice.
    """
    phi = as_features(features, "critic features")
    n, d = phi.shape
    if method not in ("exact", "projection"):
        raise ValueError(f"unknown Jacobian method {method!r}; valid: exact, projection (forward: forward_jacobian_sqnorm)")
    if d == 1:
        g = input_gradient(phi, inputs, create_graph=create_graph)
        return g.reshape(n, -1).pow(2).sum(1)
    total = torch.zeros(n, dtype=phi.dtype, device=phi.device)
    if method == "exact":
        for p in range(d):
            (g,) = torch.autograd.grad(phi[:, p].sum(), inputs, create_graph=create_graph, retain_graph=True)
            total = total + g.reshape(n, -1).pow(2).sum(1)
        return total
    positive_int("projections", projections)
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; valid: {', '.join(PROBES)}")
    for _ in range(projections):
        if probe == "gaussian":
            v = torch.randn(n, d, dtype=phi.dtype, device=phi.device, generator=generator)
        else:
            v = torch.randint(0, 2, (n, d), device=phi.device, generator=generator).to(phi.dtype).mul_(2).sub_(1)
        (g,) = torch.autograd.grad((phi * v).sum(), inputs, create_graph=create_graph, retain_graph=True)
        total = total + g.reshape(n, -1).pow(2).sum(1)
    return total / projections


def forward_jacobians(fn: Callable[[Tensor], Tensor], inputs: Tensor, *, create_graph: bool = True) -> tuple[Tensor, Tensor]:
    """``(fn(inputs) as (n, d), the per-sample Jacobians (n, d, D))`` from D Jacobian-vector products.

    The batch is replicated once per input dimension D (the sample flattened) and pushed through
    ``fn`` in ONE forward pass; the products J e_1 … J e_D come from the transpose of a
    vector-Jacobian product: with g(u) = Jᵀu (a backward pass with a dummy cotangent u, kept in the
    graph), J t = ∂(g(u)·t)/∂u. So the cost is that of a forward and a double backward over n·D
    samples instead of d backward passes: the cheaper route when D < d (2-D toy data under a 16-d
    critic). Every op it needs already has the double backward that a penalty's training step needs;
    measured faster than ``torch.autograd.forward_ad`` on the ring critic (benchmarks/RESULTS.md). The
    returned features are the outputs of the first replica and stay differentiable in ``fn``'s
    parameters, as do the Jacobians when ``create_graph``. ``fn`` must treat samples independently
    (no batch norm in training mode)."""
    x = inputs  # kept in the graph: a generator step may differentiate through the points
    n = x.shape[0]
    dims = x[0].numel()
    rep = x.expand(dims, *x.shape).reshape(dims * n, *x.shape[1:])
    if not rep.requires_grad:
        rep = rep.detach().requires_grad_(True)
    tangent = torch.eye(dims, dtype=x.dtype, device=x.device).repeat_interleave(n, 0).reshape(rep.shape)
    out = as_features(fn(rep), "critic features")
    dummy = torch.zeros_like(out, requires_grad=True)
    (vjp,) = torch.autograd.grad(out, rep, grad_outputs=dummy, create_graph=True)
    (jvp,) = torch.autograd.grad(vjp, dummy, grad_outputs=tangent, create_graph=create_graph)
    return out[:n], jvp.reshape(dims, n, -1).permute(1, 2, 0)


def forward_jacobian_sqnorm(fn: Callable[[Tensor], Tensor], inputs: Tensor, *, create_graph: bool = True) -> tuple[Tensor, Tensor]:
    """``(fn(inputs) as (n, d), ‖∂fn(x_b)/∂x_b‖²_F per sample)``, exact, by :func:`forward_jacobians`."""
    features, jac = forward_jacobians(fn, inputs, create_graph=create_graph)
    return features, jac.pow(2).sum((1, 2))


def critic_input_gradient(critic: Callable[[Tensor], Tensor], points: Tensor) -> tuple[Tensor, Tensor]:
    """``(critic(points), ∇ per sample)`` for a scalar-output critic, with the graph kept."""
    points = points.detach().requires_grad_(True)
    out = critic(points)
    return out, input_gradient(out, points)
