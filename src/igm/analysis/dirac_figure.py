"""Compatibility module: the DiracGAN figure moved to the package :mod:`igm.analysis.diracgan`.

The names below keep their old spellings (``field`` is :func:`~igm.analysis.diracgan.field_on_grid`);
new code imports from :mod:`igm.analysis.diracgan`.
"""

from igm.analysis.diracgan import (
    ALL_METHODS,
    METHODS,
    DiracFigureOptions,
    GCMMDInterpolates,
    LipschitzMMDLoss,
    Method,
    MMDGradientPenaltyAtTarget,
    SobolevMMD,
    build_objective,
    diracgan,
    gcmmd_witness,
    lipschitz_value,
)
from igm.analysis.diracgan import field_on_grid as field

# private helpers that callers of the old module reached for
from igm.analysis.diracgan.compute import trajectory as _trajectory  # noqa: F401
from igm.analysis.diracgan.methods import gaussian as _gauss  # noqa: F401
from igm.analysis.diracgan.objectives import midpoint_interpolates as _midpoint_interpolates  # noqa: F401
from igm.analysis.diracgan.report import compact as _compact  # noqa: F401
from igm.analysis.diracgan.report import significant as _sig  # noqa: F401

__all__ = [
    "ALL_METHODS",
    "DiracFigureOptions",
    "METHODS",
    "Method",
    "diracgan",
    "build_objective",
    "field",
    "gcmmd_witness",
    "lipschitz_value",
    "MMDGradientPenaltyAtTarget",
    "SobolevMMD",
    "GCMMDInterpolates",
    "LipschitzMMDLoss",
]
