"""Every registered objective declares what the loop and the speed switches need to know, and each
declaration is checked here against what its losses actually do (not against the declaration)."""

from __future__ import annotations

import pytest
from probes import bf16_losses_are_float32, measured_double_backward, measured_generator_reads_real

import igm.objectives as O
from igm.objectives import Objective
from igm.train import speed

FLAGS = ("double_backward", "bf16_forwards", "generator_reads_real", "speed_note")
# every objective at its defaults, plus the hyperparameters that change a need
CASES = [(n, {}) for n in O.names()] + [("mmd-gan-gp", {"gp_weight": 0.0})]


def _build(name, hp):
    return O.get(name, **({"ae_weight": 0.0} if name == "mmd-gan" else {}), **hp)


@pytest.mark.parametrize("name", O.names())
def test_every_need_is_declared_by_the_objective_itself(name):
    """Not inherited from Objective's conservative defaults: a registered objective says each one."""
    cls = O.registry.get(name)
    for flag in FLAGS:
        owners = [k for k in cls.__mro__ if flag in vars(k)]
        assert owners and owners[0] is not Objective, f"{name} does not declare {flag}"
    assert _build(name, {}).speed_note.strip(), name


@pytest.mark.parametrize("name,hp", CASES)
def test_double_backward_is_what_the_losses_do(name, hp):
    """Through a layer whose backward refuses a graph, a step raises exactly when the objective
    declares a double backward (critic or generator step)."""
    obj = _build(name, hp)
    assert measured_double_backward(obj) == obj.double_backward
    assert speed.objective_policy(obj).double_backward == obj.double_backward


@pytest.mark.parametrize("name,hp", CASES)
def test_generator_reads_real_is_what_the_loss_does(name, hp):
    """The generator loss changes with the real batch exactly when the objective says it reads it."""
    obj = _build(name, hp)
    assert measured_generator_reads_real(obj) == obj.generator_reads_real


@pytest.mark.parametrize("name", [n for n in O.names() if O.get(n).bf16_forwards])
def test_bf16_forwards_leave_the_losses_in_float32(name):
    """For the objectives that declare bf16 forwards safe: under bf16 critic forwards (output layer
    in float32) every loss is float32 and finite."""
    assert bf16_losses_are_float32(_build(name, {}))
