"""Network architectures (MLP, DCGAN, SN-GAN CNN, WGAN-GP ResNet, autoencoder critic, GRAM's MNIST convnet critic) and the
spectral parametrisation of critics; the generator's latent codes (``sample_latent``).

``igm.nn.build(name, role, shape=..., z_dim=..., out_dim=1, spectral=None, **params)`` builds one;
``igm.nn.names()`` lists them.  See ``docs/architectures.md``.
"""

from igm.nn.activations import LeakyReLU, ReLU, leaky_relu, relu
from igm.nn.autoencoder import AutoEncoderCritic, dcgan_autoencoder
from igm.nn.convnet import ConvNetCritic
from igm.nn.dcgan import DCGANCritic, DCGANGenerator
from igm.nn.latent import LATENT_DISTS, sample_latent
from igm.nn.mlp import MLP, MLPCritic, MLPGenerator
from igm.nn.registry import architectures, build, names, parameters
from igm.nn.resnet import ResNetCritic, ResNetGenerator
from igm.nn.sngan import SNGANCritic, SNGANGenerator
from igm.nn.spectral import apply_spectral, layer_spectra, spectral_parametrize

__all__ = [
    "AutoEncoderCritic",
    "LeakyReLU",
    "ReLU",
    "leaky_relu",
    "relu",
    "ConvNetCritic",
    "DCGANCritic",
    "DCGANGenerator",
    "LATENT_DISTS",
    "MLP",
    "MLPCritic",
    "MLPGenerator",
    "ResNetCritic",
    "ResNetGenerator",
    "SNGANCritic",
    "SNGANGenerator",
    "apply_spectral",
    "architectures",
    "build",
    "dcgan_autoencoder",
    "layer_spectra",
    "names",
    "parameters",
    "sample_latent",
    "spectral_parametrize",
]
