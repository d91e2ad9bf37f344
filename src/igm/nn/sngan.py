"""The "standard CNN" of SN-GAN (Miyato et al. 2018, table 3), used by the SMMD paper on CIFAR-10.

CIFAR-10 (``k = 3`` stages, ``base_channels = 64``):

* critic, 7 conv layers + linear, LeakyReLU(0.1) after every conv::

      conv3×3 64, conv4×4/2 64, conv3×3 128, conv4×4/2 128, conv3×3 256, conv4×4/2 256,
      conv3×3 512, Linear(4·4·512, out_dim)

* generator: ``Linear(z_dim, 4·4·512)`` → BN → ReLU, three deconv 4×4/2 (256, 128, 64) each
  with BN + ReLU, conv3×3 to the image channels, Tanh.

Other sizes use ``k = log2(size / 4)`` stages: the critic repeats the (conv3×3 ``w``,
conv4×4/2 ``w``) pair with ``w = base · 2**i`` and ends with conv3×3 ``2w``; the generator
starts from ``base · 2**k`` channels at 4 × 4 and halves them at each deconv.  Miyato et al.'s
Chainer code normalises the linear output with a 1-D batch norm over all 4·4·512 units; here
it is a ``BatchNorm2d`` over the 512 channels.  Weights are initialised N(0, 0.02).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from igm.checks import positive_int
from igm.nn.activations import LeakyReLU
from igm.nn.dcgan import dcgan_init, image_shape, num_stages, stage_widths

__all__ = ["SNGANCritic", "SNGANGenerator"]


class SNGANGenerator(nn.Module):
    """z of shape (n, z_dim) → images (n, C, size, size) in [−1, 1]."""

    def __init__(self, shape: Sequence[int], z_dim: int = 128, base_channels: int = 64) -> None:
        super().__init__()
        c, size, _ = self.shape = image_shape(shape, "sngan")
        positive_int("z_dim", z_dim)
        k = num_stages(size, "sngan")
        widths = stage_widths(None, base_channels, k + 1, "sngan")[::-1]  # base·2^k, ..., base
        self.z_dim, self.bottom = z_dim, widths[0]
        self.fc = nn.Linear(z_dim, 16 * widths[0])
        layers: list[nn.Module] = [nn.BatchNorm2d(widths[0]), nn.ReLU()]
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, stride=2, padding=1), nn.BatchNorm2d(w_out), nn.ReLU()]
        layers += [nn.Conv2d(widths[-1], c, 3, stride=1, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.fc(z).reshape(z.shape[0], self.bottom, 4, 4))


class SNGANCritic(nn.Module):
    """Images (n, C, size, size) → (n, out_dim); no normalisation layers (use ``spectral=``)."""

    def __init__(
        self, shape: Sequence[int], out_dim: int = 1, base_channels: int = 64, negative_slope: float = 0.1
    ) -> None:
        super().__init__()
        c, size, _ = self.shape = image_shape(shape, "sngan")
        positive_int("out_dim", out_dim)
        k = num_stages(size, "sngan")
        widths = stage_widths(None, base_channels, k, "sngan")
        layers: list[nn.Module] = []
        w_in = c
        for w in widths:
            layers += [nn.Conv2d(w_in, w, 3, stride=1, padding=1), LeakyReLU(negative_slope)]
            layers += [nn.Conv2d(w, w, 4, stride=2, padding=1), LeakyReLU(negative_slope)]
            w_in = w
        layers += [nn.Conv2d(w_in, 2 * w_in, 3, stride=1, padding=1), LeakyReLU(negative_slope)]
        layers += [nn.Flatten(), nn.Linear(16 * 2 * w_in, out_dim)]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
