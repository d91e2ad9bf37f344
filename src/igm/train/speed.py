"""Throughput switches for training on a GPU, and the record of what was applied.

Four switches of :class:`~igm.train.config.TrainConfig`, each resolved once per run by
:func:`resolve` against the device, the objective and the two networks (``docs/performance.md``):

``train.amp``: ``"auto"`` (default) | ``"off"`` | ``"bf16"``
    bf16 autocast of the generator and critic *forward passes*. Everything an objective computes
    from their outputs (kernel matrices, MMD estimates, losses, gradient-penalty norms and their
    reductions, Cholesky solves) runs outside autocast in float32: the forwards return float32
    tensors, and the critic's output layer itself runs in float32 (:func:`fp32_output_layer`), so
    the values a kernel sees carry float32 rounding on top of bf16 hidden activations. Input
    gradients for penalties are back-propagated through the bf16 graph (autocast's own recipe for
    gradient penalties) and arrive in float32 at the float32 inputs. bf16 has float32's exponent
    range and needs no GradScaler; ``"fp16"`` would need one (also inside every penalty's
    ``autograd.grad``) and is rejected. ``"auto"`` is bf16 on a CUDA device that supports it, for
    conv nets, and for the objectives that declare ``bf16_forwards``; float32 otherwise
    (always on CPU).
``train.channels_last``: ``"auto"`` (default) | ``"on"`` | ``"off"``
    NHWC memory format for conv nets (their weights, and every 4-D batch entering the critic).
    ``"auto"``: on for CUDA conv nets, off on CPU and for networks without convolutions.
``train.compile``: ``"off"`` (default) | ``"on"`` | ``"generator"``
    ``torch.compile`` of the generator, and of the critic where the objective never
    differentiates the critic's input gradients (AOTAutograd graphs do not support double
    backward) and has no in-place spectral-norm power iteration (a compiled graph saves ``u``,
    ``v`` uncloned, and the critic's second forward before backward invalidates them). Off by default: compiling takes tens of seconds to minutes per graph, which short
    runs do not earn back, and it has not been validated on a GPU for every architecture.
``train.cudnn_benchmark``: ``"auto"`` (default) | ``"on"`` | ``"off"``
    cuDNN autotuning of convolution algorithms (batch shapes are fixed): on for CUDA conv nets.

The networks in :class:`~igm.train.run.Run` stay plain modules (optimisers, checkpoints, EMA,
sampling and evaluation use them, in float32); the loop calls them through :func:`forwards`,
which adds the autocast / memory-format / compiled layer.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from igm.train.config import ConfigError
from igm.train.forwards import SpeedForward, _output_layer, forwards, fp32_output_layer, prepare_models

__all__ = [
    "AMP_VALUES",
    "SWITCH_VALUES",
    "COMPILE_VALUES",
    "ObjectivePolicy",
    "SpeedSettings",
    "SpeedForward",
    "objective_policy",
    "resolve",
    "prepare_models",
    "forwards",
    "fp32_output_layer",
    "announce",
]

log = logging.getLogger("igm.train")

AMP_VALUES = ("auto", "off", "bf16")
SWITCH_VALUES = ("auto", "on", "off")
COMPILE_VALUES = ("off", "on", "generator")

_FP16_MESSAGE = (
    "train.amp: fp16 is not supported: it needs a GradScaler, and the gradient-penalty objectives would "
    "need the scale applied inside their input-gradient computations too; use bf16 (float32's exponent "
    "range, no scaler needed) or off"
)


@dataclass(frozen=True)
class ObjectivePolicy:
    """What the speed switches read from an objective: its declared needs (see
    :class:`igm.objectives.Objective`).

    ``double_backward``: a loss differentiates a function of the critic's input gradients (a
    gradient penalty, SMMD's Jacobian term, ...), so the critic cannot be compiled.
    ``bf16``: ``train.amp=auto`` may run its forwards in bf16 (float32 kernels and penalties).
    """

    double_backward: bool
    bf16: bool
    note: str


def objective_policy(objective: Any) -> ObjectivePolicy:
    """The declared needs of a built objective (flags only; a hyperparameter-dependent need is a
    property of the objective). An object without the flags is treated as double-backward and
    float32: nothing it does is compiled or rounded wrongly."""
    name = getattr(objective, "name", "") or type(objective).__name__
    double = bool(getattr(objective, "double_backward", True))
    bf16 = bool(getattr(objective, "bf16_forwards", False))
    note = getattr(objective, "speed_note", "") or (
        f"objective {name!r} declares bf16 forwards safe" if bf16 else f"objective {name!r} does not declare bf16 forwards safe: float32"
    )
    return ObjectivePolicy(double, bf16, note)


# ----------------------------------------------------------------------------------------------
# resolution


@dataclass(frozen=True)
class SpeedSettings:
    """The speed settings actually applied to a run (see the module docstring)."""

    device: str = "cpu"
    amp: str = "off"  # "off" | "bf16"
    channels_last_generator: bool = False
    channels_last_critic: bool = False
    compile_generator: bool = False
    compile_critic: bool = False
    cudnn_benchmark: bool = False
    double_backward: bool = False
    fp32_output_layer: str | None = None  # the critic layer kept in float32 under amp (qualified name)
    requested: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.amp == "bf16" else None

    @property
    def device_type(self) -> str:
        return torch.device(self.device).type

    @property
    def active(self) -> bool:
        return self.amp != "off" or self.channels_last_generator or self.channels_last_critic or self.compile_generator or self.compile_critic

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe record (stored in ``summary.json`` under ``"speed"`` and logged at start)."""
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d

    def describe(self) -> str:
        """One line for the log."""

        def which(g: bool, c: bool) -> str:
            return "+".join(n for n, on in (("generator", g), ("critic", c)) if on) or "off"

        amp = self.amp if self.amp == "off" else f"{self.amp} forwards (losses, kernels and penalty norms float32)"
        return (
            f"speed on {self.device}: amp={amp}; channels_last={which(self.channels_last_generator, self.channels_last_critic)}; "
            f"compile={which(self.compile_generator, self.compile_critic)}; cudnn_benchmark={'on' if self.cudnn_benchmark else 'off'}"
        )


def _normalise(key: str, value: Any, valid: tuple[str, ...]) -> str:
    """YAML reads on/off/true/false as booleans: map them back; reject anything else in one line."""
    if value is True:
        value = "bf16" if key == "amp" else "on"
    elif value is False:
        value = "off"
    if key == "amp" and isinstance(value, str) and value.lower() in ("fp16", "float16", "half"):
        raise ConfigError(_FP16_MESSAGE)
    if not isinstance(value, str) or value not in valid:
        raise ConfigError(f"train.{key} must be one of {', '.join(valid)}; got {value!r}")
    return value


def validate(train_cfg: Any) -> dict[str, str]:
    """The four switches of ``train_cfg`` (a TrainConfig), normalised; a ConfigError names a bad one."""
    return {
        "amp": _normalise("amp", getattr(train_cfg, "amp", "auto"), AMP_VALUES),
        "channels_last": _normalise("channels_last", getattr(train_cfg, "channels_last", "auto"), SWITCH_VALUES),
        "compile": _normalise("compile", getattr(train_cfg, "compile", "off"), COMPILE_VALUES),
        "cudnn_benchmark": _normalise("cudnn_benchmark", getattr(train_cfg, "cudnn_benchmark", "auto"), SWITCH_VALUES),
    }


def _has_conv(module: nn.Module | None) -> bool:
    return module is not None and any(isinstance(m, nn.modules.conv._ConvNd) for m in module.modules())


def _bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        try:
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # older signature
            return bool(torch.cuda.is_bf16_supported())
    return True  # CPU autocast supports bf16 (slow without native bf16 units; only when asked)


def _amp(req: str, device: torch.device, policy: ObjectivePolicy, name: str, conv: bool, notes: list[str]) -> str:
    cuda = device.type == "cuda"
    if req == "bf16":
        if cuda and not _bf16_supported(device):
            notes.append("amp: bf16 requested on a GPU without native bf16; it runs emulated and slowly")
        if not cuda:
            notes.append("amp: bf16 on CPU is for testing; it is usually slower than float32 there")
        if not policy.bf16:
            notes.append(f"amp: bf16 requested for {name}, which auto keeps in float32 ({policy.note})")
        return "bf16"
    if req == "off":
        return "off"
    ok = cuda and _bf16_supported(device) and policy.bf16 and conv
    if not cuda:
        notes.append("amp: auto is float32 off CUDA")
    elif not _bf16_supported(device):
        notes.append("amp: auto is float32 on a GPU without native bf16")
    elif not policy.bf16:
        notes.append(f"amp: auto keeps {name} in float32: {policy.note}")
    elif not conv:
        notes.append("amp: auto is float32 for networks without convolutions (no speed to gain)")
    else:
        notes.append(f"amp: bf16 forwards; {policy.note}")
    return "bf16" if ok else "off"


def _channels_last(req: str, cuda: bool, conv_g: bool, conv_c: bool, notes: list[str]) -> tuple[bool, bool]:
    if req == "on":
        if not (conv_g or conv_c):
            notes.append("channels_last: no convolutions, nothing to convert")
        return conv_g, conv_c
    if req == "off":
        return False, False
    return cuda and conv_g, cuda and conv_c


def _compile(req: str, generator: nn.Module | None, critic: nn.Module | None, uses_critic: bool,
             policy: ObjectivePolicy, name: str, notes: list[str]) -> tuple[bool, bool]:
    comp_g = req in ("on", "generator") and generator is not None
    comp_c = req == "on" and uses_critic
    if comp_c and policy.double_backward:
        comp_c = False
        notes.append(
            f"compile: critic left eager: {name} differentiates the critic's input "
            "gradients (double backward), which compiled graphs do not support"
        )
    for role, module, on in (("generator", generator, comp_g), ("critic", critic, comp_c)):
        if on and _power_iteration_layer(module) is not None:
            notes.append(
                f"compile: {role} left eager: its spectral normalisation ({_power_iteration_layer(module)}) updates u, v in "
                "place at every forward; a compiled graph saves them for backward uncloned, so a second forward "
                "before backward (real, then fake) fails"
            )
            comp_g, comp_c = (False, comp_c) if role == "generator" else (comp_g, False)
    return comp_g, comp_c


def _cudnn_benchmark(req: str, cuda: bool, conv: bool, notes: list[str]) -> bool:
    if req == "auto":
        return cuda and conv
    if req == "on" and not cuda:
        notes.append("cudnn_benchmark: no effect off CUDA")
    return cuda and req == "on"


def resolve(
    cfg: Any,
    device: torch.device | str,
    objective: Any,
    generator: nn.Module | None = None,
    critic: nn.Module | None = None,
) -> SpeedSettings:
    """Resolve the switches of ``cfg`` (a RunConfig or TrainConfig) for this device, objective and
    pair of networks, from the objective's declared needs. Raises :class:`ConfigError` for a bad value."""
    req = validate(getattr(cfg, "train", cfg))
    device = torch.device(device)
    cuda = device.type == "cuda"
    policy = objective_policy(objective)
    name = getattr(objective, "name", "?")
    uses_critic = critic is not None and getattr(objective, "uses_critic", True)
    conv_g, conv_c = _has_conv(generator), uses_critic and _has_conv(critic)
    notes: list[str] = []
    amp = _amp(req["amp"], device, policy, name, conv_g or conv_c, notes)
    cl_g, cl_c = _channels_last(req["channels_last"], cuda, conv_g, conv_c, notes)
    comp_g, comp_c = _compile(req["compile"], generator, critic, uses_critic, policy, name, notes)
    bench = _cudnn_benchmark(req["cudnn_benchmark"], cuda, conv_g or conv_c, notes)
    found = _output_layer(critic) if amp != "off" and uses_critic else None
    return SpeedSettings(
        device=str(device),
        amp=amp,
        channels_last_generator=bool(cl_g),
        channels_last_critic=bool(cl_c),
        compile_generator=bool(comp_g),
        compile_critic=bool(comp_c),
        cudnn_benchmark=bool(bench),
        double_backward=policy.double_backward,
        fp32_output_layer=found[0] if found is not None else None,
        requested=req,
        notes=tuple(notes),
    )


def _power_iteration_layer(module: nn.Module | None) -> str | None:
    """The first submodule whose forward updates spectral-norm vectors in place: one that declares
    ``updates_in_place`` (igm's ScaledSpectralNorm), torch's ``parametrizations.spectral_norm`` or the
    older ``spectral_norm`` hook (its ``weight_u`` buffer)."""
    if module is None:
        return None
    torch_sn = getattr(torch.nn.utils.parametrizations, "_SpectralNorm", ())
    for name, m in module.named_modules():
        if getattr(m, "updates_in_place", False) or isinstance(m, torch_sn) or hasattr(m, "weight_u"):
            return name or type(m).__name__
    return None


def announce(run: Any, metrics_log: Any = None, bar: Any = None) -> dict[str, Any] | None:
    """Log the applied settings once at the start of training: the ``igm.train`` logger, a
    ``{"event": "speed", ...}`` line in ``metrics.jsonl`` and the progress bar. Returns the record
    (for ``summary.json``), or None for a run built without settings."""
    settings: SpeedSettings | None = getattr(run, "speed", None)
    if settings is None:
        return None
    record = settings.as_dict()
    line = settings.describe()
    log.info(line)
    for note in settings.notes:
        log.info("  %s", note)
    if metrics_log is not None:
        metrics_log.write(run.step, {"event": "speed", "speed": record})
    if bar is not None and (settings.active or settings.device_type == "cuda"):
        bar.write(f"igm: {line}")
    return record
