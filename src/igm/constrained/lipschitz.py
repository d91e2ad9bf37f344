"""Lipschitz MMD estimator (Arbel et al., 2018, "On gradient regularizers for MMD GANs", App. D).

The Lipschitz MMD between empirical distributions P̂ (samples ``x``) and Q̂ (samples ``y``) is

    sup_f  E_P̂ f − E_Q̂ f   s.t.  ‖f‖_H ≤ B,  ‖∇f(g_j)‖₂ ≤ L  for every grid point g_j,

where f = Σ_i α_i k(z_i, ·) is restricted to the span of kernel functions centred at support
points z_i.  The objective is linear in α and every constraint is a second-order cone, so the
problem is solved to solver tolerance with cvxpy (Clarabel by default).  The RKHS ball is
written in the orthonormal eigenbasis of K_zz (numerically null directions dropped), which
keeps the cone program small and well conditioned.  The number of variables and
constraints grows with the number of support/grid points, hence this is meant for 1-D to 3-D
toy problems (DiracGAN, 2-D mixtures), not for image data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from igm.checks import positive

__all__ = ["LipschitzMMDResult", "lipschitz_mmd"]

Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ArrayLike = Any  # torch.Tensor | np.ndarray | sequence

#: Maximum number of support points and of grid points (each gives a cone constraint).
MAX_POINTS = 2000
#: Default number of grid points per dimension, indexed by the data dimension D.
_GRID_PER_DIM = {1: 64, 2: 25, 3: 10}
#: Relative eigenvalue cut-off for the support Gram matrix.
_EIG_RTOL = 1e-10


def _as_2d(a: ArrayLike, name: str) -> np.ndarray:
    """Convert ``a`` to a float64 numpy array of shape (n, d); 1-D input becomes (n, 1)."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (n, d), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values")
    return arr


def _gram(kernel: Kernel, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        k = kernel(torch.from_numpy(a), torch.from_numpy(b))
    return k.detach().to(torch.float64).cpu().numpy()


def _kernel_grad(kernel: Kernel, support: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Return J with J[j, :, i] = ∇_t k(z_i, t) at t = g_j, shape (M, D, N), via autograd."""
    g = torch.from_numpy(grid)
    rows = []
    for z in torch.from_numpy(support):
        t = g.clone().requires_grad_(True)
        k = kernel(z[None, :], t)  # (1, M); entry j depends on t_j only
        (grad,) = torch.autograd.grad(k.sum(), t, allow_unused=True)
        rows.append(torch.zeros_like(g) if grad is None else grad.detach())
    return torch.stack(rows, dim=-1).to(torch.float64).numpy()  # (M, D, N)


def default_grid(points: np.ndarray) -> np.ndarray:
    """Regular grid over the bounding box of ``points`` padded by 10% (at least ±1e-3)."""
    d = points.shape[1]
    if d not in _GRID_PER_DIM:
        raise ValueError(
            f"default grid is for low-dimensional data only (D <= 3, got D={d}); "
            "pass grid= explicitly"
        )
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = np.maximum(0.1 * (hi - lo), 1e-3)
    n = _GRID_PER_DIM[d]
    axes = [np.linspace(a - p, b + p, n) for a, b, p in zip(lo, hi, pad)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _default_solver() -> str:
    import cvxpy as cp

    return "CLARABEL" if "CLARABEL" in cp.installed_solvers() else "SCS"


@dataclass(frozen=True)
class LipschitzMMDResult:
    """Solution of the Lipschitz MMD program.

    Attributes:
        value: optimal value E_P̂ f − E_Q̂ f (≥ 0).
        alpha: coefficients (N,) of the witness f = Σ_i α_i k(z_i, ·).
        support: support points z_i, shape (N, D).
        status: cvxpy status string ("optimal" or "optimal_inaccurate").
        grid: grid points where the gradient constraint was imposed, shape (M, D).
        kernel: the kernel used (needed by :meth:`witness`).
    """

    value: float
    alpha: np.ndarray
    support: np.ndarray
    status: str
    grid: np.ndarray = field(default_factory=lambda: np.empty((0, 0)), repr=False)
    kernel: Kernel | None = field(default=None, repr=False, compare=False)

    def witness(self, t: ArrayLike) -> np.ndarray:
        """Evaluate the witness f at points ``t`` (shape (n, D), or (n,) when D = 1)."""
        if self.kernel is None:
            raise RuntimeError("this result carries no kernel; cannot evaluate the witness")
        pts = _as_2d(t, "t")
        if pts.shape[1] != self.support.shape[1]:
            raise ValueError(
                f"t has dimension {pts.shape[1]}, expected {self.support.shape[1]}"
            )
        return self.alpha @ _gram(self.kernel, self.support, pts)


def lipschitz_mmd(
    x: ArrayLike,
    y: ArrayLike,
    kernel: Kernel,
    *,
    lipschitz: float = 1.0,
    grid: ArrayLike | None = None,
    support: ArrayLike | None = None,
    solver: str | None = None,
    rkhs_bound: float = 1.0,
) -> LipschitzMMDResult:
    """Lipschitz MMD between samples ``x`` (m, D) and ``y`` (n, D), solved as an SOCP.

    Args:
        x, y: samples (torch tensors or numpy arrays; 1-D input is treated as (n, 1)).
        kernel: ``kernel(a, b)`` mapping torch tensors (n, D), (m, D) to the (n, m) Gram
            matrix; must be differentiable in its second argument (used in float64).
        lipschitz: bound L > 0 on ‖∇f‖₂ at each grid point.
        grid: points where the gradient is constrained; default: regular grid over the
            padded bounding box of x ∪ y (64 / 25 / 10 points per dim for D = 1 / 2 / 3).
        support: centres z_i of the witness; default x ∪ y ∪ grid (duplicates removed).
        solver: cvxpy solver name; default CLARABEL if installed, else SCS.
        rkhs_bound: bound B > 0 on the RKHS norm of f.

    Returns:
        A :class:`LipschitzMMDResult`.

    Raises:
        ValueError: on invalid inputs or a problem too large for a dense SOCP.
        RuntimeError: if the solver fails or does not report an optimal solution.
    """
    xs, ys = _as_2d(x, "x"), _as_2d(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x and y dimensions differ: {xs.shape[1]} vs {ys.shape[1]}")
    dim = xs.shape[1]
    lipschitz, rkhs_bound = positive("lipschitz", lipschitz), positive("rkhs_bound", rkhs_bound)

    g = default_grid(np.vstack([xs, ys])) if grid is None else _as_2d(grid, "grid")
    if g.shape[1] != dim:
        raise ValueError(f"grid has dimension {g.shape[1]}, data has {dim}")
    if support is None:
        z = np.unique(np.vstack([xs, ys, g]), axis=0)
    else:
        z = _as_2d(support, "support")
        if z.shape[1] != dim:
            raise ValueError(f"support has dimension {z.shape[1]}, data has {dim}")
    for name, arr in (("grid", g), ("support", z)):
        if arr.shape[0] > MAX_POINTS:
            raise ValueError(
                f"too many {name} points ({arr.shape[0]} > {MAX_POINTS}) for a dense SOCP; "
                "subsample x/y or pass a smaller support= / grid="
            )

    # Linear objective: w = K_zx 1/m − K_zy 1/n.
    w = _gram(kernel, z, xs).mean(axis=1) - _gram(kernel, z, ys).mean(axis=1)
    # RKHS norm: with K_zz = U diag(lam) U^T, alpha = U_r diag(lam_r)^(-1/2) beta gives
    # alpha^T K_zz alpha = |beta|^2 exactly on the retained eigenspace; eigenvalues below
    # _EIG_RTOL * max are numerically null directions and are dropped (a hard version of
    # the usual jitter), which keeps the cone program small and well conditioned.
    kzz = _gram(kernel, z, z)
    lam, vec = np.linalg.eigh(0.5 * (kzz + kzz.T))
    keep = lam > _EIG_RTOL * max(float(lam[-1]), 0.0)
    if not keep.any():
        raise ValueError("kernel Gram matrix on the support is numerically zero")
    basis = vec[:, keep] / np.sqrt(lam[keep])  # (N, r): alpha = basis @ beta
    jac = _kernel_grad(kernel, z, g).reshape(-1, z.shape[0]) @ basis  # (M*D, r)
    n_grid = g.shape[0]

    import cvxpy as cp  # imported here: cvxpy is slow to import and only this estimator needs it

    beta = cp.Variable(basis.shape[1])
    grads = cp.reshape(jac @ beta, (n_grid, dim), order="C")
    constraints = [
        cp.SOC(cp.Constant(float(rkhs_bound)), beta),
        cp.SOC(np.full(n_grid, float(lipschitz)), grads, axis=1),
    ]
    problem = cp.Problem(cp.Maximize((w @ basis) @ beta), constraints)
    solver_name = solver or _default_solver()
    try:
        problem.solve(solver=solver_name)
    except cp.error.SolverError as exc:
        raise RuntimeError(f"cvxpy solver {solver_name} failed: {exc}") from exc
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or beta.value is None:
        raise RuntimeError(f"cvxpy solver {solver_name} returned status {problem.status!r}")

    a = basis @ np.asarray(beta.value, dtype=np.float64)
    value = max(float(w @ a), 0.0)
    return LipschitzMMDResult(
        value=value, alpha=a, support=z, status=str(problem.status), grid=g, kernel=kernel
    )
