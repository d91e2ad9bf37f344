"""Shared helpers for the training-engine tests: tiny, fast run configs."""

from __future__ import annotations

import pytest

from igm.train import apply_overrides, build_run, presets

# Small enough that a few steps of any ring-* preset take well under a second on one CPU core.
TINY = [
    "train.batch_size=32",
    "train.progress=false",
    "train.log_every=1",
    "train.sample_every=0",
    "eval.every=0",
    "eval.samples=200",
    "model.generator_params.hidden=16",
    "model.critic_params.hidden=16",
]


def tiny_config(preset: str = "ring-smmd", *overrides: str, steps: int = 3):
    return apply_overrides(presets.get(preset), [*TINY, f"train.steps={steps}", *overrides])


@pytest.fixture
def tiny():
    """``tiny(preset, *overrides, steps=3, out_dir=None)`` → a built Run."""

    def make(preset: str = "ring-smmd", *overrides: str, steps: int = 3, out_dir=None):
        return build_run(tiny_config(preset, *overrides, steps=steps), out_dir)

    return make


@pytest.fixture
def tiny_cfg():
    """``tiny_cfg(preset, *overrides, steps=3)`` → a RunConfig (not built)."""
    return tiny_config
