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
import types
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor, nn

from igm.train.config import ConfigError

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


def resolve(
    cfg: Any,
    device: torch.device | str,
    objective: Any,
    generator: nn.Module | None = None,
    critic: nn.Module | None = None,
) -> SpeedSettings:
    """Resolve the switches of ``cfg`` (a RunConfig or TrainConfig) for this device, objective and
    pair of networks. Raises :class:`ConfigError` for a bad value."""
    train_cfg = getattr(cfg, "train", cfg)
    req = validate(train_cfg)
    device = torch.device(device)
    cuda = device.type == "cuda"
    policy = objective_policy(objective)
    uses_critic = critic is not None and getattr(objective, "uses_critic", True)
    conv_g, conv_c = _has_conv(generator), uses_critic and _has_conv(critic)
    notes: list[str] = []

    # amp
    if req["amp"] == "bf16":
        amp = "bf16"
        if cuda and not _bf16_supported(device):
            notes.append("amp: bf16 requested on a GPU without native bf16; it runs emulated and slowly")
        if not cuda:
            notes.append("amp: bf16 on CPU is for testing; it is usually slower than float32 there")
        if not policy.bf16:
            notes.append(f"amp: bf16 requested for {getattr(objective, 'name', '?')}, which auto keeps in float32 ({policy.note})")
    elif req["amp"] == "off":
        amp = "off"
    else:
        ok = cuda and _bf16_supported(device) and policy.bf16 and (conv_g or conv_c)
        amp = "bf16" if ok else "off"
        if not cuda:
            notes.append("amp: auto is float32 off CUDA")
        elif not _bf16_supported(device):
            notes.append("amp: auto is float32 on a GPU without native bf16")
        elif not policy.bf16:
            notes.append(f"amp: auto keeps {getattr(objective, 'name', '?')} in float32: {policy.note}")
        elif not (conv_g or conv_c):
            notes.append("amp: auto is float32 for networks without convolutions (no speed to gain)")
        else:
            notes.append(f"amp: bf16 forwards; {policy.note}")

    # channels_last
    if req["channels_last"] == "on":
        cl_g, cl_c = conv_g, conv_c
        if not (conv_g or conv_c):
            notes.append("channels_last: no convolutions, nothing to convert")
    elif req["channels_last"] == "off":
        cl_g = cl_c = False
    else:
        cl_g, cl_c = cuda and conv_g, cuda and conv_c

    # compile
    comp_g = req["compile"] in ("on", "generator") and generator is not None
    comp_c = req["compile"] == "on" and uses_critic
    if comp_c and policy.double_backward:
        comp_c = False
        notes.append(
            f"compile: critic left eager: {getattr(objective, 'name', '?')} differentiates the critic's input "
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

    # cuDNN autotuning
    if req["cudnn_benchmark"] == "auto":
        bench = cuda and (conv_g or conv_c)
    else:
        bench = cuda and req["cudnn_benchmark"] == "on"
        if req["cudnn_benchmark"] == "on" and not cuda:
            notes.append("cudnn_benchmark: no effect off CUDA")

    head = None
    if amp != "off" and uses_critic:
        found = _output_layer(critic)
        head = found[0] if found is not None else None
    return SpeedSettings(
        device=str(device),
        amp=amp,
        channels_last_generator=bool(cl_g),
        channels_last_critic=bool(cl_c),
        compile_generator=bool(comp_g),
        compile_critic=bool(comp_c),
        cudnn_benchmark=bool(bench),
        double_backward=policy.double_backward,
        fp32_output_layer=head,
        requested=req,
        notes=tuple(notes),
    )


# ----------------------------------------------------------------------------------------------
# applying the settings


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


def _output_layer(critic: nn.Module | None) -> tuple[str, nn.Linear] | None:
    """The critic's output layer: its last ``nn.Linear`` in registration order (in the encoder of
    an autoencoder critic). All igm critics end in one; a critic without a Linear has none."""
    if critic is None:
        return None
    root, prefix = critic, ""
    encoder = getattr(critic, "encoder", None)
    if isinstance(encoder, nn.Module) and callable(getattr(critic, "decode", None)):
        root, prefix = encoder, "encoder."
    found = None
    for name, module in root.named_modules():
        if isinstance(module, nn.Linear):
            found = (prefix + name, module)
    return found


def _fp32_linear_forward(self: nn.Module, x: Tensor) -> Tensor:
    """A Linear layer's forward with autocast off and a float32 input (bound per instance)."""
    with torch.autocast(x.device.type, enabled=False):
        return type(self).forward(self, x.float())


def fp32_output_layer(critic: nn.Module) -> str | None:
    """Make the critic's output layer run in float32 under autocast; returns its name (or None).

    Its output is what kernels and losses see. In bf16 it would be rounded to 8 significant bits of
    its magnitude, and a Gaussian kernel is blind to a common offset of the features, so nothing
    keeps that magnitude small. The layer is tiny; float32 costs nothing measurable. Idempotent;
    the forward is bound to the instance (a deepcopy rebinds it to the copy), and the state dict
    is unchanged.
    """
    found = _output_layer(critic)
    if found is None:
        return None
    name, layer = found
    if not getattr(layer, "_igm_fp32_output", False):
        layer.forward = types.MethodType(_fp32_linear_forward, layer)
        layer._igm_fp32_output = True
    return name


def prepare_models(settings: SpeedSettings, generator: nn.Module | None, critic: nn.Module | None) -> None:
    """Apply the parts of ``settings`` that change the modules in place: the channels_last weight
    format, the float32 output layer under amp, and cuDNN autotuning (a process-wide flag, set
    only on CUDA). Call after ``.to(device)`` and before building optimisers."""
    if generator is not None and settings.channels_last_generator:
        generator.to(memory_format=torch.channels_last)
    if critic is not None and settings.channels_last_critic:
        critic.to(memory_format=torch.channels_last)
    if critic is not None and settings.amp != "off":
        fp32_output_layer(critic)
    if settings.device_type == "cuda":
        torch.backends.cudnn.benchmark = settings.cudnn_benchmark


def _to_float32(out: Any) -> Any:
    if isinstance(out, Tensor):
        return out.float() if out.is_floating_point() and out.dtype in (torch.bfloat16, torch.float16) else out
    if isinstance(out, (tuple, list)):
        return type(out)(_to_float32(o) for o in out)
    return out


class SpeedForward:
    """Calls ``module`` (or its compiled version) under the run's speed settings: 4-D inputs made
    channels_last, the forward under bf16 autocast, floating outputs returned as float32.

    Every other attribute is the module's (``parameters()``, ``decode``, ...); ``decode`` of an
    autoencoder critic runs under the same autocast. The module itself is not changed.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        amp_dtype: torch.dtype | None = None,
        device_type: str = "cuda",
        channels_last: bool = False,
        compiled: Callable[..., Any] | None = None,
    ) -> None:
        self.__dict__.update(
            module=module,
            amp_dtype=amp_dtype,
            device_type=device_type,
            channels_last=channels_last,
            _call=compiled if compiled is not None else module,
        )

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.amp_dtype)

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        if self.channels_last and isinstance(x, Tensor) and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.amp_dtype is None:
            return self._call(x, *args, **kwargs)
        with self._autocast():
            out = self._call(x, *args, **kwargs)
        return _to_float32(out)

    forward = __call__

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.__dict__["module"], name)
        if name == "decode" and callable(attr) and self.amp_dtype is not None:

            def decode(*args: Any, **kwargs: Any) -> Any:
                with self._autocast():
                    return _to_float32(attr(*args, **kwargs))

            return decode
        return attr

    def __repr__(self) -> str:
        compiled = self._call is not self.module
        return f"SpeedForward(amp={self.amp_dtype}, channels_last={self.channels_last}, compiled={compiled}, module={type(self.module).__name__})"


def _wrap(module: nn.Module | None, settings: SpeedSettings, channels_last: bool, compile_it: bool):
    if module is None:
        return None
    if not (settings.amp_dtype is not None or channels_last or compile_it):
        return module  # nothing to add: the plain module, so CPU defaults behave exactly as before
    compiled = torch.compile(module) if compile_it else None
    return SpeedForward(
        module, amp_dtype=settings.amp_dtype, device_type=settings.device_type, channels_last=channels_last, compiled=compiled
    )


def forwards(run: Any) -> tuple[Any, Any]:
    """``(generator_call, critic_call)`` for ``run``: the plain modules when no switch is active,
    else :class:`SpeedForward` wrappers. Built once per run and module pair (compilation is lazy:
    it happens at the first call)."""
    settings: SpeedSettings | None = getattr(run, "speed", None)
    g, c = run.generator, run.critic
    if settings is None or not settings.active:
        return g, c
    key = (id(g), id(c), id(settings))
    cache = run.__dict__.get("_speed_forwards")
    if cache is None or cache[0] != key:
        gf = _wrap(g, settings, settings.channels_last_generator, settings.compile_generator)
        cf = _wrap(c, settings, settings.channels_last_critic, settings.compile_critic)
        cache = (key, gf, cf)
        run.__dict__["_speed_forwards"] = cache
    return cache[1], cache[2]


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
