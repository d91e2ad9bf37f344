"""DCGAN generator and critic (Radford et al. 2015) as tabulated in the GRAM paper (tables 5-7).

For a ``size × size`` image the number of stride-2 stages is ``k = log2(size / 4)`` (3 for
CIFAR-10), so every network passes through a 4 × 4 bottleneck.  Stage ``i`` has
``channels[i]`` filters, by default ``base_channels · 2**i``:

* generator (table 5): ``Linear(z_dim, 16·channels[-1])`` → BN → ReLU → reshape to 4 × 4, then
  ``k`` ConvTranspose(4, stride 2, pad 1) halving the width (BN + ReLU between), Tanh output.
* critic (table 6): ``k`` Conv(4, stride 2, pad 1) with LeakyReLU(0.2), flatten,
  ``Linear(16·channels[-1], out_dim)``.  Table 7's shallow critic is ``channels=(32, 32, 64)``;
  the SMMD paper's "5-layer DCGAN critic" (CelebA, 64 × 64) is ``base_channels=64``.

Size 28 (MNIST) uses a kernel schedule instead of padding: the critic's last conv has kernel 3
(7 → 4) and the generator's first deconv has kernel 3 (4 → 7); otherwise it is the 32 network.
Weights are initialised N(0, 0.02) (BN scales N(1, 0.02)), biases zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from igm.checks import positive_int
from igm.nn.activations import LeakyReLU, ReLU

__all__ = ["DCGANCritic", "DCGANGenerator", "NORMS", "image_shape", "num_stages", "stage_widths", "dcgan_init"]

NORMS = ("none", "batch", "layer")
MIN_SIZE, MAX_SIZE = 8, 256
SUPPORTED = "powers of two from 8 to 256"


def image_shape(shape: Sequence[int], arch: str) -> tuple[int, int, int]:
    """Validate a ``(channels, size, size)`` image shape."""
    try:
        dims = tuple(shape)
    except TypeError:
        dims = ()
    if len(dims) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
        raise ValueError(f"{arch} needs an image shape (channels, height, width); got {shape!r}")
    if dims[1] != dims[2]:
        raise ValueError(f"{arch} needs square images; got {dims[1]}×{dims[2]}")
    return dims  # type: ignore[return-value]


def num_stages(size: int, arch: str, *, allow_28: bool = False) -> int:
    """``log2(size / 4)``; size 28 counts as 32 when ``allow_28``; else ``ValueError``."""
    if allow_28 and size == 28:
        return 3
    if MIN_SIZE <= size <= MAX_SIZE and size & (size - 1) == 0:
        return int(math.log2(size)) - 2
    extra = " and 28" if allow_28 else ""
    raise ValueError(f"{arch} does not support image size {size}; supported: {SUPPORTED}{extra}")


def stage_widths(channels: Sequence[int] | None, base_channels: int, k: int, arch: str) -> tuple[int, ...]:
    """Per-stage widths: ``channels`` if given (length ``k``), else ``base · 2**i``."""
    positive_int("base_channels", base_channels)
    if channels is None:
        return tuple(base_channels * 2**i for i in range(k))
    widths = tuple(channels)
    if len(widths) != k or not all(isinstance(w, int) and w > 0 for w in widths):
        raise ValueError(f"{arch}: channels must be {k} positive ints (one per stage) for this size; got {channels!r}")
    return widths


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation: conv / linear weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _norm(kind: str, width: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(width)
    if kind == "layer":  # per-sample normalisation over (C, H, W) with a per-channel affine
        return nn.GroupNorm(1, width)
    return nn.Identity()


class DCGANGenerator(nn.Module):
    """z of shape (n, z_dim) → images (n, C, size, size) in [−1, 1] (GRAM table 5).

    ``norm`` follows the input layer and every transposed conv but the last: ``"batch"`` (default,
    the DCGAN), ``"none"`` or ``"layer"``. ``norm="none"`` with one width for every stage
    (``channels=[w] * stages``) is the WGAN paper's "DCGAN generator without batch norm and with a
    constant number of filters" (its figure 6).
    """

    def __init__(
        self, shape: Sequence[int], z_dim: int = 128, base_channels: int = 32, channels: Sequence[int] | None = None,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        c, size, _ = self.shape = image_shape(shape, "dcgan")
        positive_int("z_dim", z_dim)
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
        k = num_stages(size, "dcgan", allow_28=True)
        widths = stage_widths(channels, base_channels, k, "dcgan")[::-1]  # deepest first
        self.z_dim, self.bottom = z_dim, widths[0]
        self.fc = nn.Linear(z_dim, 16 * widths[0])
        self.fc_act = nn.Sequential(_norm(norm, widths[0]), ReLU())
        layers: list[nn.Module] = []
        outs = (*widths[1:], c)
        for i, (w_in, w_out) in enumerate(zip(widths, outs)):
            kernel = 3 if size == 28 and i == 0 else 4
            layers.append(nn.ConvTranspose2d(w_in, w_out, kernel, stride=2, padding=1))
            layers += [_norm(norm, w_out), ReLU()] if i < k - 1 else [nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).reshape(z.shape[0], self.bottom, 4, 4)
        return self.net(self.fc_act(h))


class DCGANCritic(nn.Module):
    """Images (n, C, size, size) → (n, out_dim) (GRAM tables 6-7).

    ``norm`` follows every conv but the first: ``"none"`` (default; keeps samples independent,
    as gradient penalties require), ``"batch"`` (the GRAM paper; couples the samples of a batch
    in training mode) or ``"layer"`` (per-sample, as recommended for WGAN-GP).
    """

    def __init__(
        self,
        shape: Sequence[int],
        out_dim: int = 1,
        base_channels: int = 32,
        channels: Sequence[int] | None = None,
        norm: str = "none",
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        c, size, _ = self.shape = image_shape(shape, "dcgan")
        positive_int("out_dim", out_dim)
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
        k = num_stages(size, "dcgan", allow_28=True)
        widths = stage_widths(channels, base_channels, k, "dcgan")
        layers: list[nn.Module] = []
        w_in = c
        for i, w in enumerate(widths):
            kernel = 3 if size == 28 and i == k - 1 else 4
            layers.append(nn.Conv2d(w_in, w, kernel, stride=2, padding=1))
            if i > 0:
                layers.append(_norm(norm, w))
            layers.append(LeakyReLU(negative_slope))
            w_in = w
        layers += [nn.Flatten(), nn.Linear(16 * w_in, out_dim)]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
