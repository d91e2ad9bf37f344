"""Relative similarity test (Bounliphone et al., 2016): is Y closer to X than Z is?

t = MMD²_U(X, Y) − MMD²_U(X, Z), both the U-statistic estimator over index-paired samples. Under
H₀: MMD²(P_X, P_Y) ≥ MMD²(P_X, P_Z), t is asymptotically normal with variance
Var t = v₁₁ + v₂₂ − 2 v₁₂, (v) the joint covariance of the two estimates
(:func:`igm.mmd.mmd2_covariance`). The p-value is

    p = Φ(t / √Var t),

small when t is significantly negative, i.e. when Y is significantly closer to X than Z is (the
KID-adaptive learning rate asks whether new samples beat old ones this way). p near 1 means Z is the
closer one; under equal distances p is uniform on (0, 1).
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from igm.checks import as_features
from igm.kernels import Kernel, Polynomial
from igm.mmd import mmd2, mmd2_covariance

__all__ = ["relative_test"]


def _normal_cdf(u: float) -> float:
    """Φ(u) = erfc(−u/√2)/2 (accurate in both tails; equals ``scipy.stats.norm.cdf``)."""
    return 0.5 * math.erfc(-u / math.sqrt(2.0))


def relative_test(
    x: Tensor,
    y: Tensor,
    z: Tensor,
    kernel: Kernel | None = None,
    variance_floor: float = 0.0,
) -> tuple[float, float]:
    """``(statistic, p_value)`` of the relative similarity test; see the module docstring.

    ``x``, ``y``, ``z``: (n, ...) samples or features, flattened to (n, d) and computed in float64.
    The statistics pair samples by index; if the sizes differ, all three are truncated to the
    common (smallest) size, keeping the first rows. At least 4 samples are needed.
    ``kernel``: default the KID kernel, ``Polynomial(3, 1/d, 1)``.
    ``variance_floor``: Var t is replaced by ``max(Var t, variance_floor)``. The authors' training
    code floors it at 1e-5; the default 0 keeps the estimate. If the variance is not positive
    (possible for the unbiased estimate on tiny or degenerate samples), p is 0, ½ or 1 by the sign
    of t, with a warning.
    """
    x, y, z = (as_features(t, w).detach().to(torch.float64) for t, w in ((x, "x"), (y, "y"), (z, "z")))
    if not (x.shape[1] == y.shape[1] == z.shape[1]):
        raise ValueError(f"x, y and z must have the same dimension; got {x.shape[1]}, {y.shape[1]}, {z.shape[1]}")
    n = min(x.shape[0], y.shape[0], z.shape[0])
    if n < 4:
        raise ValueError(f"the relative test needs at least 4 samples in each set; got {n}")
    x, y, z = x[:n], y[:n], z[:n]
    if not (math.isfinite(variance_floor) and variance_floor >= 0):
        raise ValueError(f"variance_floor must be a finite number ≥ 0; got {variance_floor}")
    k = Polynomial() if kernel is None else kernel
    t = float(mmd2(x, y, k, "u-statistic") - mmd2(x, z, k, "u-statistic"))
    cov = mmd2_covariance(x, y, z, k)
    var = max(float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1]), variance_floor)
    if var <= 0:
        warnings.warn(f"relative test: estimated variance {var:.3g} is not positive; p-value from the sign of t", stacklevel=2)
        return t, 0.0 if t < 0 else (1.0 if t > 0 else 0.5)
    return t, _normal_cdf(t / math.sqrt(var))
