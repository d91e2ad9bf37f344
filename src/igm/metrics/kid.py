"""Kernel Inception Distance: unbiased MMD² with the cubic polynomial kernel k(a, b) = (aᵀb/d + 1)³,
averaged over random subsets drawn without replacement from each feature set.

Per subset s (size m): MMD²_s = Σ_{i≠j} k(a_i,a_j)/(m(m−1)) + Σ_{i≠j} k(b_i,b_j)/(m(m−1))
− 2 Σ_{i,j} k(a_i,b_j)/m². The result is the mean and the (population, ddof=0) standard deviation
of MMD²_s over the subsets, as in torch-fidelity and the KID paper's code.

Two exact evaluation orders, picked by cost (``method="auto"``):

- ``"gram"``: the dot products between all samples that any subset uses are computed once, in row
  blocks; each subset's block sums are ``w_sᵀ K w_s`` with w_s its 0/1 membership vector, so the
  subsets cost one (S × u) @ (u × rows) matmul per block. Cheapest when S·m² ≳ n² (n ≲ 10⁴).
- ``"subsets"``: the subsets are gathered into (S, m, d) stacks and multiplied in batches, a bounded
  number of subsets at a time. Cheapest for large sets (n = 50 000 with 100 × 1000 subsets).

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
    return (dot.double() / d + 1.0) ** 3


def _block_sums(fx: Tensor, fy: Tensor, wx: Tensor, wy: Tensor, d: int) -> Tensor:
    """Σ_{i,j} w_x[s,i] k(x_i, y_j) w_y[s,j] for every subset s, with the Gram computed in row blocks."""
    rows = max(1, _BLOCK_BYTES // (12 * max(fy.shape[0], 1)))
    out = torch.zeros(wx.shape[0], dtype=torch.float64, device=fx.device)
    for start in range(0, fx.shape[0], rows):
        k = _poly(fx[start : start + rows] @ fy.T, d)
        out += ((wx[:, start : start + rows] @ k) * wy).sum(1)
    return out


def _membership(idx: Tensor) -> tuple[Tensor, Tensor]:
    used, inverse = torch.unique(idx, return_inverse=True)
    w = torch.zeros(idx.shape[0], used.shape[0], dtype=torch.float64, device=idx.device)
    w.scatter_(1, inverse, 1.0)
    return used, w


def _by_gram(fa: Tensor, fb: Tensor, idx_a: Tensor, idx_b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    d = fa.shape[1]
    used_a, wa = _membership(idx_a)
    used_b, wb = _membership(idx_b)
    xa, xb = fa[used_a], fb[used_b]
    saa, sbb, sab = _block_sums(xa, xa, wa, wa, d), _block_sums(xb, xb, wb, wb, d), _block_sums(xa, xb, wa, wb, d)
    diag_a = wa @ _poly((xa * xa).sum(1), d)
    diag_b = wb @ _poly((xb * xb).sum(1), d)
    return saa, sbb, sab, diag_a, diag_b


def _by_subsets(fa: Tensor, fb: Tensor, idx_a: Tensor, idx_b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    (s, m), d = idx_a.shape, fa.shape[1]
    per_subset = 2 * m * d * fa.element_size() + 3 * m * m * (fa.element_size() + 8)
    chunk = max(1, _BLOCK_BYTES // per_subset)
    parts: list[list[Tensor]] = [[] for _ in range(5)]
    for start in range(0, s, chunk):
        xa, xb = fa[idx_a[start : start + chunk]], fb[idx_b[start : start + chunk]]
        kaa = _poly(torch.bmm(xa, xa.transpose(1, 2)), d)
        kbb = _poly(torch.bmm(xb, xb.transpose(1, 2)), d)
        kab = _poly(torch.bmm(xa, xb.transpose(1, 2)), d)
        sums = (kaa.sum((1, 2)), kbb.sum((1, 2)), kab.sum((1, 2)))
        diags = (torch.diagonal(kaa, dim1=1, dim2=2).sum(1), torch.diagonal(kbb, dim1=1, dim2=2).sum(1))
        for bucket, value in zip(parts, sums + diags):
            bucket.append(value)
    return tuple(torch.cat(p) for p in parts)  # type: ignore[return-value]


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
    if method == "auto":
        ua, ub = torch.unique(idx_a).numel(), torch.unique(idx_b).numel()
        method = "gram" if ua * ua + ub * ub + ua * ub <= 3 * s * m * m else "subsets"
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
