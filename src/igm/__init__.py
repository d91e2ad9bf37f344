"""igm: implicit generative models — WGAN, MMD GANs, Scaled MMD, GCMMD, Sobolev GAN, GRAM, LGAN."""

__version__ = "0.1.0"
