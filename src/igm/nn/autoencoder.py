"""Autoencoder critic for MMD-GAN (Li et al. 2017).

MMD-GAN's critic is the encoder of an autoencoder: the kernel is computed on the encoder's
features, and the objective adds a reconstruction term ``mean (x − decode(encode(x)))²``
(``igm.objectives`` ``mmd-gan`` with ``ae_weight > 0`` calls ``critic.decode``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from igm.nn.dcgan import DCGANCritic, DCGANGenerator

__all__ = ["AutoEncoderCritic", "dcgan_autoencoder"]


class AutoEncoderCritic(nn.Module):
    """``forward(x) = encoder(x)`` (the critic's features); ``decode(f) = decoder(f)``.

    Spectral parametrisation by :func:`igm.nn.build` touches only ``encoder``: the decoder is not
    part of the critic function the losses see.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, features: Tensor) -> Tensor:
        return self.decoder(features)


def dcgan_autoencoder(
    shape: Sequence[int],
    out_dim: int = 128,
    base_channels: int = 32,
    channels: Sequence[int] | None = None,
    norm: str = "none",
    negative_slope: float = 0.2,
) -> AutoEncoderCritic:
    """A :class:`DCGANCritic` encoder to ``out_dim`` features and a mirrored
    :class:`DCGANGenerator` decoder from them (same widths; its Tanh output matches images in
    [−1, 1])."""
    encoder = DCGANCritic(shape, out_dim, base_channels, channels, norm, negative_slope)
    decoder = DCGANGenerator(shape, out_dim, base_channels, channels)
    return AutoEncoderCritic(encoder, decoder)
