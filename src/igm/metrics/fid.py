"""Fréchet distance between two feature sets (FID when the features are Inception pool3).

FID = ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}, all in float64.

The trace of the matrix square root never goes through ``scipy.linalg.sqrtm`` or a general
eigenvalue solver: it is the sum of the square roots of the eigenvalues of a symmetric PSD matrix
with the spectrum of M = Σ₁^{1/2} Σ₂ Σ₁^{1/2} (see :func:`sqrt_trace`).

Fast path (fewer samples than dimensions). With centred feature matrices A (n₁×d), B (n₂×d),
Σ₁ = AᵀA/(n₁−1) and Σ₂ = BᵀB/(n₂−1). The non-zero eigenvalues of M equal those of Σ₂Σ₁ ∝ BᵀB AᵀA,
which equal those of A BᵀB Aᵀ = (ABᵀ)(ABᵀ)ᵀ. Hence Tr M^{1/2} is exactly the sum of the singular
values (the nuclear norm) of ABᵀ/√((n₁−1)(n₂−1)), an n₁×n₂ matrix: no d×d decomposition at all.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["fid", "fid_from_stats", "feature_statistics", "psd_factor", "sqrt_trace"]


def _as64(x: "Tensor | np.ndarray", what: str, ndim: int, device: "torch.device | None" = None) -> Tensor:
    t = torch.as_tensor(x).detach().to(device=device, dtype=torch.float64)
    if t.dim() != ndim:
        raise ValueError(f"{what} must be {ndim}-D; got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{what} contains non-finite values (NaN or inf)")
    return t


def _check_features(f: "Tensor | np.ndarray", what: str, device: "torch.device | None" = None) -> Tensor:
    t = _as64(f, what, 2, device)
    if t.shape[0] < 2:
        raise ValueError(f"{what} needs at least 2 samples to estimate a covariance; got {t.shape[0]}")
    return t


def feature_statistics(features: "Tensor | np.ndarray") -> tuple[Tensor, Tensor]:
    """``(μ, Σ)`` in float64, Σ with the unbiased 1/(n−1) normalisation (as ``np.cov``)."""
    f = _check_features(features, "features")
    mu = f.mean(0)
    c = f - mu
    return mu, c.T @ c / (f.shape[0] - 1)


_EPS = float(torch.finfo(torch.float64).eps)


def _drop_noise(w: Tensor) -> Tensor:
    """Eigenvalues of a symmetric PSD matrix with those below d·eps·λ_max (rounding noise, possibly
    negative) set to 0: their square roots would otherwise add O(√eps) errors to the trace."""
    return torch.where(w > w.shape[0] * _EPS * w.max().clamp_min(0), w, torch.zeros_like(w))


def _psd_sqrt(sigma: Tensor, rank: int | None = None) -> Tensor:
    """A factor R (d×r) with R Rᵀ = Σ (Σ symmetric PSD) from ``eigh``, numerically-zero eigenvalues
    dropped. ``rank`` keeps only the ``rank`` largest eigenpairs (exact when Σ has at most that rank)."""
    w, v = torch.linalg.eigh(sigma)
    w = _drop_noise(w)
    if rank is not None and rank < w.shape[0]:
        w, v = w[-rank:], v[:, -rank:]
    return v * w.sqrt()


def psd_factor(sigma1: Tensor, rank1: int | None = None) -> Tensor:
    """A factor F with F Fᵀ = Σ₁ (symmetric PSD, d×d): the Cholesky factor when Σ₁ is well inside the
    positive-definite cone (backward stable like ``eigh``, several times cheaper), else V Λ^{1/2} from
    ``eigh`` (always when ``rank1`` is given, then truncated to the ``rank1`` largest eigenpairs: exact
    when Σ₁ has at most that rank). Computed once, it serves any number of :func:`sqrt_trace` calls
    against the same Σ₁."""
    s1 = (sigma1 + sigma1.T) / 2
    d = s1.shape[0]
    if rank1 is None:
        chol, info = torch.linalg.cholesky_ex(s1)
        pivots = torch.diagonal(chol) ** 2
        if int(info) == 0 and float(pivots.min()) > 1e3 * d * _EPS * float(torch.diagonal(s1).max()):
            return chol
    return _psd_sqrt(s1, rank1)


def sqrt_trace(sigma1: Tensor, sigma2: Tensor, rank1: int | None = None, factor: Tensor | None = None) -> float:
    """Tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2} for symmetric PSD Σ₁, Σ₂ (d×d).

    For any factor F with F Fᵀ = Σ₁ (:func:`psd_factor`, or ``factor`` when given: then ``sigma1``
    and ``rank1`` are not used), the symmetric PSD matrix Fᵀ Σ₂ F has the eigenvalues of Σ₂Σ₁, hence
    those of M = Σ₁^{1/2} Σ₂ Σ₁^{1/2}: the trace is the sum of the square roots of its eigenvalues
    (``eigvalsh``; rounding noise below d·eps·λ_max set to 0)."""
    if factor is None:
        factor = psd_factor(sigma1, rank1)
    m = factor.T @ sigma2 @ factor
    eig = _drop_noise(torch.linalg.eigvalsh((m + m.T) / 2))
    return float(eig.sqrt().sum())


def _finish(mean_term: float, tr1: float, tr2: float, cross: float) -> float:
    """Combine the terms; a negative result within rounding of the scale is clamped to 0."""
    value = mean_term + tr1 + tr2 - 2.0 * cross
    scale = mean_term + tr1 + tr2
    if value < 0 and -value <= 1e-9 * max(scale, 1e-300) + 1e-12:
        value = 0.0
    return value


def fid_from_stats(
    mu1: "Tensor | np.ndarray",
    sigma1: "Tensor | np.ndarray",
    mu2: "Tensor | np.ndarray",
    sigma2: "Tensor | np.ndarray",
    n1: int | None = None,
    n2: int | None = None,
) -> float:
    """FID from means and covariances.

    ``n1``/``n2``: the sample counts behind each covariance, optional. When one is smaller than the
    dimension d, that covariance has rank ≤ n − 1, and the second decomposition runs on an
    (n−1)×(n−1) matrix (the trace is symmetric in Σ₁ and Σ₂, so the lower-rank one goes first).
    """
    m1 = _as64(mu1, "mu1", 1)
    m2, s1, s2 = (_as64(t, w, k, m1.device) for t, w, k in ((mu2, "mu2", 1), (sigma1, "sigma1", 2), (sigma2, "sigma2", 2)))
    d = m1.shape[0]
    if m2.shape[0] != d or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"shapes disagree: mu1 {tuple(m1.shape)}, sigma1 {tuple(s1.shape)}, mu2 {tuple(m2.shape)}, sigma2 {tuple(s2.shape)}"
        )
    r1 = n1 - 1 if n1 is not None and n1 - 1 < d else None
    r2 = n2 - 1 if n2 is not None and n2 - 1 < d else None
    if r2 is not None and (r1 is None or r2 < r1):  # decompose the lower-rank covariance first
        s1, s2, r1 = s2, s1, r2
    diff = m1 - m2
    cross = sqrt_trace(s1, s2, r1)
    return _finish(float(diff @ diff), float(torch.trace(s1)), float(torch.trace(s2)), cross)


def fid(features_a: "Tensor | np.ndarray", features_b: "Tensor | np.ndarray") -> float:
    """FID between two feature sets (n_a, d) and (n_b, d), computed in float64.

    When min(n_a, n_b) < d the trace term is the nuclear norm of ABᵀ/√((n_a−1)(n_b−1)) (exact, see
    the module docstring); otherwise it goes through two d×d symmetric eigendecompositions."""
    a = _check_features(features_a, "features_a")
    b = _check_features(features_b, "features_b", a.device)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    (n1, d), n2 = a.shape, b.shape[0]
    mu1, mu2 = a.mean(0), b.mean(0)
    ca, cb = a - mu1, b - mu2
    diff = mu1 - mu2
    tr1 = float((ca * ca).sum()) / (n1 - 1)
    tr2 = float((cb * cb).sum()) / (n2 - 1)
    if min(n1, n2) < d:
        cross = float(torch.linalg.svdvals(ca @ cb.T).sum()) / float(np.sqrt((n1 - 1) * (n2 - 1)))
    else:
        cross = sqrt_trace(ca.T @ ca / (n1 - 1), cb.T @ cb / (n2 - 1))
    return _finish(float(diff @ diff), tr1, tr2, cross)
