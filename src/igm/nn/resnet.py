"""The CIFAR-10 ResNet of WGAN-GP (Gulrajani et al. 2017), as listed in the LGAN paper's table 3.

Generator (``channels = 128``): ``Linear(z_dim, 4·4·128)``, ``k = log2(size / 4)`` residual
up-blocks (BN → ReLU → nearest ×2 → conv3×3 → BN → ReLU → conv3×3, shortcut nearest ×2 →
conv1×1), then BN → ReLU → conv3×3 to the image channels → Tanh.

Critic: residual down-blocks until the map is 8 × 8 (4 × 4 for size 8), the first an
"optimised" block (conv3×3 → ReLU → conv3×3 → mean-pool, shortcut mean-pool → conv1×1), the
others pre-activation (ReLU → conv3×3 → ReLU → conv3×3 → mean-pool, shortcut conv1×1 →
mean-pool); then two plain residual blocks (identity shortcut), ReLU, spatial mean, Linear.
At 32 × 32 this is table 3's 4 blocks, 2 downsampling.  The critic has no normalisation
layers, as in WGAN-GP, so samples stay independent.

Initialisation follows common PyTorch ports: Xavier-uniform with gain √2 on the residual
convs, gain 1 on shortcuts, the input linear layer and the output layers; biases zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from igm.checks import positive_int
from igm.nn.activations import relu
from igm.nn.dcgan import image_shape, num_stages

__all__ = ["ResNetCritic", "ResNetGenerator", "ResBlockDown", "ResBlockUp", "ResBlock"]


def _conv(w_in: int, w_out: int, kernel: int, gain: float) -> nn.Conv2d:
    conv = nn.Conv2d(w_in, w_out, kernel, padding=kernel // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    nn.init.zeros_(conv.bias)
    return conv


def _linear(w_in: int, w_out: int) -> nn.Linear:
    lin = nn.Linear(w_in, w_out)
    nn.init.xavier_uniform_(lin.weight)
    nn.init.zeros_(lin.bias)
    return lin


class ResBlockUp(nn.Module):
    """Generator block: 2× nearest upsampling, BN + ReLU pre-activations, 1×1 conv shortcut."""

    def __init__(self, w_in: int, w_out: int) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(w_in), _conv(w_in, w_out, 3, math.sqrt(2))
        self.bn2, self.conv2 = nn.BatchNorm2d(w_out), _conv(w_out, w_out, 3, math.sqrt(2))
        self.shortcut = _conv(w_in, w_out, 1, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResBlockDown(nn.Module):
    """Critic block with 2× mean-pool downsampling; ``first`` = the optimised input block."""

    def __init__(self, w_in: int, w_out: int, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.conv1 = _conv(w_in, w_out if first else w_in, 3, math.sqrt(2))
        self.conv2 = _conv(w_out if first else w_in, w_out, 3, math.sqrt(2))
        self.shortcut = _conv(w_in, w_out, 1, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else relu(x)
        h = F.avg_pool2d(self.conv2(relu(self.conv1(h))), 2)
        skip = self.shortcut(F.avg_pool2d(x, 2)) if self.first else F.avg_pool2d(self.shortcut(x), 2)
        return h + skip


class ResBlock(nn.Module):
    """Critic block without resampling: ReLU → conv3×3 → ReLU → conv3×3, identity shortcut."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = _conv(width, width, 3, math.sqrt(2))
        self.conv2 = _conv(width, width, 3, math.sqrt(2))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(relu(self.conv1(relu(x))))


class ResNetGenerator(nn.Module):
    """z of shape (n, z_dim) → images (n, C, size, size) in [−1, 1]."""

    def __init__(self, shape: Sequence[int], z_dim: int = 128, channels: int = 128) -> None:
        super().__init__()
        c, size, _ = self.shape = image_shape(shape, "resnet")
        positive_int("z_dim", z_dim)
        positive_int("channels", channels)
        k = num_stages(size, "resnet")
        self.z_dim, self.channels = z_dim, channels
        self.fc = _linear(z_dim, 16 * channels)
        self.blocks = nn.Sequential(*(ResBlockUp(channels, channels) for _ in range(k)))
        self.out = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(), _conv(channels, c, 3, 1.0), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.out(self.blocks(self.fc(z).reshape(z.shape[0], self.channels, 4, 4)))


class ResNetCritic(nn.Module):
    """Images (n, C, size, size) → (n, out_dim)."""

    def __init__(self, shape: Sequence[int], out_dim: int = 1, channels: int = 128) -> None:
        super().__init__()
        c, size, _ = self.shape = image_shape(shape, "resnet")
        positive_int("out_dim", out_dim)
        positive_int("channels", channels)
        n_down = max(1, num_stages(size, "resnet") - 1)
        blocks: list[nn.Module] = [ResBlockDown(c, channels, first=True)]
        blocks += [ResBlockDown(channels, channels) for _ in range(n_down - 1)]
        blocks += [ResBlock(channels), ResBlock(channels)]
        self.blocks = nn.Sequential(*blocks)
        self.fc = _linear(channels, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(relu(self.blocks(x)).mean(dim=(2, 3)))
