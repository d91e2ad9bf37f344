"""Fully connected generator and critic, for toy data and small images.

The GRAM paper's ring experiments use a critic ``2-100-100-10`` with ReLU and no batch norm:
``MLPCritic((2,), out_dim=10, hidden=100, depth=2)``. Its MNIST generator (appendix A.3) is
``100-600-600-800-784`` with a sigmoid output: ``MLPGenerator((1, 28, 28), z_dim=100,
hidden=[600, 600, 800], output_activation="sigmoid")``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from igm.checks import positive_int
from igm.nn.activations import LeakyReLU, ReLU

__all__ = ["ACTIVATIONS", "OUTPUT_ACTIVATIONS", "MLP", "MLPCritic", "MLPGenerator", "SigmoidImage", "make_activation",
           "check_shape"]

ACTIVATIONS = ("relu", "leaky_relu", "tanh")
OUTPUT_ACTIVATIONS = ("none", "tanh", "sigmoid")
LEAKY_SLOPE = 0.2


def make_activation(name: str) -> nn.Module:
    """``"relu"`` | ``"leaky_relu"`` (slope 0.2) | ``"tanh"`` as a module."""
    if name == "relu":
        return ReLU()
    if name == "leaky_relu":
        return LeakyReLU(LEAKY_SLOPE)
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")


def check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """A non-empty tuple of positive ints, else ``ValueError``."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be a sequence of positive ints; got {shape!r}") from None
    if not dims or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
        raise ValueError(f"shape must be a non-empty sequence of positive ints; got {shape!r}")
    return dims


def hidden_widths(hidden: int | Sequence[int], depth: int | None) -> tuple[int, ...]:
    """The hidden layer widths: ``depth`` (default 2) layers of ``hidden``, or the list ``hidden``."""
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 0):
        raise ValueError(f"depth must be a non-negative int; got {depth!r}")
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        return (positive_int("hidden", hidden),) * (2 if depth is None else depth)
    try:
        widths = tuple(positive_int("hidden", w) for w in hidden)
    except TypeError:
        raise ValueError(f"hidden must be a positive int or a list of them; got {hidden!r}") from None
    if depth is not None and depth != len(widths):
        raise ValueError(f"depth={depth} disagrees with the {len(widths)} widths in hidden={list(widths)}; give one of them")
    return widths


class SigmoidImage(nn.Module):
    """``2·sigmoid(x) − 1``: a sigmoid output, an image in [0, 1], mapped to the library's [−1, 1] by the
    same ``v ↦ 2v − 1`` that maps data pixels (equal to ``tanh(x / 2)``)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(x).mul(2.0).sub(1.0)


class MLP(nn.Module):
    """``in_dim → [Linear(·, width) → activation] for each hidden width → Linear(·, out_dim)``.

    ``hidden`` is one width repeated ``depth`` times (default 2; 0 gives a single affine map) or
    a list of widths, one per hidden layer.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int | Sequence[int] = 100, depth: int | None = None,
                 activation: str = "relu") -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim)):
            positive_int(name, value)
        widths = hidden_widths(hidden, depth)
        make_activation(activation)  # validate early
        layers: list[nn.Module] = []
        width = in_dim
        for w in widths:
            layers += [nn.Linear(width, w), make_activation(activation)]
            width = w
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MLPGenerator(nn.Module):
    """z of shape (n, z_dim) → samples of shape (n, *shape).

    ``output_activation="none"`` (default: toy data are not confined to [−1, 1]), ``"tanh"``, or
    ``"sigmoid"``: the GRAM paper's sigmoid image in [0, 1], returned as ``2·sigmoid − 1`` in
    [−1, 1] (:class:`SigmoidImage`), the library's image convention.
    """

    def __init__(
        self,
        shape: Sequence[int] = (2,),
        z_dim: int = 2,
        hidden: int | Sequence[int] = 100,
        depth: int | None = None,
        activation: str = "relu",
        output_activation: str = "none",
    ) -> None:
        super().__init__()
        self.shape = check_shape(shape)
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"unknown output_activation {output_activation!r}; valid: {', '.join(OUTPUT_ACTIVATIONS)}")
        self.z_dim = z_dim
        self.net = MLP(z_dim, math.prod(self.shape), hidden, depth, activation)
        self.out = {"none": nn.Identity, "tanh": nn.Tanh, "sigmoid": SigmoidImage}[output_activation]()

    def forward(self, z: Tensor) -> Tensor:
        return self.out(self.net(z)).reshape(z.shape[0], *self.shape)


class MLPCritic(nn.Module):
    """Samples of shape (n, *shape) → (n, out_dim); no normalisation, so samples are independent."""

    def __init__(
        self, shape: Sequence[int] = (2,), out_dim: int = 1, hidden: int | Sequence[int] = 100, depth: int | None = None,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.shape = check_shape(shape)
        self.net = MLP(math.prod(self.shape), out_dim, hidden, depth, activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.reshape(x.shape[0], -1))
