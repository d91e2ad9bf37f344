"""A small pooling convnet critic: the GRAM paper's MNIST critic (seed 003, appendix A.3, table 3).

Each stage is Conv(3×3, stride 1, padding 1) → norm → ReLU → MaxPool(2) (floor), then the
features are flattened into ``Linear(·, out_dim)``. Table 3 is ``channels=(16, 32, 32)``,
``norm="batch"`` and ``out_dim=100`` on 28×28 images: 28 → 14 → 7 → 3, so the linear layer
reads 3·3·32 = 288 values.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from igm.checks import positive_int
from igm.nn.activations import ReLU
from igm.nn.dcgan import NORMS, _norm, dcgan_init, image_shape

__all__ = ["ConvNetCritic"]


class ConvNetCritic(nn.Module):
    """Images (n, C, H, W) → (n, out_dim) through ``len(channels)`` conv + max-pool stages.

    ``norm`` follows every conv: ``"none"`` (default; keeps samples independent, as gradient
    penalties need), ``"batch"`` (the GRAM paper's table 3) or ``"layer"`` (per sample). Weights
    are initialised as in DCGAN (N(0, 0.02), biases zero).
    """

    def __init__(self, shape: Sequence[int], out_dim: int = 1, channels: Sequence[int] = (16, 32, 32),
                 norm: str = "none") -> None:
        super().__init__()
        c, size, _ = self.shape = image_shape(shape, "convnet")
        positive_int("out_dim", out_dim)
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
        widths = tuple(channels)
        if not widths or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
            raise ValueError(f"convnet: channels must be a non-empty list of positive ints; got {channels!r}")
        if size >> len(widths) < 1:
            raise ValueError(f"convnet: {len(widths)} max-pool stages need images of at least {2 ** len(widths)} "
                             f"pixels; got {size}")
        layers: list[nn.Module] = []
        w_in = c
        for w in widths:
            layers += [nn.Conv2d(w_in, w, 3, stride=1, padding=1), _norm(norm, w), ReLU(), nn.MaxPool2d(2)]
            w_in = w
        side = size >> len(widths)  # floor halving at every pool
        layers += [nn.Flatten(), nn.Linear(w_in * side * side, out_dim)]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
