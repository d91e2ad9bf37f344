"""Evaluation: FID, KID, Inception Score, precision/recall, density/coverage, FID∞/IS∞, the relative
similarity test, accumulating metric objects and toy-data quality measures (feature extractors live
alongside)."""

from igm.metrics.fid import fid, fid_from_stats
from igm.metrics.inception_score import inception_score
from igm.metrics.infinity import fid_infinity, is_infinity
from igm.metrics.kid import kid
from igm.metrics.objects import FID, KID, DensityCoverage, InceptionScore, PrecisionRecall
from igm.metrics.precision_recall import density_coverage, precision_recall
from igm.metrics.relative import relative_test
from igm.metrics.toy import mode_statistics, toy_metrics, wasserstein

__all__ = [
    "FID",
    "KID",
    "DensityCoverage",
    "InceptionScore",
    "PrecisionRecall",
    "density_coverage",
    "fid",
    "fid_from_stats",
    "fid_infinity",
    "inception_score",
    "is_infinity",
    "kid",
    "mode_statistics",
    "precision_recall",
    "relative_test",
    "toy_metrics",
    "wasserstein",
]
