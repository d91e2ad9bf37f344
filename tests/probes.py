"""Probes for tests that check what a loss does: a layer that refuses a double backward, and
measurements of an objective's needs (double backward, reading the real batch, bf16 forwards)."""

from __future__ import annotations

import torch
from torch import nn


class OnceDifferentiable(torch.autograd.Function):
    """Identity whose backward refuses to build a graph (``create_graph=True``, i.e. a gradient that
    is to be differentiated again). ``once_differentiable`` is not enough: batched input gradients
    (``is_grads_batched``, used for GCMMD's Jacobians) skip its check."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        if torch.is_grad_enabled():
            raise RuntimeError("double backward through this layer")
        return grad


class Once(nn.Module):
    """A layer that makes any double backward through it raise ``RuntimeError``."""

    def forward(self, x):
        return OnceDifferentiable.apply(x)


def _losses(obj, critic, real, fake):
    """(critic loss or None, generator loss) for either update style."""
    if obj.simultaneous:
        c_loss, g_loss, _ = obj.joint_loss(critic, real, fake)
        return c_loss, g_loss
    c_loss = obj.critic_loss(critic, real, fake)[0] if obj.uses_critic else None
    return c_loss, obj.generator_loss(critic, real, fake)[0]


def _raises_double_backward(fn) -> bool:
    try:
        fn()
    except RuntimeError as err:
        if "double backward through this layer" in str(err):
            return True
        raise
    return False


def measured_double_backward(obj) -> bool:
    """Whether a critic or generator step of ``obj`` differentiates the critic's input gradients:
    both steps run through a critic with a :class:`Once` layer, on 2-D points."""
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), Once(), nn.Linear(16, 1 if obj.scalar_critic else 3))
    gen = nn.Linear(3, 2)
    real, z = torch.randn(8, 2), torch.randn(8, 3)

    def critic_step():
        c_loss, _ = _losses(obj, critic, real, gen(z).detach())
        if c_loss is not None:
            c_loss.backward()

    def generator_step():
        _losses(obj, critic, real, gen(z))[1].backward()

    return _raises_double_backward(critic_step) | _raises_double_backward(generator_step)


def measured_generator_reads_real(obj) -> bool:
    """Whether the generator loss changes with the real batch (the same fakes and the same torch
    seed in both calls, so only the real batch differs)."""
    torch.manual_seed(1)
    critic = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1 if obj.scalar_critic else 3))
    fake = torch.randn(8, 2)
    values = []
    for seed in (2, 3):
        real = torch.randn(8, 2, generator=torch.Generator().manual_seed(seed))
        torch.manual_seed(4)  # the same interpolates, probes, ... in both calls
        values.append(_losses(obj, critic, real, fake)[1].detach())
    return bool(values[0] != values[1])


def bf16_losses_are_float32(obj) -> bool:
    """Whether, with the critic's forward under bf16 autocast (its output layer in float32, as the
    speed layer runs it), every loss ``obj`` computes is float32 and finite."""
    from igm.train import speed

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1 if obj.scalar_critic else 3))
    speed.fp32_output_layer(net)
    critic = speed.SpeedForward(net, amp_dtype=torch.bfloat16, device_type="cpu")
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    return all(loss.dtype == torch.float32 and bool(torch.isfinite(loss))
               for loss in _losses(obj, critic, real, fake) if loss is not None)
