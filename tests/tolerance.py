"""The suite's tolerance policy: a tolerance is a bound on rounding error, never a number that
happened to pass on one CPU.

Two runs of one computation on different x86 CPUs (AMD or Intel, AVX2 or AVX-512) or BLAS builds may
sum in a different order, so they agree only up to the rounding error bound of the computation.
For a result r computed from terms t₁ … t_n in floating point of unit eps, that bound is

    |r̂ − r| ≤ n · eps · Σ|tᵢ| · κ

(n: the length of the longest reduction, Σ|tᵢ|: the magnitude of what is summed, which is larger
than |r| when terms cancel, κ: the condition number of any solve, eigendecomposition or square
root involved). :func:`bound` is that times ``SAFETY``, and the tests compare with it:

- against an independent reference (a NumPy loop, a closed form) computed in float64, the tolerance
  is ``bound(dtype, magnitude, terms, cond)`` of the dtype under test;
- a square root near 0 is not well conditioned (√(x + δ) − √x ≈ √δ); the library avoids it
  (``igm.kernels.Pairwise.dist``), and the tests check it at coincident points;
- Monte-Carlo checks use a multiple of the estimate's standard error, not eps;
- bit-for-bit equality is asserted only between two runs of the same code path on one machine
  (determinism, resuming), never between two algorithms.
"""

from __future__ import annotations

import numpy as np
import torch

SAFETY = 16.0  # summation order, fused multiply-add and vector width differ between machines

__all__ = ["SAFETY", "eps", "bound", "assert_close"]


def eps(dtype) -> float:
    """Machine epsilon of a torch or NumPy float dtype."""
    if isinstance(dtype, torch.dtype):
        return float(torch.finfo(dtype).eps)
    return float(np.finfo(dtype).eps)


def bound(dtype, magnitude, terms: int = 1, cond: float = 1.0):
    """SAFETY · terms · eps(dtype) · magnitude · cond (elementwise for an array ``magnitude``)."""
    return SAFETY * max(int(terms), 1) * eps(dtype) * np.asarray(magnitude, dtype=np.float64) * float(cond)


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def assert_close(got, ref, *, dtype, magnitude=None, terms: int = 1, cond: float = 1.0) -> None:
    """|got − ref| ≤ bound(dtype, magnitude, terms, cond) elementwise; ``magnitude`` defaults to |ref|
    (no cancellation). The smallest normal number of the dtype is added, so exact zeros compare."""
    got, ref = _np(got), _np(ref)
    mag = np.abs(ref) if magnitude is None else _np(magnitude)
    tiny = torch.finfo(dtype).tiny if isinstance(dtype, torch.dtype) else np.finfo(dtype).tiny
    tol = bound(dtype, mag, terms, cond) + float(tiny)
    err = np.abs(got - ref)
    bad = err > tol
    if np.any(bad):
        i = np.unravel_index(np.argmax(err - tol), err.shape) if err.ndim else ()
        raise AssertionError(
            f"{int(bad.sum())} of {bad.size} values off by more than the rounding bound; worst at {i}: "
            f"got {got[i] if got.ndim else got}, expected {ref[i] if ref.ndim else ref}, error "
            f"{err[i] if err.ndim else err:.3g} > bound {tol[i] if np.ndim(tol) else tol:.3g} "
            f"({SAFETY:g} · {terms} terms · eps · magnitude · cond {cond:g})"
        )
