"""Architectures: shapes, output range, hand-counted CIFAR parameter counts, per-sample
independence and double backward of critics, spectral parametrisation, and input validation."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import igm.nn as N
from igm.nn.spectral import ScaledSpectralNorm

IMAGE_ARCHS = ("dcgan", "sngan", "resnet")
CASES = [(a, s, c) for a in IMAGE_ARCHS for s in (8, 16, 32) for c in (1, 3)]
CASES += [("dcgan", s, c) for s in (28, 64) for c in (1, 3)]
# Narrow networks keep the suite fast; widths do not change the geometry under test.
NARROW = {"dcgan": {"base_channels": 8}, "sngan": {"base_channels": 8}, "resnet": {"channels": 16}}
CRITICS = [  # (name, shape, params) at small sizes, all without batch coupling
    ("mlp", (2,), {}),
    ("mlp", (3, 4), {"activation": "tanh", "depth": 3}),
    ("dcgan", (3, 16, 16), {}),
    ("dcgan", (1, 28, 28), {"norm": "layer", "base_channels": 8}),
    ("sngan", (3, 16, 16), {"base_channels": 16}),
    ("resnet", (3, 16, 16), {"channels": 32}),
    ("resnet", (1, 8, 8), {"channels": 16}),
    ("dcgan-ae", (3, 16, 16), {"base_channels": 16}),
    ("convnet", (1, 28, 28), {"channels": [4, 8, 8]}),
    ("convnet", (3, 16, 16), {"norm": "layer", "channels": [4, 8]}),
]


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """These networks are tiny: intra-op threads only add contention on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv(c_in: int, c_out: int, k: int) -> int:  # weight + bias
    return c_in * c_out * k * k + c_out


def linear(d_in: int, d_out: int) -> int:
    return d_in * d_out + d_out


def bn(c: int) -> int:
    return 2 * c


@pytest.mark.parametrize("name,size,channels", CASES)
def test_image_shapes_and_generator_range(name: str, size: int, channels: int) -> None:
    torch.manual_seed(0)
    shape = (channels, size, size)
    gen = N.build(name, "generator", shape=shape, z_dim=16, **NARROW[name])
    z = torch.randn(5, 16)
    x = gen(z)
    assert x.shape == (5, *shape) and x.abs().max() <= 1.0 and x.std() > 0
    with torch.no_grad():  # blow the weights up: only a bounded output layer stays in [-1, 1]
        for p in gen.parameters():
            p.mul_(30)
        gen.eval()
        big = gen(z)
    assert big.shape == (5, *shape) and big.abs().max() <= 1.0 and big.abs().max() > 0.9
    for out_dim in (1, 7):
        critic = N.build(name, "critic", shape=shape, out_dim=out_dim, **NARROW[name])
        assert critic(x.detach()).shape == (5, out_dim)
    ae = N.build("dcgan-ae", "critic", shape=shape, out_dim=6, base_channels=8) if name == "dcgan" else None
    if ae is not None:
        f = ae(x.detach())
        assert f.shape == (5, 6) and ae.decode(f).shape == (5, *shape)


@pytest.mark.parametrize("shape", [(2,), (3, 4)])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh"])
def test_mlp_shapes(shape: tuple[int, ...], activation: str) -> None:
    gen = N.build("mlp", "generator", shape=shape, z_dim=4, hidden=8, depth=3, activation=activation)
    critic = N.build("mlp", "critic", shape=shape, out_dim=10, hidden=8, depth=1, activation=activation)
    x = gen(torch.randn(6, 4))
    assert x.shape == (6, *shape) and critic(x).shape == (6, 10)
    assert sum(isinstance(m, nn.Linear) for m in gen.modules()) == 4
    assert sum(isinstance(m, nn.Linear) for m in critic.modules()) == 2
    tanh_gen = N.build("mlp", "generator", shape=shape, z_dim=4, output_activation="tanh")
    assert tanh_gen(100 * torch.randn(6, 4)).abs().max() <= 1.0


def test_cifar_parameter_counts() -> None:
    """Counts from the papers' layer lists, with biases on every conv / linear layer."""
    cifar, z = (3, 32, 32), 128
    expected = {
        # GRAM table 5: Linear 128->4*4*128 (BN), deconv 128->64 (BN), 64->32 (BN), 32->3, tanh
        ("dcgan", "generator"): linear(z, 2048) + bn(128) + conv(128, 64, 4) + bn(64) + conv(64, 32, 4)
        + bn(32) + conv(32, 3, 4),
        # GRAM table 6 with a scalar output: conv 3->32->64->128 (4x4/2), Linear 2048->1
        ("dcgan", "critic"): conv(3, 32, 4) + conv(32, 64, 4) + conv(64, 128, 4) + linear(2048, 1),
        # SN-GAN standard CNN: dense 128->4*4*512 (BN), deconv 512->256->128->64 (BN), conv3x3 64->3
        ("sngan", "generator"): linear(z, 8192) + bn(512) + conv(512, 256, 4) + bn(256) + conv(256, 128, 4)
        + bn(128) + conv(128, 64, 4) + bn(64) + conv(64, 3, 3),
        # SN-GAN critic: 7 convs (3x3 / 4x4 alternating, 64-64-128-128-256-256-512), dense 8192->1
        ("sngan", "critic"): conv(3, 64, 3) + conv(64, 64, 4) + conv(64, 128, 3) + conv(128, 128, 4)
        + conv(128, 256, 3) + conv(256, 256, 4) + conv(256, 512, 3) + linear(8192, 1),
        # WGAN-GP ResNet: Linear 128->4*4*128, 3 up-blocks (BN, conv3, BN, conv3, 1x1 shortcut),
        # BN, conv3x3 128->3
        ("resnet", "generator"): linear(z, 2048) + 3 * (2 * bn(128) + 2 * conv(128, 128, 3) + conv(128, 128, 1))
        + bn(128) + conv(128, 3, 3),
        # optimised block (3->128, 128->128, 1x1 shortcut 3->128), down block, 2 plain blocks, Linear
        ("resnet", "critic"): conv(3, 128, 3) + conv(128, 128, 3) + conv(3, 128, 1)
        + 2 * conv(128, 128, 3) + conv(128, 128, 1) + 4 * conv(128, 128, 3) + linear(128, 1),
    }
    got = {(n, r): n_params(N.build(n, r, shape=cifar, z_dim=z)) for n, r in expected}
    assert got == expected
    assert got[("dcgan", "critic")] == 167_649 and got[("sngan", "critic")] == 2_935_873
    # GRAM table 7 (shallow critic) with its 128 features; the GRAM ring critic 2-100-100-10
    shallow = N.build("dcgan", "critic", shape=cifar, out_dim=128, channels=(32, 32, 64))
    assert n_params(shallow) == conv(3, 32, 4) + conv(32, 32, 4) + conv(32, 64, 4) + linear(1024, 128)
    ring = N.build("mlp", "critic", shape=(2,), out_dim=10, hidden=100, depth=2)
    assert n_params(ring) == linear(2, 100) + linear(100, 100) + linear(100, 10)
    ae = N.build("dcgan-ae", "critic", shape=cifar, out_dim=128)
    assert n_params(ae) == n_params(N.build("dcgan", "critic", shape=cifar, out_dim=128)) + n_params(
        N.build("dcgan", "generator", shape=cifar, z_dim=128)
    )


def test_layer_structure() -> None:
    cifar = (3, 32, 32)
    convs = lambda m: [l for l in m.modules() if isinstance(l, nn.Conv2d)]  # noqa: E731
    sn = convs(N.build("sngan", "critic", shape=cifar))
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in sn] == [
        (64, 3, 1), (64, 4, 2), (128, 3, 1), (128, 4, 2), (256, 3, 1), (256, 4, 2), (512, 3, 1)
    ]
    assert len(convs(N.build("dcgan", "critic", shape=(3, 64, 64)))) == 4  # SMMD's 5-layer critic
    deconvs = [l for l in N.build("dcgan", "generator", shape=(1, 28, 28), z_dim=8).modules() if isinstance(l, nn.ConvTranspose2d)]
    assert [d.kernel_size[0] for d in deconvs] == [3, 4, 4]
    critic = N.build("dcgan", "critic", shape=cifar, base_channels=64)
    weights = torch.cat([c.weight.flatten() for c in convs(critic)])
    assert 0.018 < weights.std().item() < 0.022 and abs(weights.mean().item()) < 1e-3  # N(0, 0.02)


def _cross_gradient(critic: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    x = torch.randn(4, *shape, requires_grad=True)
    (grad,) = torch.autograd.grad(critic(x)[0].sum(), x)
    return grad


@pytest.mark.parametrize("name,shape,params", CRITICS)
def test_critic_per_sample_independence(name: str, shape: tuple[int, ...], params: dict) -> None:
    torch.manual_seed(0)
    critic = N.build(name, "critic", shape=shape, out_dim=3, **params)
    grad = _cross_gradient(critic, shape)
    assert grad[0].abs().sum() > 0
    assert torch.equal(grad[1:], torch.zeros_like(grad[1:]))


def test_batch_norm_critic_couples_samples() -> None:
    """The independence check detects coupling: BN in training mode mixes the batch."""
    torch.manual_seed(0)
    critic = N.build("dcgan", "critic", shape=(3, 16, 16), norm="batch")
    assert _cross_gradient(critic, (3, 16, 16))[1:].abs().sum() > 0


@pytest.mark.parametrize("spectral", [None, "learned"])
@pytest.mark.parametrize("name,shape,params", CRITICS)
def test_critic_double_backward(name: str, shape: tuple[int, ...], params: dict, spectral: str | None) -> None:
    torch.manual_seed(0)
    critic = N.build(name, "critic", shape=shape, spectral=spectral, **params)
    x = torch.randn(3, *shape, requires_grad=True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    penalty = (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
    penalty.backward()
    grads = [p.grad for p in critic.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0


SPECTRAL_CASES = [
    ("dcgan", (3, 16, 16), {}),
    ("sngan", (1, 8, 8), {"base_channels": 16}),
    ("resnet", (3, 8, 8), {"channels": 16}),
    ("mlp", (2,), {}),
    ("dcgan-ae", (1, 16, 16), {}),
    ("convnet", (1, 28, 28), {}),
]


@pytest.mark.parametrize("name,shape,params", SPECTRAL_CASES)
@pytest.mark.parametrize("spectral", ["learned", "fixed"])
def test_spectral_parametrisation(name: str, shape: tuple[int, ...], params: dict, spectral: str) -> None:
    torch.manual_seed(0)
    plain = N.build(name, "critic", shape=shape, out_dim=2, **params)
    critic = N.build(name, "critic", shape=shape, out_dim=2, spectral=spectral, **params)
    body = critic.encoder if name == "dcgan-ae" else critic
    layers = [m for m in body.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    norms = [p for m in layers for p in m.parametrizations["weight"] if isinstance(p, ScaledSpectralNorm)]
    assert len(norms) == len(layers)
    learned = spectral == "learned"
    assert all(isinstance(p.scale, nn.Parameter) == learned for p in norms)
    param_ids = {id(p) for p in critic.parameters()}
    assert all((id(p.scale) in param_ids) == learned for p in norms)
    assert n_params(critic) == n_params(plain) + (len(layers) if learned else 0)
    if name == "dcgan-ae":  # the decoder is not part of the critic function
        assert not any(parametrize.is_parametrized(m) for m in critic.decoder.modules())
    assert critic(torch.randn(3, *shape)).shape == (3, 2)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"name": "vgg"}, "valid names: convnet, dcgan, dcgan-ae, mlp, resnet, sngan"),
        ({"role": "discriminator"}, "valid: generator, critic"),
        ({"shape": (3, 30, 30)}, "supported: powers of two from 8 to 256 and 28"),
        ({"shape": (3, 12, 12)}, "supported"),
        ({"shape": (3, 4, 4)}, "supported"),
        ({"shape": (3, 512, 512)}, "supported"),
        ({"name": "sngan", "shape": (1, 28, 28)}, "does not support image size 28"),
        ({"name": "resnet", "shape": (3, 24, 24)}, "supported"),
        ({"shape": (3, 32, 16)}, "square"),
        ({"shape": (784,)}, "image shape"),
        ({"name": "mlp", "shape": (0,)}, "positive ints"),
        ({"widht": 3}, "valid: base_channels, channels, norm, negative_slope"),
        ({"role": "generator", "negative_slope": 0.2}, "valid: base_channels, channels, norm"),
        ({"role": "generator", "norm": "group"}, "valid: none, batch, layer"),
        ({"norm": "group"}, "valid: none, batch, layer"),
        ({"channels": (32, 64)}, "3 positive ints"),
        ({"base_channels": 0}, "positive int"),
        ({"name": "mlp", "shape": (2,), "activation": "gelu"}, "relu, leaky_relu, tanh"),
        ({"name": "mlp", "shape": (2,), "depth": -1}, "non-negative"),
        ({"name": "dcgan-ae", "role": "generator"}, "no generator"),
        ({"role": "generator", "z_dim": None}, "needs z_dim"),
        ({"out_dim": 0}, "out_dim"),
        ({"spectral": "exact"}, "unknown spectral"),
        ({"role": "generator", "spectral": "fixed"}, "applies to critics"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    args = {"name": "dcgan", "role": "critic", "shape": (3, 32, 32), "z_dim": 8, **kwargs}
    with pytest.raises(ValueError, match=match):
        N.build(args.pop("name"), args.pop("role"), **args)


def test_names_and_parameters() -> None:
    assert N.names() == ["convnet", "dcgan", "dcgan-ae", "mlp", "resnet", "sngan"]
    assert N.names("generator") == ["dcgan", "mlp", "resnet", "sngan"]
    assert N.parameters("sngan", "critic") == ["base_channels", "negative_slope"]
    assert N.parameters("dcgan-ae", "generator") == []
