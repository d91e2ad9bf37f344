"""A :class:`Run`: every object one training run needs, built by :func:`igm.train.build_run`, with
its checkpointed state (plain ``state_dict``s, the config, the step and the random states)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from igm.train import checkpoint as ckpt
from igm.train.config import RunConfig, to_dict
from igm.train.step import LocalSync

__all__ = ["Run"]


@dataclass
class Run:
    """Everything the loop needs, already built (see :func:`igm.train.build_run`)."""

    config: RunConfig
    generator: nn.Module
    critic: nn.Module | None
    objective: Any
    opt_g: torch.optim.Optimizer
    opt_c: torch.optim.Optimizer | None
    data: Any
    sched_g: Any = None
    sched_c: Any = None
    ema: nn.Module | None = None
    evaluator: Callable[[nn.Module], dict[str, float]] | None = None
    adaptive: Any = None  # igm.train.evaluation.KIDAdaptiveLR
    out_dir: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    data_rng: torch.Generator = field(default_factory=torch.Generator)
    step: int = 0
    rollbacks: int = 0
    best: float | None = None
    log_sums: dict[str, Tensor] = field(default_factory=dict)  # the open logging window: Σ of each statistic
    log_count: int = 0  # ... over this many steps (checkpointed, so a resumed run logs the same means)
    speed: Any = None  # igm.train.speed.SpeedSettings: what build_run applied (None: plain modules)
    dist: Any = None  # igm.train.distributed.DistContext under torchrun (None: one process)
    sync: Any = field(default_factory=LocalSync)  # the step's gradient-sync strategy (the DistContext under torchrun)

    @property
    def writes(self) -> bool:
        """This process writes the run directory: it has one, and it is rank 0 (or alone)."""
        return self.out_dir is not None and self.sync.is_main

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        def sd(obj):
            return None if obj is None else obj.state_dict()

        return {
            "format": 1,
            "step": self.step,
            "rollbacks": self.rollbacks,
            "best": self.best,
            "config": to_dict(self.config),
            "data_shape": list(self.data.shape),
            "data_kind": str(getattr(self.data, "kind", "image")),
            "generator": sd(self.generator),
            "critic": sd(self.critic),
            "ema": sd(self.ema),
            "opt_g": sd(self.opt_g),
            "opt_c": sd(self.opt_c),
            "sched_g": sd(self.sched_g),
            "sched_c": sd(self.sched_c),
            "objective": self.objective.state_dict(),
            "adaptive": None if self.adaptive is None else self.adaptive.state_dict(),
            "rng": ckpt.rng_state(self.data_rng),
            "log_window": {"count": self.log_count, "sums": {k: v.detach().clone() for k, v in self.log_sums.items()}},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("generator", "critic", "ema", "opt_g", "opt_c", "sched_g", "sched_c"):
            obj, saved = getattr(self, name), state.get(name)
            if (obj is None) != (saved is None):
                raise ckpt.CheckpointError(f"checkpoint and run disagree on '{name}' (present in one only)")
            if obj is not None:
                obj.load_state_dict(saved)
        self.objective.load_state_dict(state["objective"])
        if self.adaptive is not None and state.get("adaptive") is not None:
            self.adaptive.load_state_dict(state["adaptive"])
        ckpt.set_rng_state(state["rng"], self.data_rng)
        self.step, self.rollbacks, self.best = int(state["step"]), int(state["rollbacks"]), state["best"]
        window = state.get("log_window") or {"count": 0, "sums": {}}  # absent in older checkpoints
        self.log_count, self.log_sums = int(window["count"]), dict(window["sums"])

    def save(self, name: str) -> Path | None:
        if not self.writes:
            return None
        return ckpt.save_atomic(self.state_dict(), self.out_dir / "checkpoints" / f"{name}.pt")

    def save_step(self) -> Path | None:
        """``checkpoints/step-N.pt`` and ``last.pt``, keeping the newest ``train.keep_checkpoints``."""
        if not self.writes:
            return None
        return ckpt.save_step(self.state_dict(), self.out_dir / "checkpoints", self.step,
                              self.config.train.keep_checkpoints)
