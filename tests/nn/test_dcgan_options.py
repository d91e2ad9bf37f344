"""The DCGAN generator's norm option: the WGAN paper's no-batch-norm, constant-width generator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import igm.nn as N
from igm.nn import DCGANGenerator


def test_default_generator_is_unchanged_by_the_option():
    torch.manual_seed(0)
    default = DCGANGenerator((1, 28, 28), z_dim=16, base_channels=8)
    torch.manual_seed(0)
    batch = DCGANGenerator((1, 28, 28), z_dim=16, base_channels=8, norm="batch")
    assert list(default.state_dict()) == list(batch.state_dict())  # old checkpoints still load
    z = torch.randn(5, 16)
    assert torch.equal(default.eval()(z), batch.eval()(z))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in default.modules()) == 3  # input layer + 2 of 3 stages


def test_no_batch_norm_constant_width_generator():
    g = N.build("dcgan", "generator", shape=(1, 28, 28), z_dim=16, norm="none", channels=[12, 12, 12])
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in g.modules())
    convs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.in_channels for m in convs] == [12, 12, 12] and convs[-1].out_channels == 1
    z = torch.randn(4, 16)
    out = g(z)
    assert out.shape == (4, 1, 28, 28) and out.abs().max() <= 1
    # without batch norm every sample is a function of its own latent alone, in training mode too
    g.train()
    assert torch.allclose(g(z)[1:], g(z[1:]), atol=1e-6)


def test_layer_norm_and_bad_norm():
    g = DCGANGenerator((3, 32, 32), z_dim=8, base_channels=4, norm="layer")
    assert any(isinstance(m, nn.GroupNorm) for m in g.modules())
    assert g(torch.randn(2, 8)).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="unknown norm"):
        DCGANGenerator((3, 32, 32), norm="instance")
