"""Evaluation: toy-data quality measures (FID/KID/IS and feature extractors live alongside)."""

from igm.metrics.toy import mode_statistics, toy_metrics

__all__ = ["mode_statistics", "toy_metrics"]
