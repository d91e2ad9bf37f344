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
- ``"subsets"``: one subset at a time, for large sets (n = 50 000 with 100 × 1000 subsets). The
  subset's rows of both sets are gathered into one (2m × d) matrix Z = [A; B], and the upper
  triangle of Z Zᵀ, which holds exactly the pairs the estimator needs (within A, within B, and A × B),
  is computed in column blocks: 2m² + O(m·block) dot products per subset, where three full m × m
  Gram matrices would take 3m².

Both compute only the blocks on or above the diagonal of the symmetric K_aa and K_bb.

The dot products run in the input's dtype (float32 inputs: float32 matmul, as torch-fidelity's NumPy
code does); the kernel values and every sum are float64. On the CPU, float32 products go through
oneDNN's matmul where PyTorch has it (AVX-512 kernels: about twice the throughput of PyTorch's MKL
``mm`` on the AMD CPU of ``benchmarks/RESULTS.md``); elsewhere, and for float64, ``x @ y.T``.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

__all__ = ["kid", "kid_subset_indices", "kid_from_indices"]

_BLOCK_BYTES = 256 * 2**20  # memory bound for one block of kernel values / gathered subsets
_SUBSET_COLS = 250  # column block of the subsets path (measured at m = 1000: 125-500 alike, 100 slower)


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


def _onednn_ok(x: Tensor) -> bool:
    """Whether ``_dots`` may use oneDNN: CPU float32, and no reduced-precision oneDNN matmul switched on."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or not torch.backends.mkldnn.is_available():
        return False
    if not hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return False
    precision = getattr(getattr(torch.backends.mkldnn, "matmul", None), "fp32_precision", "none")
    return precision in ("none", "ieee")


def _dots(x: Tensor, y: Tensor, plus_one: bool = False) -> Tensor:
    """``x @ y.T`` (+ 1 if ``plus_one``) as a fresh tensor, through oneDNN's float32 matmul (the + 1
    as its bias) on the CPU when :func:`_onednn_ok`."""
    if _onednn_ok(x):
        one = torch.ones(y.shape[0], dtype=x.dtype) if plus_one else None
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), y.contiguous(), one, "none", [], "")
    return (x @ y.T).add_(1.0) if plus_one else x @ y.T


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
        part = (wx[:, r0:r1] @ _poly(_dots(fx[r0:r1], fy[c0:]), d)) * wy[:, c0:]
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


def _subset_sums(z: Tensor, zd: Tensor, m: int, cols: int) -> Tensor:
    """(Σ K_aa, Σ K_bb, Σ K_ab, Σ diag K_aa, Σ diag K_bb) of Z = [A; B] (A, B: m rows each; ``zd`` = Z/d)
    from the upper triangle of K = k(Z, Z), in column blocks that do not straddle A and B: block
    [c0, c1) is k(Z[:c1], Z[c0:c1]), whose rows c0:c1 are a full diagonal block and whose rows above
    count twice, except the cross pairs (rows above m in a B block): once."""
    out = torch.zeros(5, dtype=torch.float64, device=z.device)
    for base in (0, m):
        for c0 in range(base, base + m, cols):
            c1 = min(c0 + cols, base + m)
            k = _dots(zd[:c1], z[c0:c1], plus_one=True).double().pow_(3)
            rows = k.sum(1)
            own = 0 if base == 0 else 1  # which set's symmetric sum this block adds to
            out[own] += rows[c0:].sum() + 2.0 * rows[base:c0].sum()
            out[3 + own] += k[c0:].diagonal().sum()
            if base:
                out[2] += rows[:m].sum()
    return out


def _by_subsets(fa: Tensor, fb: Tensor, idx_a: Tensor, idx_b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One subset at a time into one reused (2m × d) buffer (memory O(m·d + m·block)). On the CPU a loop
    of matmuls is as fast as a batched (S, m, d) @ (S, d, m) product and allows the half-cost blocks."""
    m = idx_a.shape[1]
    z = torch.empty(2 * m, fa.shape[1], dtype=fa.dtype, device=fa.device)
    zd = torch.empty_like(z)
    cols = int(max(16, min(_SUBSET_COLS, _BLOCK_BYTES // (12 * 2 * m))))
    out = torch.zeros(5, idx_a.shape[0], dtype=torch.float64, device=fa.device)
    for s, (ia, ib) in enumerate(zip(idx_a, idx_b)):
        torch.index_select(fa, 0, ia, out=z[:m])
        torch.index_select(fb, 0, ib, out=z[m:])
        torch.mul(z, 1.0 / fa.shape[1], out=zd)  # exact for d a power of two (2048)
        out[:, s] = _subset_sums(z, zd, m, cols)
    return tuple(out)  # type: ignore[return-value]


def _auto_method(idx_a: Tensor, idx_b: Tensor, d: int) -> str:
    """The cheaper order by kernel evaluations (the symmetric blocks count half) plus the weighting."""
    (s, m), ua, ub = idx_a.shape, torch.unique(idx_a).numel(), torch.unique(idx_b).numel()
    return "gram" if (ua * ua / 2 + ub * ub / 2 + ua * ub) * (d + s) <= 2 * s * m * m * d else "subsets"


def kid_from_indices(features_a: Tensor, features_b: Tensor, idx_a: Tensor, idx_b: Tensor, method: str = "auto") -> Tensor:
    """Unbiased MMD² (KID kernel) of every subset pair ``(features_a[idx_a[s]], features_b[idx_b[s]])``;
    returns a float64 tensor of shape (subsets,). Rows of the index matrices must not repeat an index."""
    fa, fb = _check(features_a, features_b)
    idx_a, idx_b = torch.as_tensor(idx_a).to(fa.device), torch.as_tensor(idx_b).to(fa.device)
    if idx_a.dim() != 2 or idx_a.shape != idx_b.shape:
        raise ValueError(f"index matrices must both be (subsets, m); got {tuple(idx_a.shape)} and {tuple(idx_b.shape)}")
    m = idx_a.shape[1]
    if m < 2:
        raise ValueError(f"subsets need at least 2 samples; got {m}")
    if method == "auto":
        method = _auto_method(idx_a, idx_b, fa.shape[1])
    if method not in ("gram", "subsets"):
        raise ValueError(f"unknown method {method!r}; valid: 'auto', 'gram', 'subsets'")
    saa, sbb, sab, diag_a, diag_b = (_by_gram if method == "gram" else _by_subsets)(fa, fb, idx_a, idx_b)
    return (saa - diag_a + sbb - diag_b) / (m * (m - 1)) - 2.0 * sab / (m * m)


def _all_finite(x: Tensor) -> bool:
    """Whether every entry is finite. A sum is finite only if every term is, unless it overflows: the
    elementwise check (several times slower on 50 000 × 2048 features) runs only then."""
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def _check(features_a: Tensor, features_b: Tensor) -> tuple[Tensor, Tensor]:
    fa, fb = torch.as_tensor(features_a).detach(), torch.as_tensor(features_b).detach()
    if fa.dim() != 2 or fb.dim() != 2:
        raise ValueError(f"features must be 2-D (n, d); got {tuple(fa.shape)} and {tuple(fb.shape)}")
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"feature dimensions differ: {fa.shape[1]} vs {fb.shape[1]}")
    dtype = fa.dtype if fa.dtype == torch.float64 and fb.dtype == torch.float64 else torch.float32
    fa, fb = fa.to(dtype), fb.to(device=fa.device, dtype=dtype)
    if not (_all_finite(fa) and _all_finite(fb)):
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
