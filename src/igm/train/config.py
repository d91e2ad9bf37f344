"""Typed run configuration: a dataclass tree with every default visible here.

Loaded from YAML (``load_config``), overridden by ``key.sub=value`` strings (``apply_overrides``);
unknown keys and wrong types are a :class:`ConfigError` that names the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from igm.nn.latent import sample_latent  # noqa: F401  (moved to igm.nn.latent; re-exported for old imports)

__all__ = [
    "ConfigError",
    "sample_latent",
    "ModelConfig",
    "ObjectiveConfig",
    "OptimConfig",
    "DataConfig",
    "TrainConfig",
    "EvalConfig",
    "DistConfig",
    "RunConfig",
    "from_dict",
    "to_dict",
    "load_config",
    "apply_overrides",
]


class ConfigError(ValueError):
    """A bad key or value in a run configuration; the message names the key."""


@dataclass
class ModelConfig:
    generator: str = "mlp"  # architecture names from igm.nn
    critic: str = "mlp"
    z_dim: int = 2
    z_dist: Literal["normal", "uniform"] = "normal"  # uniform: U[−1, 1] (the SMMD code)
    critic_out: int = 1  # critic output dimension (1: scalar critic)
    spectral: Literal["none", "fixed", "learned"] = "none"  # spectral parametrisation of the critic
    generator_params: dict[str, Any] = field(default_factory=dict)
    critic_params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ObjectiveConfig:
    name: str = "smmd"
    params: dict[str, Any] = field(default_factory=dict)  # checked by igm.objectives.get


@dataclass
class OptimConfig:
    optimizer: Literal["adam", "rmsprop"] = "adam"
    lr_generator: float = 1e-4
    lr_critic: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    schedule: Literal["constant", "linear", "step"] = "constant"  # linear: decays to 0 at the last step
    step_every: int = 10000  # "step" schedule: multiply by step_gamma every step_every generator steps
    step_gamma: float = 0.5
    grad_clip: float | None = None  # per-tensor gradient-norm clipping (the SMMD code: 1.0)


@dataclass
class DataConfig:
    name: str = "ring"
    params: dict[str, Any] = field(default_factory=dict)  # checked by igm.data.get


@dataclass
class TrainConfig:
    steps: int = 2000  # generator steps
    batch_size: int = 64
    n_critic: int = 5
    extra_critic_steps: int = 0  # the authors' extra critic steps (WGAN: 100, SMMD code: 10) ...
    extra_critic_until: int = 0  # ... for the first N generator steps ...
    extra_critic_every: int = 0  # ... and every N-th generator step (0: never)
    ema: float | None = None  # generator EMA decay, e.g. 0.999
    seed: int = 0
    device: str = "cpu"  # "cpu", "cuda", "cuda:1", or "auto"
    threads: int | None = None  # torch CPU threads (small models run fastest on 1); None: torch's default
    # speed switches (igm.train.speed, docs/performance.md); "auto" resolves per device and objective
    amp: bool | str = "auto"  # "auto" | "off" | "bf16": bf16 forwards, float32 losses/kernels/penalties
    channels_last: bool | str = "auto"  # "auto" | "on" | "off": NHWC conv nets (auto: on for CUDA)
    compile: bool | str = "off"  # "off" | "on" | "generator": torch.compile (never a double-backward critic)
    cudnn_benchmark: bool | str = "auto"  # "auto" | "on" | "off": cuDNN autotuning (auto: on for CUDA)
    log_every: int = 50
    update_cosine: bool = False  # log cos(optimiser update, −gradient) per network (the WGAN paper's Adam diagnostic, §4.2)
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3  # step checkpoints kept (plus best.pt); --resume falls back to the older ones
    max_rollbacks: int = 3  # non-finite loss: roll back to the last checkpoint at most this often
    rollback_lr_factor: float = 1.0  # multiply learning rates by this at each rollback
    progress: bool = True


@dataclass
class EvalConfig:
    every: int = 0  # generator steps between evaluations (0: only at the end)
    samples: int = 1000  # generated samples per evaluation
    extractor: str | None = None  # feature extractor for images (None: igm.metrics.pipeline.default_extractor: digits, mnist or inception)
    extractor_params: dict[str, Any] = field(default_factory=dict)  # e.g. {weights: /path/to/pt_inception.pth}
    real_samples: int = 10000  # real images embedded once (cached on disk by dataset and extractor)
    batch_size: int = 250
    kid_subsets: int = 100
    kid_subset_size: int = 1000  # capped by the samples available
    fid: bool = True
    cache_dir: str | None = None  # default $IGM_CACHE or ~/.cache/igm
    adaptive: bool = False  # the KID-adaptive learning rate of the SMMD paper
    adaptive_every: int = 2000
    adaptive_window: int = 10  # compare with the samples of this many tests earlier
    adaptive_patience: int = 3  # decay after this many tests without significant improvement
    adaptive_threshold: float = 0.1  # p-value above which a test is "no improvement"
    adaptive_factor: float = 0.8
    adaptive_floor: float = 1e-6
    adaptive_samples: int = 2048
    variance_floor: float = 0.0  # floor on the relative test's variance (the authors' code: 1e-5)


@dataclass
class DistConfig:
    """Data-parallel training under ``torchrun`` (ignored by a plain single-process run).
    ``train.batch_size`` is per process: the global batch is WORLD_SIZE × batch_size."""

    mmd_estimator: Literal["block", "gathered"] = "block"  # block: per-process MMD², averaged; gathered: MMD² of the global batch
    backend: Literal["auto", "nccl", "gloo"] = "auto"  # auto: NCCL for CUDA devices, gloo for CPU
    find_unused_parameters: bool = False  # passed to DDP for the generator (a custom generator with unused parameters)
    sync_batchnorm: bool = False  # the generator's BatchNorm layers use global-batch statistics (CUDA only)


@dataclass
class RunConfig:
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    dist: DistConfig = field(default_factory=DistConfig)


# ----------------------------------------------------------------------------------------------
# conversion with type checks


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: must be one of {', '.join(map(repr, args))}; got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): v for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover - a bug in this file


def from_dict(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"unknown key {where}{unknown[0]}; valid keys{' in ' + prefix if prefix else ''}: {', '.join(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain YAML-safe dict (tuples → lists)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def load_config(path: str | Path) -> RunConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must hold a mapping of config sections")
    return from_dict(RunConfig, data)


def _other_spellings(objective: Any, key: str) -> set[str]:
    """The other spellings of the objective's hyperparameter ``key`` (its deprecated alias or new
    name, from the objective class's ``aliases``); none for an unknown objective."""
    import igm.objectives
    from igm.registry import spellings

    if not isinstance(objective, str) or objective not in igm.objectives.registry:
        return set()
    return spellings(igm.objectives.registry.get(objective), key) - {key}


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """``["train.steps=100", "objective.params.gp_weight=1"]`` → a new, re-validated config.

    An override of an objective hyperparameter replaces the value under its other spelling, so
    ``objective.params.lam=5`` (a deprecated alias) on a preset that writes ``gp_weight`` sets it."""
    data = to_dict(cfg)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        parts = key.strip().split(".")
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"unknown key {'.'.join(parts[: i + 1])}")
            node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(parts[:-1])} is not a section")
        is_free_mapping = len(parts) >= 2 and parts[-2] in ("params", "generator_params", "critic_params", "extractor_params")
        if parts[-1] not in node and not is_free_mapping:
            raise ConfigError(f"unknown key {key}")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"{key}: cannot parse value {raw!r}") from None
        if parts[:2] == ["objective", "params"] and len(parts) == 3:
            for other in _other_spellings(data["objective"].get("name"), parts[-1]):
                node.pop(other, None)
        node[parts[-1]] = value
    return from_dict(RunConfig, data)
