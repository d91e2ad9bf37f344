"""Fully connected generator and critic for low-dimensional (toy) data.

The GRAM paper's ring experiments use a critic ``2-100-100-10`` with ReLU and no batch norm:
``MLPCritic((2,), out_dim=10, hidden=100, depth=2)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from igm.checks import positive_int

__all__ = ["ACTIVATIONS", "MLP", "MLPCritic", "MLPGenerator", "make_activation", "check_shape"]

ACTIVATIONS = ("relu", "leaky_relu", "tanh")
LEAKY_SLOPE = 0.2


def make_activation(name: str) -> nn.Module:
    """``"relu"`` | ``"leaky_relu"`` (slope 0.2) | ``"tanh"`` as a module."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(LEAKY_SLOPE)
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


class MLP(nn.Module):
    """``in_dim → [Linear(·, hidden) → activation] × depth → Linear(·, out_dim)``.

    ``depth`` counts hidden layers (0 gives a single affine map).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 100, depth: int = 2, activation: str = "relu") -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("hidden", hidden)):
            positive_int(name, value)
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
            raise ValueError(f"depth must be a non-negative int; got {depth!r}")
        make_activation(activation)  # validate early
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), make_activation(activation)]
            width = hidden
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MLPGenerator(nn.Module):
    """z of shape (n, z_dim) → samples of shape (n, *shape).

    ``output_activation="none"`` (default: toy data are not confined to [−1, 1]) or ``"tanh"``.
    """

    def __init__(
        self,
        shape: Sequence[int] = (2,),
        z_dim: int = 2,
        hidden: int = 100,
        depth: int = 2,
        activation: str = "relu",
        output_activation: str = "none",
    ) -> None:
        super().__init__()
        self.shape = check_shape(shape)
        if output_activation not in ("none", "tanh"):
            raise ValueError(f"unknown output_activation {output_activation!r}; valid: none, tanh")
        self.z_dim = z_dim
        self.net = MLP(z_dim, math.prod(self.shape), hidden, depth, activation)
        self.out = nn.Tanh() if output_activation == "tanh" else nn.Identity()

    def forward(self, z: Tensor) -> Tensor:
        return self.out(self.net(z)).reshape(z.shape[0], *self.shape)


class MLPCritic(nn.Module):
    """Samples of shape (n, *shape) → (n, out_dim); no normalisation, so samples are independent."""

    def __init__(
        self, shape: Sequence[int] = (2,), out_dim: int = 1, hidden: int = 100, depth: int = 2, activation: str = "relu"
    ) -> None:
        super().__init__()
        self.shape = check_shape(shape)
        self.net = MLP(math.prod(self.shape), out_dim, hidden, depth, activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.reshape(x.shape[0], -1))
