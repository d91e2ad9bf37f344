"""MMD² estimators, the witness function and the variance of the U-statistic.

MMD²(P, Q) = E k(x,x') + E k(y,y') − 2 E k(x,y). All three Gram blocks of one estimate come from a
single pairwise computation on the concatenated batch.

Estimators (``estimator=``):

- ``"unbiased"``: off-diagonal means of K_xx and K_yy, full mean of K_xy (m ≠ n allowed);
- ``"u-statistic"``: also drops the diagonal of K_xy (m = n);
- ``"biased"``: V-statistic, every mean over all pairs.

:func:`mmd2_block` averages unbiased estimates over disjoint blocks.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from igm.checks import as_features, check_batch_size, check_finite, check_pair, positive_int
from igm.kernels import Kernel, Pairwise

__all__ = [
    "ESTIMATORS",
    "gram_blocks",
    "mmd2",
    "mmd2_from_gram",
    "mmd2_block",
    "gather_ranks",
    "sum_ranks",
    "mean_ranks",
    "mmd2_gathered",
    "witness",
    "ustat_matrix",
    "mmd2_variance",
    "mmd2_covariance",
]

ESTIMATORS = ("unbiased", "u-statistic", "biased")
_MIN_BATCH = {"unbiased": 2, "u-statistic": 2, "biased": 1}


def _prepare(x: Tensor, y: Tensor, check: bool) -> tuple[Tensor, Tensor]:
    check_pair(x, y, "x and y")
    x, y = as_features(x, "x"), as_features(y, "y")
    if check:
        check_finite(x, y, what="MMD input")
    return x, y


def gram_blocks(x: Tensor, y: Tensor, kernel: Kernel) -> tuple[Tensor, Tensor, Tensor]:
    """``(K_xx, K_xy, K_yy)`` from one pairwise computation on ``cat(x, y)``."""
    m = x.shape[0]
    k = kernel.gram(Pairwise(torch.cat([x, y], 0)))
    return k[:m, :m], k[:m, m:], k[m:, m:]


def _offdiag_mean(k: Tensor) -> Tensor:
    n = k.shape[0]
    return (k.sum() - torch.diagonal(k).sum()) / (n * (n - 1))


def mmd2_from_gram(kxx: Tensor, kxy: Tensor, kyy: Tensor, estimator: str = "unbiased") -> Tensor:
    """MMD² from precomputed Gram blocks. Diagonals are read from the blocks themselves, so a kernel
    whose diagonal is not constant (linear, polynomial, distance) is handled exactly."""
    if estimator == "biased":
        return kxx.mean() + kyy.mean() - 2.0 * kxy.mean()
    if estimator == "unbiased":
        return _offdiag_mean(kxx) + _offdiag_mean(kyy) - 2.0 * kxy.mean()
    if estimator == "u-statistic":
        if kxy.shape[0] != kxy.shape[1]:
            raise ValueError(f"the u-statistic estimator needs equal batch sizes; got {tuple(kxy.shape)}")
        return _offdiag_mean(kxx) + _offdiag_mean(kyy) - 2.0 * _offdiag_mean(kxy)
    raise ValueError(f"unknown estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}")


def mmd2(x: Tensor, y: Tensor, kernel: Kernel, estimator: str = "unbiased", *, check_finite: bool = False) -> Tensor:
    """MMD²(x, y) as a 0-d differentiable tensor. ``x``: (m, ...), ``y``: (n, ...)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}")
    x, y = _prepare(x, y, check_finite)
    check_batch_size(min(x.shape[0], y.shape[0]), _MIN_BATCH[estimator], f"the {estimator} MMD² estimator")
    return mmd2_from_gram(*gram_blocks(x, y, kernel), estimator=estimator)


def mmd2_block(x: Tensor, y: Tensor, kernel: Kernel, blocks: int, *, check_finite: bool = False) -> Tensor:
    """Mean of unbiased MMD² estimates over ``blocks`` disjoint, equal-sized, contiguous blocks
    (as with one block per device in data-parallel training)."""
    x, y = _prepare(x, y, check_finite)
    positive_int("blocks", blocks)
    m, n = x.shape[0], y.shape[0]
    if m % blocks or n % blocks:
        raise ValueError(f"batch sizes ({m}, {n}) must be divisible by the number of blocks ({blocks})")
    check_batch_size(min(m, n) // blocks, 2, "each block of the block MMD² estimator")
    parts = [mmd2_from_gram(*gram_blocks(xb, yb, kernel)) for xb, yb in zip(x.chunk(blocks), y.chunk(blocks))]
    return torch.stack(parts).mean()


# ----------------------------------------------------------------------------------------------
# data-parallel estimates
#
# In data-parallel training every process r holds its own batch and computes its own loss L_r; the
# quantity being minimised is (1/W) Σ_r L_r, and gradient averaging over the W processes (DDP's, or
# igm.train.distributed's for the critic) supplies the 1/W. The two collectives below are written so
# that this stays exact when L_r depends on other processes' samples: their backward passes return,
# to each process, the SUM over processes of the gradients that reach its own inputs — the chain rule
# for Σ_r L_r. With the full-batch (gathered) estimator every L_r equals the same global L, so each
# process receives W · ∂L/∂(its inputs) and the 1/W of the averaging makes it exactly ∂L/∂θ.


def _group_info(group) -> tuple[int, int]:
    import torch.distributed as dist

    return dist.get_world_size(group), dist.get_rank(group)


class _SumRanks(torch.autograd.Function):
    """y = Σ_r x_r on every process; ∂/∂x_r of Σ_r' L_r'(y) = Σ_r' ∂L_r'/∂y (an all-reduce again)."""

    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:  # noqa: ANN001
        import torch.distributed as dist

        ctx.group = group
        y = x.detach().clone(memory_format=torch.contiguous_format)
        dist.all_reduce(y, op=dist.ReduceOp.SUM, group=group)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN001
        return _SumRanks.apply(grad.contiguous(), ctx.group), None


class _GatherRows(torch.autograd.Function):
    """cat(x_0, ..., x_{W−1}) on every process (equal row counts); the gradient of x_r is the rank-r
    slice of the sum over processes of the gradients of the gathered tensor."""

    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:  # noqa: ANN001
        import torch.distributed as dist

        world, rank = _group_info(group)
        ctx.group, ctx.rank, ctx.rows = group, rank, x.shape[0]
        x = x.detach().contiguous()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x, group=group)
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN001
        # an all-reduce of the whole gradient, then this rank's rows: a reduce-scatter that every
        # backend offers (gloo included), and itself differentiable for double backward
        total = _SumRanks.apply(grad.contiguous(), ctx.group)
        return total[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows], None


def gather_ranks(x: Tensor, group=None) -> Tensor:  # noqa: ANN001
    """Rows of ``x`` from every process of ``group``, concatenated in rank order; differentiable
    (see the section comment for the gradient convention). Every process must pass the same shape.
    Identity when ``torch.distributed`` is not initialised or the group has one process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) == 1:
        return x
    return _GatherRows.apply(x, group)


def sum_ranks(x: Tensor, group=None) -> Tensor:  # noqa: ANN001
    """Σ over the processes of ``group`` of ``x`` (same shape everywhere); differentiable."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) == 1:
        return x
    return _SumRanks.apply(x, group)


def mean_ranks(x: Tensor, group=None) -> Tensor:  # noqa: ANN001
    """Mean over the processes of ``group`` of ``x``: the mean over the global batch of a per-process
    mean over equal-sized batches (e.g. SMMD's E_μ ‖∇φ‖²); differentiable."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) == 1:
        return x
    return _SumRanks.apply(x, group) / dist.get_world_size(group)


def mmd2_gathered(x: Tensor, y: Tensor, kernel: Kernel, estimator: str = "unbiased", group=None, *, check_finite: bool = False) -> Tensor:  # noqa: ANN001
    """The full-batch estimator across processes: :func:`mmd2` of the rows of ``x`` and ``y`` gathered
    from every process of ``group`` (the same value on every process). Gradients reach each process's
    own rows; after averaging parameter gradients over the processes they are exactly those of the
    single-process estimate of the concatenated batch. Cost: O((W·n)²) kernel entries per process."""
    x, y = _prepare(x, y, check_finite)
    return mmd2(gather_ranks(x, group), gather_ranks(y, group), kernel, estimator)


def witness(x: Tensor, y: Tensor, kernel: Kernel) -> Callable[[Tensor], Tensor]:
    """The batch witness ``f(t) = mean_i k(x_i, t) − mean_j k(y_j, t)``, as a callable on (k, ...)."""
    check_pair(x, y, "x and y")
    x, y = as_features(x, "x"), as_features(y, "y")
    m = x.shape[0]

    def f(t: Tensor) -> Tensor:
        t = as_features(t, "t")
        if t.shape[1] != x.shape[1]:
            raise ValueError(f"witness points have dimension {t.shape[1]}, the samples {x.shape[1]}")
        k = kernel(torch.cat([x, y], 0), t)
        return k[:m].mean(0) - k[m:].mean(0)

    return f


def ustat_matrix(x: Tensor, y: Tensor, kernel: Kernel) -> Tensor:
    """``H_ij = k(x_i,x_j) + k(y_i,y_j) − k(x_i,y_j) − k(x_j,y_i)`` with a zero diagonal (m = n).
    MMD²_U is the mean of its off-diagonal entries."""
    x, y = _prepare(x, y, False)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"the U-statistic needs equal sample sizes; got {x.shape[0]} and {y.shape[0]}")
    kxx, kxy, kyy = gram_blocks(x, y, kernel)
    h = kxx + kyy - kxy - kxy.T
    return h - torch.diag_embed(torch.diagonal(h))


def _ustat_cov(h1: Tensor, h2: Tensor) -> Tensor:
    """Unbiased estimate of the covariance of two order-2 U-statistics over the same m joint
    samples (Hoeffding): Cov = 2/(m(m−1)) · [2(m−2) ζ₁ + ζ₂], with ζ₁ = E[h1_ij h2_ik] − θ₁θ₂ and
    ζ₂ = E[h1_ij h2_ij] − θ₁θ₂. Each expectation is estimated from index tuples that are distinct
    where the expectation needs them distinct; θ₁θ₂ = E[h1_ij h2_kl] over four distinct indices
    (the plug-in U₁·U₂ would be biased by Cov(U₁, U₂) itself)."""
    m = h1.shape[0]
    if m < 4:
        raise ValueError(f"the variance estimate needs at least 4 samples; got {m}")
    pairs = m * (m - 1)
    same = (h1 * h2).sum()  # Σ_{i≠j} h1_ij h2_ij
    shared = (h1.sum(1) * h2.sum(1)).sum() - same  # Σ_i Σ_{j≠k} h1_ij h2_ik
    disjoint = h1.sum() * h2.sum() - 4.0 * shared - 2.0 * same  # Σ over four distinct indices
    theta12 = disjoint / (pairs * (m - 2) * (m - 3))
    zeta1 = shared / (pairs * (m - 2)) - theta12
    zeta2 = same / pairs - theta12
    return 2.0 / pairs * (2.0 * (m - 2) * zeta1 + zeta2)


def mmd2_variance(x: Tensor, y: Tensor, kernel: Kernel) -> Tensor:
    """Estimated variance of the ``"u-statistic"`` MMD² estimator (equal sample sizes)."""
    h = ustat_matrix(x, y, kernel)
    return _ustat_cov(h, h)


def mmd2_covariance(x: Tensor, y: Tensor, z: Tensor, kernel: Kernel) -> Tensor:
    """2×2 covariance of (MMD²_U(x, y), MMD²_U(x, z)), the samples paired by index — the joint
    variance used by the relative similarity test."""
    h1, h2 = ustat_matrix(x, y, kernel), ustat_matrix(x, z, kernel)
    v11, v22, v12 = _ustat_cov(h1, h1), _ustat_cov(h2, h2), _ustat_cov(h1, h2)
    return torch.stack([torch.stack([v11, v12]), torch.stack([v12, v22])])
