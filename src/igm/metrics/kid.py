"""Kernel Inception Distance: unbiased MMD² with the cubic polynomial kernel k(a, b) = (aᵀb/d + 1)³,
averaged over random subsets drawn without replacement from each feature set.

Per subset s (size m): MMD²_s = Σ_{i≠j} k(a_i,a_j)/(m(m−1)) + Σ_{i≠j} k(b_i,b_j)/(m(m−1))
− 2 Σ_{i,j} k(a_i,b_j)/m². The result is the mean and the (population, ddof=0) standard deviation
of MMD²_s over the subsets, as in torch-fidelity and the KID paper's code.

Two exact evaluation orders, picked by cost (``method="auto"``):

- ``"gram"``: the kernel between all samples that any subset uses is computed once, in row blocks;
  each subset's sums are ``w_sᵀ K w_s`` with w_s its 0/1 membership vector, so all subsets at once
  cost one (S × u) @ (u × block) matmul per block: vectorised over subsets. Cheapest when
  2·S·m² ≳ n² (n ≲ 14 000 for 100 × 1000 subsets).
- ``"subsets"``: one subset at a time, for large sets (n = 50 000 with 100 × 1000 subsets).

Both compute only the blocks on or above the diagonal of the symmetric K_aa and K_bb: half the
products of the three full m×m Gram matrices per subset that the reference code computes.

The dot products run in the input's dtype (float32 inputs: float32 matmul, as torch-fidelity's NumPy
code does); the kernel values and every sum are float64.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

__all__ = ["kid", "kid_subset_indices", "kid_from_indices"]

_BLOCK_BYTES = 256 * 2**20  # memory bound for one block of kernel values / gathered subsets


def kid_subset_indices(n_a: int, n_b: int, subsets: int, subset_size: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """The subsets :func:`kid` uses: ``(idx_a, idx_b)``, each (subsets, subset_size) int64, rows
    without replacement. A ``torch.Generator`` seeded with ``seed`` draws all rows of ``idx_a``
    (one ``randperm`` each), then all rows of ``idx_b``."""
    if subsets < 1:
        raise ValueError(f"subsets must be a positive integer; got {subsets}")
    if subset_size < 2 or subset_size > min(n_a, n_b):
        raise ValueError(f"subset_size must be in [2, min(n_a, n_b) = {min(n_a, n_b)}]; got {subset_size}")
    g = torch.Generator().manual_seed(int(seed))
    idx_a = torch.stack([torch.randperm(n_a, generator=g)[:subset_size] for _ in range(subsets)])
    idx_b = torch.stack([torch.randperm(n_b, generator=g)[:subset_size] for _ in range(subsets)])
    return idx_a, idx_b


def _poly(dot: Tensor, d: int) -> Tensor:
    """(dot/d + 1)³, in place on a fresh ``dot``; the cube (and everything after) in float64."""
    return dot.mul_(1.0 / d).add_(1.0).double().pow_(3)


def _weighted_sums(
    fx: Tensor, wx: Tensor, fy: "Tensor | None" = None, wy: "Tensor | None" = None, rows: int = 1024
) -> Tensor:
    """Σ_{i,j} w_x[s,i] k(x_i, y_j) w_y[s,j] for every row s of the weights, the kernel computed in row
    blocks. ``fy=None`` means y = x, w_y = w_x: only the blocks on or right of the diagonal are
    computed, and those right of it count twice (half the products)."""
    symmetric = fy is None
    fy, wy = (fx, wx) if symmetric else (fy, wy)
    n, d = fx.shape
    rows = int(min(rows, max(64, _BLOCK_BYTES // (12 * max(fy.shape[0], 1)))))
    out = torch.zeros(wx.shape[0], dtype=torch.float64, device=fx.device)
    for r0 in range(0, n, rows):
        r1 = min(r0 + rows, n)
        c0 = r0 if symmetric else 0
        part = (wx[:, r0:r1] @ _poly(fx[r0:r1] @ fy[c0:].T, d)) * wy[:, c0:]
        out += part.sum(1) if not symmetric else part[:, : r1 - c0].sum(1) + 2.0 * part[:, r1 - c0 :].sum(1)
    return out


def _membership(idx: Tensor) -> tuple[Tensor, Tensor]:
    used, inverse = torch.unique(idx, return_inverse=True)
    w = torch.zeros(idx.shape[0], used.shape[0], dtype=torch.float64, device=idx.device)
    w.scatter_(1, inverse, 1.0)
    return used, w


def _by_gram(fa: Tensor, fb: Tensor, idx_a: Tensor, idx_b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One pass over all used samples; subset s selects its sums with its 0/1 membership row."""
    d = fa.shape[1]
    used_a, wa = _membership(idx_a)
    used_b, wb = _membership(idx_b)
    xa, xb = fa[used_a], fb[used_b]
    diag_a = wa @ _poly((xa * xa).sum(1), d)
    diag_b = wb @ _poly((xb * xb).sum(1), d)
    return _weighted_sums(xa, wa), _weighted_sums(xb, wb), _weighted_sums(xa, wa, xb, wb), diag_a, diag_b


def _by_subsets(fa: Tensor, fb: Tensor, idx_a: Tensor, idx_b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One subset at a time (memory O(m·d + block·m)); on CPU a loop of matmuls is as fast as a
    batched (S, m, d) @ (S, d, m) product and allows the half-cost symmetric blocks."""
    m, d = idx_a.shape[1], fa.shape[1]
    ones = torch.ones(1, m, dtype=torch.float64, device=fa.device)
    rows = max(64, -(-m // 4))  # 4 row blocks: the symmetric Gram matrices cost 5/8 of full ones
    out = torch.zeros(5, idx_a.shape[0], dtype=torch.float64, device=fa.device)
    for s, (ia, ib) in enumerate(zip(idx_a, idx_b)):
        xa, xb = fa[ia], fb[ib]
        out[0, s], out[1, s] = _weighted_sums(xa, ones, rows=rows)[0], _weighted_sums(xb, ones, rows=rows)[0]
        out[2, s] = _weighted_sums(xa, ones, xb, ones)[0]
        out[3, s], out[4, s] = _poly((xa * xa).sum(1), d).sum(), _poly((xb * xb).sum(1), d).sum()
    return tuple(out)  # type: ignore[return-value]


def kid_from_indices(features_a: Tensor, features_b: Tensor, idx_a: Tensor, idx_b: Tensor, method: str = "auto") -> Tensor:
    """Unbiased MMD² (KID kernel) of every subset pair ``(features_a[idx_a[s]], features_b[idx_b[s]])``;
    returns a float64 tensor of shape (subsets,). Rows of the index matrices must not repeat an index."""
    fa, fb = _check(features_a, features_b)
    idx_a, idx_b = torch.as_tensor(idx_a).to(fa.device), torch.as_tensor(idx_b).to(fa.device)
    if idx_a.dim() != 2 or idx_a.shape != idx_b.shape:
        raise ValueError(f"index matrices must both be (subsets, m); got {tuple(idx_a.shape)} and {tuple(idx_b.shape)}")
    s, m = idx_a.shape
    if m < 2:
        raise ValueError(f"subsets need at least 2 samples; got {m}")
    if method == "auto":  # kernel evaluations (the symmetric blocks count half) plus the weighting
        ua, ub = torch.unique(idx_a).numel(), torch.unique(idx_b).numel()
        d = fa.shape[1]
        method = "gram" if (ua * ua / 2 + ub * ub / 2 + ua * ub) * (d + s) <= 2 * s * m * m * d else "subsets"
    if method not in ("gram", "subsets"):
        raise ValueError(f"unknown method {method!r}; valid: 'auto', 'gram', 'subsets'")
    saa, sbb, sab, diag_a, diag_b = (_by_gram if method == "gram" else _by_subsets)(fa, fb, idx_a, idx_b)
    return (saa - diag_a + sbb - diag_b) / (m * (m - 1)) - 2.0 * sab / (m * m)


def _check(features_a: Tensor, features_b: Tensor) -> tuple[Tensor, Tensor]:
    fa, fb = torch.as_tensor(features_a).detach(), torch.as_tensor(features_b).detach()
    if fa.dim() != 2 or fb.dim() != 2:
        raise ValueError(f"features must be 2-D (n, d); got {tuple(fa.shape)} and {tuple(fb.shape)}")
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"feature dimensions differ: {fa.shape[1]} vs {fb.shape[1]}")
    dtype = fa.dtype if fa.dtype == torch.float64 and fb.dtype == torch.float64 else torch.float32
    fa, fb = fa.to(dtype), fb.to(device=fa.device, dtype=dtype)
    if not (torch.isfinite(fa).all() and torch.isfinite(fb).all()):
        raise ValueError("features contain non-finite values (NaN or inf)")
    return fa, fb


def kid(
    features_a: Tensor,
    features_b: Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    allow_smaller: bool = False,
    method: str = "auto",
) -> tuple[float, float]:
    """KID ``(mean, std)`` over ``subsets`` random subsets of ``subset_size`` from each set.

    Fewer samples than ``subset_size`` in either set raises a ValueError, unless ``allow_smaller``:
    then ``subset_size = min(n_a, n_b)`` and a warning says so. Reproducible under ``seed`` (see
    :func:`kid_subset_indices` for the draws)."""
    fa, fb = _check(features_a, features_b)
    n_a, n_b = fa.shape[0], fb.shape[0]
    if min(n_a, n_b) < subset_size:
        if not allow_smaller:
            raise ValueError(
                f"KID subset_size={subset_size} exceeds the samples available (features_a: {n_a}, features_b: "
                f"{n_b}); pass a smaller subset_size, more samples, or allow_smaller=True"
            )
        warnings.warn(
            f"KID: only {min(n_a, n_b)} samples (features_a: {n_a}, features_b: {n_b}); using subset_size="
            f"{min(n_a, n_b)} instead of {subset_size}",
            stacklevel=2,
        )
        subset_size = min(n_a, n_b)
    idx_a, idx_b = kid_subset_indices(n_a, n_b, subsets, subset_size, seed)
    values = kid_from_indices(fa, fb, idx_a, idx_b, method)
    return float(values.mean()), float(values.std(unbiased=False))
