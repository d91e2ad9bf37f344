"""Renamed hyperparameters: each objective's ``lam`` is now named after what it weighs, and the old
spelling is a deprecated alias for one release (``aliases`` on the class, read by the registry)."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch

import igm.objectives as O
from igm.cli import parse_objective_spec
from igm.objectives.base import Objective, register, registry

RENAMED = [  # (objective, old, new, a non-default value)
    ("wgan-gp", "lam", "gp_weight", 0.5),
    ("lgan", "lam", "gp_weight", 0.5),
    ("smmd", "lam", "rkhs_weight", 0.5),
    ("swgan", "lam", "rkhs_weight", 0.5),
    ("gcmmd", "lam", "rkhs_weight", 0.5),
]


def _losses(obj):
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    real = torch.randn(8, 2, dtype=torch.float64)
    fake = torch.randn(8, 2, dtype=torch.float64) + 1.0
    torch.manual_seed(1)  # the interpolates' ε
    return obj.critic_loss(critic, real, fake)[0].item()


@pytest.mark.parametrize("name, old, new, value", RENAMED)
def test_the_new_name_is_the_field(name, old, new, value):
    cls = registry.get(name)
    assert cls.aliases == {old: new}
    fields = {f.name for f in dataclasses.fields(cls)}
    assert new in fields and old not in fields
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new spelling warns nowhere
        obj = O.get(name, **{new: value})
        assert getattr(obj, new) == value and obj.hyperparameters()[new] == value
        assert cls(**{new: value}) == obj


@pytest.mark.parametrize("name, old, new, value", RENAMED)
def test_the_old_name_warns_and_gives_the_same_objective(name, old, new, value):
    want = O.get(name, **{new: value})
    with pytest.warns(DeprecationWarning, match=f"objective '{name}': hyperparameter '{old}' is deprecated.*write '{new}'") as rec:
        got = O.get(name, **{old: value})
    assert len(rec) == 1 and rec[0].filename == __file__  # attributed to the caller's line, not igm's
    assert got == want and got.hyperparameters() == want.hyperparameters()
    assert _losses(got) == _losses(want)
    with pytest.warns(DeprecationWarning, match=f"write '{new}'"):
        direct = registry.get(name)(**{old: value})  # a direct constructor call too
    assert direct == want


@pytest.mark.parametrize("name, old, new, value", RENAMED)
def test_both_spellings_is_an_error(name, old, new, value):
    message = f"objective '{name}': '{old}' is the deprecated spelling of '{new}'; give only '{new}'"
    with pytest.raises(ValueError, match=message):
        O.get(name, **{old: value, new: value})
    with pytest.raises(ValueError, match=message):
        registry.get(name)(**{old: value, new: value})


def test_a_bad_value_under_the_old_name_names_both_spellings():
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError) as err:
        O.get("wgan-gp", lam=-1.0)
    assert str(err.value) == (
        "gp_weight must be a non-negative finite number, in [0, inf); got -1.0 "
        "(given as 'lam', the deprecated spelling of 'gp_weight')"
    )


def test_a_cli_spec_with_the_old_name():
    label, name, hp = parse_objective_spec("paper=smmd:grad_weight=1,lam=1")
    with pytest.warns(DeprecationWarning, match="write 'rkhs_weight'"):
        obj = O.get(name, **hp)
    assert obj == O.get("smmd", grad_weight=1, rkhs_weight=1)


def test_the_registry_checks_the_alias_mapping():
    @dataclasses.dataclass
    class Bad(Objective):
        aliases = {"lam": "weight"}  # no such field
        gp_weight: float = 1.0

        def critic_loss(self, critic, real, fake):
            raise NotImplementedError

        def generator_loss(self, critic, real, fake):
            raise NotImplementedError

    with pytest.raises(TypeError, match="alias 'lam' → 'weight'"):
        register("bad-alias-test")(Bad)
    assert "bad-alias-test" not in registry
