"""Applying resolved speed settings (:class:`igm.train.speed.SpeedSettings`) to the networks:
the channels_last weight format, the float32 critic output layer under bf16 autocast, cuDNN
autotuning, and the :class:`SpeedForward` calls the training step makes (``docs/performance.md``).
``igm.train.speed`` re-exports everything public here."""

from __future__ import annotations

import types
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from igm.train.speed import SpeedSettings

__all__ = ["SpeedForward", "fp32_output_layer", "prepare_models", "forwards"]


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
