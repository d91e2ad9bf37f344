"""Constrained / convex-program estimators for low-dimensional analysis."""

from igm.constrained.lipschitz import LipschitzMMDResult, lipschitz_mmd

__all__ = ["LipschitzMMDResult", "lipschitz_mmd"]
