"""Every registered objective declares what the loop and the speed switches need to know, and each
declaration is checked here against what its losses actually do (not against the declaration)."""

from __future__ import annotations

import pytest
import torch
from probes import Once
from torch import nn

import igm.objectives as O
from igm.objectives import Objective
from igm.train import speed

FLAGS = ("double_backward", "bf16_forwards", "generator_reads_real", "speed_note")
# every objective at its defaults, plus the hyperparameters that change a need
CASES = [(n, {}) for n in O.names()] + [("mmd-gan-gp", {"gp_weight": 0.0})]


def _build(name, hp):
    return O.get(name, **({"ae_weight": 0.0} if name == "mmd-gan" else {}), **hp)


def _critic(obj, dim=2):
    out = 1 if obj.scalar_critic else 3
    return nn.Sequential(nn.Linear(dim, 16), nn.Tanh(), Once(), nn.Linear(16, out))


def _losses(obj, critic, real, fake):
    """(critic loss or None, generator loss) for either update style."""
    if obj.simultaneous:
        c_loss, g_loss, _ = obj.joint_loss(critic, real, fake)
        return c_loss, g_loss
    c_loss = obj.critic_loss(critic, real, fake)[0] if obj.uses_critic else None
    return c_loss, obj.generator_loss(critic, real, fake)[0]


@pytest.mark.parametrize("name", O.names())
def test_every_need_is_declared_by_the_objective_itself(name):
    """Not inherited from Objective's conservative defaults: a registered objective says each one."""
    cls = O.registry.get(name)
    for flag in FLAGS:
        owners = [k for k in cls.__mro__ if flag in vars(k)]
        assert owners and owners[0] is not Objective, f"{name} does not declare {flag}"
    assert _build(name, {}).speed_note.strip(), name


def _raises_double_backward(fn) -> bool:
    try:
        fn()
    except RuntimeError as err:
        if "double backward through this layer" in str(err):
            return True
        raise
    return False


@pytest.mark.parametrize("name,hp", CASES)
def test_double_backward_is_what_the_losses_do(name, hp):
    """Through a layer whose backward refuses a graph, a step raises exactly when the objective
    declares a double backward (critic or generator step)."""
    torch.manual_seed(0)
    obj = _build(name, hp)
    critic = _critic(obj)
    gen = nn.Linear(3, 2)
    real, z = torch.randn(8, 2), torch.randn(8, 3)

    def critic_step():
        c_loss, _ = _losses(obj, critic, real, gen(z).detach())
        if c_loss is not None:
            c_loss.backward()

    def generator_step():
        _, g_loss = _losses(obj, critic, real, gen(z))
        g_loss.backward()

    used = _raises_double_backward(critic_step) | _raises_double_backward(generator_step)
    assert used == obj.double_backward
    assert speed.objective_policy(obj).double_backward == obj.double_backward


@pytest.mark.parametrize("name,hp", CASES)
def test_generator_reads_real_is_what_the_loss_does(name, hp):
    """The generator loss changes with the real batch exactly when the objective says it reads it
    (the same fakes and the same torch seed for both calls, so only the real batch differs)."""
    obj = _build(name, hp)
    torch.manual_seed(1)
    critic = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1 if obj.scalar_critic else 3))
    fake = torch.randn(8, 2)
    values = []
    for seed in (2, 3):
        real = torch.randn(8, 2, generator=torch.Generator().manual_seed(seed))
        torch.manual_seed(4)  # the same interpolates, probes, ... in both calls
        values.append(_losses(obj, critic, real, fake)[1].detach())
    assert bool(values[0] != values[1]) == obj.generator_reads_real


@pytest.mark.parametrize("name", [n for n in O.names() if O.get(n).bf16_forwards])
def test_bf16_forwards_leave_the_losses_in_float32(name):
    """For the objectives that declare bf16 forwards safe: with the critic's forward under bf16
    autocast (its output layer in float32, as the speed layer runs it), every loss the objective
    computes is float32 and finite."""
    torch.manual_seed(0)
    obj = _build(name, {})
    net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1 if obj.scalar_critic else 3))
    speed.fp32_output_layer(net)
    critic = speed.SpeedForward(net, amp_dtype=torch.bfloat16, device_type="cpu")
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    for loss in _losses(obj, critic, real, fake):
        if loss is not None:
            assert loss.dtype == torch.float32 and torch.isfinite(loss), name
