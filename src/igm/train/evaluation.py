"""Evaluation during training: KID/FID on images, and the KID-adaptive learning rate.

- :class:`ImageEvaluator` scores generator samples against cached real features with a registered
  feature extractor; its ``key`` is ``"kid"``, so ``best.pt`` is the checkpoint with the lowest KID.
- :class:`KIDAdaptiveLR` is the schedule of seed 000 §4: every ``every`` generator steps, the
  relative KID test compares the current samples with those of ``window`` evaluations earlier;
  after ``patience`` consecutive tests without a significant improvement (p > ``threshold``) every
  learning rate is multiplied by ``factor`` (not below ``floor``). Each decision is logged.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch
from torch import Tensor, nn

from igm.metrics import fid, kid, relative_test
from igm.metrics.cache import cached_features
from igm.metrics.features import embed
from igm.metrics.features import get as get_extractor
from igm.nn.latent import sample_latent
from igm.train.config import ConfigError, RunConfig

__all__ = ["ImageEvaluator", "KIDAdaptiveLR", "default_extractor"]


def default_extractor(data_name: str) -> str:
    return "digits" if data_name == "digits" else "inception"


def _z(cfg: RunConfig, n: int, seed: int, device: torch.device) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    z = sample_latent(n, cfg.model.z_dim, cfg.model.z_dist, g)
    return z.to(device)


class ImageEvaluator:
    key = "kid"

    def __init__(self, cfg: RunConfig, data: Any, device: torch.device):
        e = cfg.eval
        name = e.extractor or default_extractor(cfg.data.name)
        try:
            self.extractor = get_extractor(name, **e.extractor_params).to(device)
        except (ValueError, FileNotFoundError) as err:
            raise ConfigError(f"eval: {str(err).splitlines()[0]} (set eval.every=0 to train without evaluation)") from None
        self.cfg, self.data, self.device, self.name = cfg, data, device, name
        self._real: Tensor | None = None

    def embed(self, images: Tensor) -> Tensor:
        return embed(self.extractor, images, self.cfg.eval.batch_size, self.device)["features"]

    def real_features(self) -> Tensor:
        if self._real is None:
            e = self.cfg.eval
            n = min(e.real_samples, len(self.data)) if hasattr(self.data, "__len__") else e.real_samples
            key = {"data": self.cfg.data.name, "params": self.cfg.data.params, "extractor": self.name,
                   "extractor_params": e.extractor_params, "n": n, "seed": 0}

            def compute() -> Tensor:
                return self.embed(self.data.sample(n, torch.Generator().manual_seed(0)))

            self._real, _ = cached_features(key, compute, e.cache_dir)
        return self._real

    @torch.no_grad()
    def sample_features(self, generator: nn.Module, n: int, seed: int) -> Tensor:
        z = _z(self.cfg, n, seed, self.device)
        return torch.cat([self.embed(generator(zc)) for zc in z.split(self.cfg.eval.batch_size)])

    def __call__(self, generator: nn.Module) -> dict[str, float]:
        e = self.cfg.eval
        fake = self.sample_features(generator, e.samples, self.cfg.train.seed + 4242)
        real = self.real_features()
        size = min(e.kid_subset_size, fake.shape[0], real.shape[0])
        mean, std = kid(real, fake, subsets=e.kid_subsets, subset_size=size, seed=0)
        out = {"kid": mean, "kid_std": std}
        if e.fid:
            out["fid"] = fid(real, fake)
        return out


class KIDAdaptiveLR:
    """The KID-adaptive learning rate; its state (past features, failure count) is checkpointed."""

    def __init__(self, cfg: RunConfig, evaluator: ImageEvaluator):
        e = cfg.eval
        if e.adaptive_every < 1 or e.adaptive_window < 1 or e.adaptive_patience < 1:
            raise ConfigError("eval.adaptive_every, adaptive_window and adaptive_patience must be at least 1")
        if not 0 < e.adaptive_factor <= 1:
            raise ConfigError(f"eval.adaptive_factor must be in (0, 1]; got {e.adaptive_factor}")
        self.cfg, self.evaluator = cfg, evaluator
        self.every, self.window, self.patience = e.adaptive_every, e.adaptive_window, e.adaptive_patience
        self.history: deque[Tensor] = deque(maxlen=self.window + 1)
        self.failures = 0

    def step(self, step: int, generator: nn.Module, optimizers: list[torch.optim.Optimizer], schedules: list[Any]) -> dict[str, Any]:
        e = self.cfg.eval
        feats = self.evaluator.sample_features(generator, e.adaptive_samples, self.cfg.train.seed + step)
        self.history.append(feats.float())
        decision: dict[str, Any] = {"event": "kid_adaptive", "tests": len(self.history) - 1}
        if len(self.history) <= self.window:
            decision["action"] = "warming up"
            return decision
        real = self.evaluator.real_features()
        n = min(real.shape[0], feats.shape[0])
        t, p = relative_test(real[:n], feats[:n], self.history[0][:n], variance_floor=e.variance_floor)
        improved = p <= e.adaptive_threshold
        self.failures = 0 if improved else self.failures + 1
        decision.update(statistic=t, p_value=p, improved=improved, failures=self.failures)
        if self.failures >= self.patience:
            self.failures = 0
            for opt, sched in zip(optimizers, schedules):
                for group in opt.param_groups:
                    group["lr"] = max(group["lr"] * e.adaptive_factor, e.adaptive_floor)
                if sched is not None and hasattr(sched, "base_lrs"):
                    sched.base_lrs = [max(lr * e.adaptive_factor, e.adaptive_floor) for lr in sched.base_lrs]
            decision["action"] = f"learning rates × {e.adaptive_factor}"
        else:
            decision["action"] = "keep"
        decision["lr"] = [opt.param_groups[0]["lr"] for opt in optimizers]
        return decision

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history), "failures": self.failures}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = deque(state["history"], maxlen=self.window + 1)
        self.failures = int(state["failures"])
