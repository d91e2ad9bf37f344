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

from igm.metrics import pipeline, protocol, relative_test
from igm.metrics.features import get as get_extractor
from igm.metrics.pipeline import default_extractor
from igm.nn.latent import sample_latent
from igm.train.config import ConfigError, RunConfig

__all__ = ["ImageEvaluator", "KIDAdaptiveLR", "default_extractor", "EVAL_SEED_OFFSET"]

#: The evaluation latents of a run are drawn from ``train.seed + EVAL_SEED_OFFSET``.
EVAL_SEED_OFFSET = 4242


class ImageEvaluator:
    """KID/FID of a generator against the run's dataset, through :mod:`igm.metrics.pipeline` (the
    same path on one process and under torchrun, where each rank embeds its share of the latents)."""

    key = "kid"

    def __init__(self, cfg: RunConfig, data: Any, device: torch.device):
        e = cfg.eval
        name = e.extractor or default_extractor(cfg.data.name, tuple(getattr(data, "shape", ())) or None)
        try:
            self.extractor = get_extractor(name, **e.extractor_params).to(device)
        except (ValueError, FileNotFoundError) as err:
            raise ConfigError(f"eval: {str(err).splitlines()[0]} (set eval.every=0 to train without evaluation)") from None
        self.cfg, self.data, self.device, self.name = cfg, data, device, name
        self.embed = pipeline.embedder(self.extractor, e.batch_size, device)
        self.seed = cfg.train.seed + EVAL_SEED_OFFSET
        self._real: Tensor | None = None
        self._protocol: dict[str, Any] | None = None
        self.extractor_protocol = protocol.extractor_protocol(self.extractor, name, e.extractor_params)

    def latents(self, n: int, seed: int) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        return sample_latent(n, self.cfg.model.z_dim, self.cfg.model.z_dist, g).to(self.device)

    def _reference(self) -> dict[str, Any]:
        e = self.cfg.eval
        n = min(e.real_samples, len(self.data)) if hasattr(self.data, "__len__") else e.real_samples
        return protocol.reference_protocol(self.data, self.cfg.data.name, self.cfg.data.params, n, seed=0)

    @property
    def protocol(self) -> dict[str, Any]:
        """What every evaluation row of the run records (:func:`igm.metrics.protocol.protocol`)."""
        if self._protocol is None:
            e, ref = self.cfg.eval, self._reference()
            self._protocol = protocol.protocol(
                reference=ref,
                generated={"source": "the run's generator (its EMA if it has one) at fixed latents",
                           "samples": e.samples, "latents_seed": self.seed},
                extractor=self.extractor_protocol, kid_subsets=e.kid_subsets,
                kid_subset_size=min(e.kid_subset_size, e.samples, ref["images"]), seed=0)
        return self._protocol

    def real_features(self) -> Tensor:
        if self._real is None:
            key = pipeline.reference_key(self._reference(), self.extractor_protocol)
            self._real, _ = pipeline.reference_features(self.data, key, self.embed, self.cfg.eval.cache_dir)
        return self._real

    def sample_features(self, generator: nn.Module, n: int, seed: int) -> Tensor:
        return pipeline.generated_features(generator, self.latents(n, seed), self.embed, self.cfg.eval.batch_size,
                                           pipeline.comm_device(self.device))

    def __call__(self, generator: nn.Module) -> dict[str, float]:
        e = self.cfg.eval
        return pipeline.evaluate_generator(
            generator, self.latents(e.samples, self.seed), self.embed, self.real_features(),
            kid_subsets=e.kid_subsets, kid_subset_size=e.kid_subset_size, with_fid=e.fid,
            batch_size=e.batch_size, comm_device=pipeline.comm_device(self.device),
        )


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
