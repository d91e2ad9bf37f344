"""The GRAM paper's MNIST networks (seed 003, A.3): the MLP generator 100-600-600-800-784 with a
sigmoid output mapped to [-1, 1], the list-of-widths MLP, and the table-3 pooling convnet critic,
checked against hand counts and against a torch.nn reference built layer by layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import igm.nn as N
from tolerance import assert_close


def linear(d_in: int, d_out: int) -> int:
    return d_in * d_out + d_out


def test_gram_mnist_generator_layers_and_parameters() -> None:
    gen = N.build("mlp", "generator", shape=(1, 28, 28), z_dim=100, hidden=[600, 600, 800], output_activation="sigmoid")
    lin = [m for m in gen.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in lin] == [(100, 600), (600, 600), (600, 800), (800, 784)]
    assert sum(p.numel() for p in gen.parameters()) == linear(100, 600) + linear(600, 600) + linear(600, 800) + linear(800, 784)
    assert sum(isinstance(m, nn.ReLU) for m in gen.modules()) == 3


def test_sigmoid_output_is_the_sigmoid_image_mapped_to_minus_one_one() -> None:
    torch.manual_seed(0)
    gen = N.build("mlp", "generator", shape=(1, 28, 28), z_dim=10, hidden=[32, 16], output_activation="sigmoid")
    z = 4 * torch.rand(64, 10) - 2
    pre = gen.net(z)  # the last Linear's output
    x = gen(z)
    assert x.shape == (64, 1, 28, 28)
    # the paper's image s = sigmoid(pre) in [0, 1]; the library's pixel is 2s - 1, i.e. tanh(pre / 2)
    one = torch.ones_like(pre)  # 2s - 1 cancels near s = 1/2: the rounding error is relative to 1, not to |x|
    assert_close(x.flatten(1), 2 * torch.sigmoid(pre) - 1, dtype=torch.float32, magnitude=one, terms=2)
    assert_close(x.flatten(1), torch.tanh(pre / 2), dtype=torch.float32, magnitude=one, terms=2)
    big = gen.out(torch.tensor([-60.0, 0.0, 60.0]))
    assert big.tolist() == [-1.0, 0.0, 1.0]


def test_hidden_list_equals_repeated_width() -> None:
    torch.manual_seed(0)
    a = N.build("mlp", "critic", shape=(2,), hidden=8, depth=3)
    torch.manual_seed(0)
    b = N.build("mlp", "critic", shape=(2,), hidden=[8, 8, 8])
    x = torch.randn(5, 2)
    assert torch.equal(a(x), b(x))
    assert len(N.build("mlp", "critic", shape=(2,), hidden=8).net.net) == 5  # default depth 2: 3 Linear + 2 ReLU


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"hidden": [8, 8], "depth": 3}, "disagrees"),
        ({"hidden": [8, 0]}, "hidden"),
        ({"hidden": "wide"}, "hidden"),
        ({"output_activation": "softmax"}, "none, tanh, sigmoid"),
    ],
)
def test_mlp_bad_widths(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        N.build("mlp", "generator", shape=(2,), z_dim=3, **kwargs)


def test_table3_convnet_matches_a_reference_built_layer_by_layer() -> None:
    torch.manual_seed(0)
    critic = N.build("convnet", "critic", shape=(1, 28, 28), out_dim=100, norm="batch")
    convs = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in critic.modules() if isinstance(m, nn.BatchNorm2d)]
    (fc,) = [m for m in critic.modules() if isinstance(m, nn.Linear)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (1, 16, (3, 3), (1, 1), (1, 1)), (16, 32, (3, 3), (1, 1), (1, 1)), (32, 32, (3, 3), (1, 1), (1, 1))]
    assert (fc.in_features, fc.out_features) == (288, 100)  # table 3: reshape (3, 3, 32) -> 288 -> 100
    n = sum(c.weight.numel() + c.bias.numel() for c in convs) + sum(2 * b.num_features for b in bns) + linear(288, 100)
    assert sum(p.numel() for p in critic.parameters()) == n
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    h = x
    for conv, bn in zip(convs, bns):  # conv -> batch norm (batch statistics) -> ReLU -> 2x2 max-pool
        h = F.conv2d(h, conv.weight, conv.bias, padding=1)
        h = F.batch_norm(h, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
        h = F.max_pool2d(F.relu(h), 2)
    assert h.shape == (6, 32, 3, 3)
    magnitude = F.linear(h.flatten(1).abs(), fc.weight.abs(), fc.bias.abs())
    assert_close(critic(x), F.linear(h.flatten(1), fc.weight, fc.bias), dtype=torch.float32, magnitude=magnitude,
                 terms=288)


def test_convnet_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 16 pixels"):
        N.build("convnet", "critic", shape=(1, 8, 8), channels=[4, 4, 4, 4])
    with pytest.raises(ValueError, match="positive ints"):
        N.build("convnet", "critic", shape=(1, 28, 28), channels=[])
    with pytest.raises(ValueError, match="valid: none, batch, layer"):
        N.build("convnet", "critic", shape=(1, 28, 28), norm="group")
    with pytest.raises(ValueError, match="no generator"):
        N.build("convnet", "generator", shape=(1, 28, 28), z_dim=4)
