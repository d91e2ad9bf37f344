"""docs/architecture.md, "How to add an objective", followed for a toy objective: a linear IPM with a
one-sided gradient penalty, defined here. Registering it is the only step needed for the library to
train it: nothing in igm.train names it, and the speed switches and the step read its declarations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from probes import bf16_losses_are_float32, measured_double_backward, measured_generator_reads_real

import igm.objectives as O
from igm.checks import non_negative
from igm.objectives.base import Objective, critic_features, scalar_output
from igm.penalties import gradient_penalty, input_gradient, interpolates
from igm.train import apply_overrides, build_run, presets, speed, train

NAME = "toy-ipm"


@dataclass
class ToyIPM(Objective):
    """critic: E f(y) − E f(x) + w·mean max(0, ‖∇f(x̂)‖ − 1)²; generator: −E f(y)."""

    double_backward: ClassVar[bool] = True
    bf16_forwards: ClassVar[bool] = True
    generator_reads_real: ClassVar[bool] = False
    speed_note: ClassVar[str] = "penalty norm in float32"
    scalar_critic = True

    penalty_weight: float = 1.0

    def __post_init__(self) -> None:
        self.penalty_weight = non_negative("penalty_weight", self.penalty_weight)

    def critic_loss(self, critic, real, fake):
        self._check(real, fake)
        f_real = scalar_output(critic_features(critic, real))
        f_fake = scalar_output(critic_features(critic, fake))
        x_hat = interpolates(real.detach(), fake.detach()).requires_grad_(True)
        grad = input_gradient(critic_features(critic, x_hat), x_hat)
        pen = gradient_penalty(grad, "lp")
        return f_fake.mean() - f_real.mean() + self.penalty_weight * pen, self._stats(penalty=pen)

    def generator_loss(self, critic, real, fake):
        self._check(real, fake)
        f_fake = scalar_output(critic_features(critic, fake))
        return -f_fake.mean(), self._stats(critic_fake=f_fake.mean())


@pytest.fixture
def registered():
    """Step 1 of the guide (steps 2-3 are the package's import line and a preset file): register,
    and leave the registry as it was afterwards."""
    O.register(NAME)(ToyIPM)
    try:
        yield ToyIPM
    finally:
        O.registry.unregister(NAME)


def test_the_toy_objective_is_found_by_name_and_keeps_the_contract(registered):
    obj = O.get(NAME, penalty_weight=0.5)
    assert NAME in O.names() and isinstance(obj, ToyIPM) and obj.penalty_weight == 0.5
    assert O.get(NAME).name == NAME  # register() names the class
    with pytest.raises(ValueError, match="penalty_weight"):
        O.get(NAME, penalty_weight=-1)
    # its declarations are what its losses do, measured as for the registered objectives
    assert measured_double_backward(obj) is True
    assert measured_generator_reads_real(obj) is False
    assert bf16_losses_are_float32(obj)
    policy = speed.objective_policy(obj)
    assert (policy.double_backward, policy.bf16, policy.note) == (True, True, "penalty norm in float32")


def test_the_toy_objective_trains_through_build_run(registered):
    """A short ring run with the toy objective: the loop, the step and the speed switches take it as
    they take the library's own, and compile=on leaves its critic eager (double backward)."""
    cfg = apply_overrides(presets.get("ring-wgan-gp"), [
        f"objective.name={NAME}", "objective.params={penalty_weight: 1.0}", "train.steps=20", "train.batch_size=32",
        "train.progress=false", "train.sample_every=0", "eval.every=0", "eval.samples=200",
    ])
    run = build_run(cfg, None)
    assert isinstance(run.objective, ToyIPM) and run.speed.double_backward
    compiled = speed.resolve(apply_overrides(cfg, ["train.compile=on"]), "cpu", run.objective, run.generator, run.critic)
    assert compiled.compile_generator and not compiled.compile_critic  # double backward: the critic stays eager
    before = [p.detach().clone() for p in run.generator.parameters()]
    logged = []
    summary = train(run, callbacks=[lambda event, step, values: logged.append(values) if event == "log" else None])
    assert summary["step"] == 20 and summary["rollbacks"] == 0
    assert any(not torch.equal(a, b) for a, b in zip(before, run.generator.parameters()))
    assert "critic/penalty" in logged[-1] and "generator/critic_fake" in logged[-1]
    assert all(torch.isfinite(torch.tensor(v["critic_loss"])) for v in logged)
