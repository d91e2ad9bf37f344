"""Constrained / convex-program estimators for low-dimensional analysis."""

from igm.constrained.gcmmd import (
    critic_jacobians,
    gcmmd2,
    gcmmd2_critic,
    gcmmd_witness,
    gcmmd_witness_critic,
    pivoted_cholesky,
)
from igm.constrained.lipschitz import LipschitzMMDResult, lipschitz_mmd

__all__ = [
    "LipschitzMMDResult",
    "lipschitz_mmd",
    "gcmmd2",
    "gcmmd2_critic",
    "gcmmd_witness",
    "gcmmd_witness_critic",
    "critic_jacobians",
    "pivoted_cholesky",
]
