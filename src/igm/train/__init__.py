"""Training: typed configs, presets, the loop, checkpoints and logging.

>>> from igm.train import build_run, train, presets
>>> run = build_run(presets.get("ring-smmd"), out_dir="runs/ring-smmd")
>>> summary = train(run)
"""

from igm.train import presets
from igm.train.build import build_run, config_from, fit, load_run
from igm.train.config import ConfigError, RunConfig, apply_overrides, load_config
from igm.train.loop import Run, TrainingDiverged, TrainingInterrupted, train

__all__ = [
    "presets",
    "build_run",
    "config_from",
    "fit",
    "load_run",
    "ConfigError",
    "RunConfig",
    "apply_overrides",
    "load_config",
    "Run",
    "TrainingDiverged",
    "TrainingInterrupted",
    "train",
]
