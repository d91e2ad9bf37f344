"""ReLU and LeakyReLU whose double backward sends nothing back into their input.

A gradient penalty differentiates the critic's input gradient again. PyTorch's ``leaky_relu`` (and
``relu``) backward is ``leaky_relu_backward(grad, x, slope)``, and its derivative formula gives the
saved input ``x`` a gradient of ``zeros_like(grad)``. Under ``create_graph=True`` that zero is a
real tensor: the final ``backward`` carries it through the whole forward graph of the points where
the penalty was taken (for WGAN-GP, one more backward of the interpolates' batch, 15 convolution
backward calls instead of 12 for the DCGAN critic; ``benchmarks/RESULTS.md``).

Here the backward is ``grad · s`` with ``s = 1`` where the output is positive and ``slope``
elsewhere, computed from the saved *output* through a comparison, which has no derivative. The
double backward is therefore linear in ``grad`` alone, and nothing flows to ``x``. The values are
those of the stock functions, first and second derivatives alike (both are piecewise linear; the
derivative at exactly 0 is ``slope``, as in PyTorch).

The forward is the stock kernel, registered as a ``torch.library`` custom op with its own autograd
formula, so it costs what ``F.leaky_relu`` costs; ``torch.compile`` sees it through its fake
(meta) implementation. :class:`LeakyReLU` and :class:`ReLU` subclass the ``torch.nn`` modules:
state_dicts (they hold nothing), ``repr``, ``isinstance`` checks and checkpoints of networks built
with the stock modules are unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["leaky_relu", "relu", "LeakyReLU", "ReLU"]


def _leaky_relu(x: Tensor, slope: float) -> Tensor:
    return F.relu(x) if slope == 0.0 else F.leaky_relu(x, slope)


@torch.library.custom_op("igm::leaky_relu", mutates_args=())
def _leaky_relu_op(x: Tensor, slope: float) -> Tensor:
    return _leaky_relu(x, slope)


@_leaky_relu_op.register_fake
def _(x: Tensor, slope: float) -> Tensor:
    return torch.empty_like(x)


def _setup(ctx, inputs, output) -> None:
    ctx.slope = inputs[1]
    ctx.save_for_backward(output)  # the output's sign is the input's for slope ≥ 0: no extra tensor
    # An undefined incoming gradient stays undefined. In a double backward, a convolution's second
    # derivative hands its saved input (this output) an undefined gradient; materialised, it would
    # become the very zero tensor this module exists to avoid, and travel down the forward graph.
    ctx.set_materialize_grads(False)


def _backward(ctx, grad: Tensor | None):
    if grad is None:
        return None, None
    (y,) = ctx.saved_tensors
    # PyTorch's own backward kernel, handed the output *detached*: its derivative for the grad input
    # is kept, and the one for the saved tensor (a zero) is never formed, as nothing asks for it.
    # (y > 0 selects as x > 0 does for slope ≥ 0; the kernel reads only the sign of its argument.)
    if ctx.slope == 0.0:
        return torch.ops.aten.threshold_backward(grad, y.detach(), 0.0), None
    return torch.ops.aten.leaky_relu_backward(grad, y.detach(), ctx.slope, False), None


_leaky_relu_op.register_autograd(_backward, setup_context=_setup)


def _check_slope(slope: float) -> float:
    slope = float(slope)
    if not slope >= 0.0:  # the saved output's sign stands in for the input's
        raise ValueError(f"negative_slope must be ≥ 0 for igm's activations; got {slope}")
    return slope


def _apply(x: Tensor, slope: float) -> Tensor:
    if x.requires_grad and torch.is_grad_enabled():
        return _leaky_relu_op(x, slope)
    return _leaky_relu(x, slope)  # no graph to build: the stock kernel, without the op's dispatch


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``F.leaky_relu(x, negative_slope)`` with a double backward that leaves ``x`` alone."""
    return _apply(x, _check_slope(negative_slope))


def relu(x: Tensor) -> Tensor:
    """``F.relu(x)`` with a double backward that leaves ``x`` alone."""
    return _apply(x, 0.0)


class LeakyReLU(nn.LeakyReLU):
    """``nn.LeakyReLU`` computed by :func:`leaky_relu` (``inplace`` is not supported)."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        if inplace:
            raise ValueError("igm.nn.LeakyReLU does not work in place")
        super().__init__(_check_slope(negative_slope), inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        return _apply(x, self.negative_slope)


class ReLU(nn.ReLU):
    """``nn.ReLU`` computed by :func:`relu` (``inplace`` is not supported)."""

    def __init__(self, inplace: bool = False):
        if inplace:
            raise ValueError("igm.nn.ReLU does not work in place")
        super().__init__(inplace=False)

    def forward(self, x: Tensor) -> Tensor:
        return _apply(x, 0.0)
