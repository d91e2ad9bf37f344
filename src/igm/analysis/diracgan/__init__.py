"""``igm figure diracgan``: the DiracGAN vector fields of seed 000's figures 1 and 5, and its
critic / optimised-distance panels (figure 1 c, d).

The problem (seed 000, example 1): P = δ₀, Q_θ = δ_θ on the real line, a linear critic
φ_ψ(x) = ψx and a Gaussian kernel of bandwidth 1 on the critic's output (bandwidth 1/ψ on x).
Every number is computed by the library's own objectives on batches of identical points through
:mod:`igm.analysis.dirac` (``losses``, ``vector_field``, ``train``); the wrappers below only
assemble library pieces where the paper's variant is not a registered objective:

- ``mmd``: ``mmd-gan-gp`` with a Gaussian kernel and no penalties, i.e. critic −MMD²_u,
  generator MMD²_u.
- ``mmd-gp``: MMD with the gradient penalty of Bińkowski et al. on the batch witness, the
  expectation taken under **P** (seed 000, appendix B); built from ``igm.mmd.witness`` and
  ``igm.penalties``.
- ``mmd-gp-unif``: the same penalty at points drawn uniformly between a sample of P and one of Q
  (the WGAN-GP interpolates): exactly the registered ``mmd-gan-gp`` objective.
- ``sn-mmd``: MMD with a spectrally normalised critic (:class:`igm.analysis.dirac.SpectralDiracCritic`,
  the library's ``igm.nn.spectral`` on a 1×1 weight): φ(x) = sign(ψ)x, so the critic cannot move
  (∂_ψ = 0 everywhere) and the generator follows the bandwidth-1 MMD — "here ψ = 1" in the paper.
- ``sobolev-mmd``: "the loss of Sobolev GAN with the quadratic penalty only": the registered
  ``sobolev`` objective applied to the MMD witness η_ψ (so its IPM E_P η − E_Q η is MMD²) with the
  Lagrange multiplier held at 0; the generator minimises MMD².
- ``gcmmd``: the Gradient-Constrained MMD (``igm.constrained.gcmmd2_critic``) with μ the WGAN-GP
  measure (uniform between 0 and θ, on a deterministic midpoint grid), as the paper's figure 1 uses
  for SMMD; ``gcmmd-p``: the registered ``gcmmd`` objective (μ = P).
- ``lipmmd``: the Lipschitz MMD (``igm.constrained.lipschitz_mmd``, cvxpy) with the learned kernel
  k_ψ(a, b) = K(ψa, ψb), ‖f‖_H ≤ B (hyperparameter ``rkhs_bound``, 1 as in SPEC) and ‖∇f‖ ≤ L on a grid over
  [0, θ]; the loss is its square (like MMD², GCMMD², SMMD²) and its gradients are central finite
  differences of the solved value. Slow: a coarser field grid. With B = 1 the RKHS bound, not the
  Lipschitz one, is active for |θ| ≳ √2 / L, and there the distance saturates like the MMD.
- ``smmd``: the registered ``smmd`` objective in the paper's parametrisation (``lam``,
  ``grad_weight=1``, ``diag_weight=1``, μ = P; with a linear critic ‖∇φ‖² = ψ² for every μ, so the
  WGAN-GP measure of the paper's figure 1(b) gives the same field).
- ``wgan`` (weight clipping, applied after each critic step of a trajectory; the field itself is
  the unclipped gradient, the clipping band is drawn) and ``wgan-gp``.

The field drawn is (−∂_θ L_G, −∂_ψ L_C): the gradient-descent direction of each player.

Each method's hyperparameters are set through the ``methods`` option, e.g.
``igm figure diracgan 'methods={mmd, smmd: {lam: 2}}'`` (:mod:`igm.analysis.diracgan.options`).

Modules: :mod:`~igm.analysis.diracgan.objectives` (the objectives above that are not registered),
:mod:`~igm.analysis.diracgan.methods` (the method descriptors),
:mod:`~igm.analysis.diracgan.options` (the options),
:mod:`~igm.analysis.diracgan.compute` (the numbers), :mod:`~igm.analysis.diracgan.plot` (the PNGs),
:mod:`~igm.analysis.diracgan.report` (the JSON copy and the summary) and
:mod:`~igm.analysis.diracgan.figure` (the registered figure).
"""

from igm.analysis.diracgan.compute import best_psi, critic_curve, field_on_grid, gcmmd_witness, trajectory
from igm.analysis.diracgan.figure import diracgan
from igm.analysis.diracgan.methods import ALL_METHODS, METHODS, Method, build_objective
from igm.analysis.diracgan.options import DiracFigureOptions
from igm.analysis.diracgan.objectives import (
    GCMMDInterpolates,
    LipschitzMMDLoss,
    MMDGradientPenaltyAtTarget,
    SobolevMMD,
    lipschitz_value,
    midpoint_interpolates,
)

__all__ = [
    "ALL_METHODS",
    "DiracFigureOptions",
    "METHODS",
    "Method",
    "diracgan",
    "build_objective",
    "field_on_grid",
    "trajectory",
    "best_psi",
    "critic_curve",
    "gcmmd_witness",
    "lipschitz_value",
    "midpoint_interpolates",
    "MMDGradientPenaltyAtTarget",
    "SobolevMMD",
    "GCMMDInterpolates",
    "LipschitzMMDLoss",
]
