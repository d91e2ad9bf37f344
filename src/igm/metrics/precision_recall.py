"""k-nearest-neighbour manifold metrics: precision and recall (Kynkäänniemi et al., 2019) and density
and coverage (Naeem et al., 2020).

Each sample x of a set X gets a ball B(x, ρ_k(x)), ρ_k(x) the distance from x to its k-th nearest
neighbour in X, x itself excluded. Balls are closed (a point at distance exactly ρ is inside), as in
the authors' and torch-fidelity's code; Naeem et al.'s ``prdc`` package uses open balls (``<``),
which differs only for points exactly on a boundary (duplicated samples). With R the N real and G
the M generated (fake) features:

- precision = share of g ∈ G inside ∪_r B(r, ρ_k(r))      (k = 3)
- recall    = share of r ∈ R inside ∪_g B(g, ρ_k(g))      (k = 3)
- density   = (1/(kM)) Σ_g #{r : g ∈ B(r, ρ_k(r))}          (k = 5; may exceed 1)
- coverage  = share of r ∈ R whose ball B(r, ρ_k(r)) holds some g (k = 5)

Distances are Euclidean, in float64, as squared distances ‖a‖² + ‖b‖² − 2aᵀb (square roots are never
needed: d ≤ ρ ⇔ d² ≤ ρ²) after subtracting the real mean from both sets, which leaves distances
unchanged and keeps the norms, hence the cancellation in the expansion, small. A squared distance
below d·eps·(‖a‖² + ‖b‖²) (the rounding bound of the expansion) is set to 0, so that duplicated
points are at distance exactly 0 everywhere they are compared.

Memory: the pairwise matrices are computed in ``block × block`` tiles and reduced at once (running k
smallest per row; "any"/count per row and column), so nothing larger than one tile (8·block² bytes,
plus temporaries of the same size) is held besides the features and O(N + M) per-sample vectors: a
50 000 × 50 000 distance matrix is never formed. Work stays on the features' device.
"""

from __future__ import annotations


import numpy as np
import torch
from torch import Tensor

from igm.checks import int_at_least

__all__ = ["precision_recall", "density_coverage", "knn_radii2", "BLOCK"]

BLOCK = 2048  # tile side: one float64 tile is 32 MiB
_EPS = float(torch.finfo(torch.float64).eps)


def _as_features(x: "Tensor | np.ndarray", what: str, device: "torch.device | None" = None) -> Tensor:
    t = torch.as_tensor(x).detach()
    if t.dim() != 2:
        raise ValueError(f"{what} must be 2-D (n, d); got shape {tuple(t.shape)}")
    t = t.to(device=device, dtype=torch.float64)
    if not torch.isfinite(t).all():
        raise ValueError(f"{what} contains non-finite values (NaN or inf)")
    return t


def _prepare(real, fake, k: int, block: int, need_fake_radii: bool) -> tuple[Tensor, Tensor, int, int]:
    r = _as_features(real, "real_features")
    f = _as_features(fake, "fake_features", r.device)
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"feature dimensions differ: real {r.shape[1]} vs fake {f.shape[1]}")
    k = int_at_least(k, "k", 1)
    block = int_at_least(block, "block", 1)
    if k >= r.shape[0]:
        raise ValueError(f"k={k} needs more than k real samples (each ball excludes its centre); got {r.shape[0]}")
    if need_fake_radii and k >= f.shape[0]:
        raise ValueError(f"k={k} needs more than k fake samples (each ball excludes its centre); got {f.shape[0]}")
    if f.shape[0] == 0:
        raise ValueError("fake_features is empty")
    mean = r.mean(0)
    return r - mean, f - mean, k, block


class _Tiles:
    """Squared distances between row tiles of ``a`` and column tiles of ``b``, snapped to 0 below the
    rounding bound of the expansion."""

    def __init__(self, a: Tensor, b: Tensor, block: int) -> None:
        self.a, self.b, self.block = a, b, block
        self.a2, self.b2 = (a * a).sum(1), (b * b).sum(1)
        self.snap = a.shape[1] * _EPS

    def spans(self, n: int) -> list[tuple[int, int]]:
        return [(i, min(i + self.block, n)) for i in range(0, n, self.block)]

    def __call__(self, rows: tuple[int, int], cols: tuple[int, int]) -> Tensor:
        (r0, r1), (c0, c1) = rows, cols
        scale = self.a2[r0:r1, None] + self.b2[None, c0:c1]
        d2 = scale - 2.0 * (self.a[r0:r1] @ self.b[c0:c1].T)
        return d2.masked_fill_(d2 <= self.snap * scale, 0.0)


def knn_radii2(x: "Tensor | np.ndarray", k: int, block: int = BLOCK) -> Tensor:
    """Squared distance from each row of ``x`` (n, d) to its k-th nearest neighbour among the other
    rows (float64, shape (n,)), computed tile by tile with a running list of the k smallest."""
    x = _as_features(x, "features")
    k, block = int_at_least(k, "k", 1), int_at_least(block, "block", 1)
    if k >= x.shape[0]:
        raise ValueError(f"k={k} needs more than k samples (each ball excludes its centre); got {x.shape[0]}")
    return _radii2(x - x.mean(0), k, block)


def _radii2(x: Tensor, k: int, block: int) -> Tensor:
    tiles = _Tiles(x, x, block)
    n = x.shape[0]
    out = torch.empty(n, dtype=torch.float64, device=x.device)
    spans = tiles.spans(n)
    for rows in spans:
        best = None
        for cols in spans:
            d2 = tiles(rows, cols)
            if rows == cols:
                d2.fill_diagonal_(float("inf"))  # the centre is not its own neighbour
            if best is not None:
                d2 = torch.cat([best, d2], 1)
            best = d2.topk(min(k, d2.shape[1]), dim=1, largest=False).values
        out[rows[0] : rows[1]] = best[:, k - 1]
    return out


def _cross(real: Tensor, fake: Tensor, rad_real: Tensor, rad_fake: "Tensor | None", block: int) -> dict[str, Tensor]:
    """One pass over the fake × real tiles. Returns, per fake sample, whether it lies in some real ball
    (``in_real``) and in how many (``count``); per real sample, whether its own ball holds a fake one
    (``covered``) and, if ``rad_fake`` is given, whether it lies in some fake ball (``in_fake``)."""
    tiles = _Tiles(fake, real, block)
    m, n = fake.shape[0], real.shape[0]
    dev = real.device
    out = {
        "in_real": torch.zeros(m, dtype=torch.bool, device=dev),
        "count": torch.zeros(m, dtype=torch.int64, device=dev),
        "covered": torch.zeros(n, dtype=torch.bool, device=dev),
    }
    if rad_fake is not None:
        out["in_fake"] = torch.zeros(n, dtype=torch.bool, device=dev)
    for rows in tiles.spans(m):
        for cols in tiles.spans(n):
            d2 = tiles(rows, cols)
            (r0, r1), (c0, c1) = rows, cols
            inside = d2 <= rad_real[None, c0:c1]  # fake row inside real column's ball
            out["in_real"][r0:r1] |= inside.any(1)
            out["count"][r0:r1] += inside.sum(1)
            out["covered"][c0:c1] |= inside.any(0)
            if rad_fake is not None:
                out["in_fake"][c0:c1] |= (d2 <= rad_fake[r0:r1, None]).any(0)
    return out


def _share(mask: Tensor) -> float:
    return int(mask.sum()) / mask.numel()


def precision_recall(
    real_features: "Tensor | np.ndarray", fake_features: "Tensor | np.ndarray", k: int = 3, block: int = BLOCK
) -> tuple[float, float]:
    """``(precision, recall)`` of the generated ``fake_features`` (M, d) against ``real_features``
    (N, d): the share of fake samples inside the union of the real k-NN balls, and the share of real
    samples inside the union of the fake ones. Needs k < N and k < M. Memory: tiles of
    ``block × block`` float64 (see the module docstring)."""
    r, f, k, block = _prepare(real_features, fake_features, k, block, need_fake_radii=True)
    out = _cross(r, f, _radii2(r, k, block), _radii2(f, k, block), block)
    return _share(out["in_real"]), _share(out["in_fake"])


def density_coverage(
    real_features: "Tensor | np.ndarray", fake_features: "Tensor | np.ndarray", k: int = 5, block: int = BLOCK
) -> tuple[float, float]:
    """``(density, coverage)`` of ``fake_features`` (M, d) against ``real_features`` (N, d), balls
    around the real samples only: density = Σ_g #{real balls holding g} / (kM), coverage = share of
    real balls holding at least one fake sample. Needs k < N."""
    r, f, k, block = _prepare(real_features, fake_features, k, block, need_fake_radii=False)
    out = _cross(r, f, _radii2(r, k, block), None, block)
    return int(out["count"].sum()) / (k * f.shape[0]), _share(out["covered"])
