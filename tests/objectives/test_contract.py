"""The contract every registered objective keeps (in the spirit of TF-GAN's shared loss tests)."""

import dataclasses

import pytest
import torch
from torch import nn

import igm.objectives as O

NAMES = O.names()
EXPECTED = {"gan", "wgan", "wgan-gp", "mmd-net", "mmd-gan", "mmd-gan-gp", "smmd", "swgan", "sobolev", "gram", "lgan", "gcmmd"}


class ToyCritic(nn.Module):
    """A small MLP critic with a decoder (for mmd-gan's autoencoder term)."""

    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(dim_in, 16), nn.Tanh(), nn.Linear(16, dim_out))
        self.dec = nn.Linear(dim_out, dim_in)

    def forward(self, x):
        return self.enc(x)

    def decode(self, f):
        return self.dec(f)


def _setup(name, dtype, seed=0, shape=(2, 3)):
    torch.manual_seed(seed)
    obj = O.get(name)
    dim = int(torch.tensor(shape).prod())
    out = 1 if obj.scalar_critic else 3
    critic = ToyCritic(dim, out).to(dtype)
    gen = nn.Linear(4, dim).to(dtype)
    real = torch.randn(8, *shape, dtype=dtype)
    z = torch.randn(8, 4, dtype=dtype)
    return obj, critic, gen, real, z


def _fake(gen, z, real):
    return gen(z).reshape(real.shape)


def test_every_paper_objective_is_registered():
    assert EXPECTED <= set(NAMES), f"missing: {sorted(EXPECTED - set(NAMES))}"


def _check_loss(loss, stats):
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0
    assert torch.isfinite(loss)
    assert isinstance(stats, dict)
    for key, value in stats.items():
        assert isinstance(key, str)
        assert isinstance(value, torch.Tensor) and value.dim() == 0, key
        assert not value.requires_grad, f"stat {key} is not detached"


def _grads(module):
    return [p.grad for p in module.parameters()]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_critic_loss_reaches_critic_only(name, dtype):
    obj, critic, gen, real, z = _setup(name, dtype)
    if not obj.uses_critic:
        pytest.skip(f"{name} has no critic")
    loss, stats = obj.critic_loss(critic, real, _fake(gen, z, real).detach())
    _check_loss(loss, stats)
    assert loss.dtype == dtype
    loss.backward()
    grads = [g for g in _grads(critic.enc) if g is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads), "no gradient reached the critic"
    assert all(torch.isfinite(g).all() for g in grads)
    assert all(g is None for g in _grads(gen))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_generator_loss_reaches_generator(name, dtype):
    obj, critic, gen, real, z = _setup(name, dtype)
    loss, stats = obj.generator_loss(critic if obj.uses_critic else None, real, _fake(gen, z, real))
    _check_loss(loss, stats)
    assert loss.dtype == dtype
    loss.backward()
    grads = _grads(gen)
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", [n for n in NAMES if O.registry.get(n).simultaneous])
def test_simultaneous_joint_loss(name):
    obj, critic, gen, real, z = _setup(name, torch.float64)
    c_loss, g_loss, stats = obj.joint_loss(critic, real, _fake(gen, z, real))
    _check_loss(c_loss, stats)
    _check_loss(g_loss, {})
    c_grads = torch.autograd.grad(c_loss, list(critic.enc.parameters()), retain_graph=True, allow_unused=True)
    g_grads = torch.autograd.grad(g_loss, list(gen.parameters()))
    assert any(g is not None and float(g.abs().sum()) > 0 for g in c_grads)
    assert all(float(g.abs().sum()) > 0 for g in g_grads)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_seed(name):
    def run():
        obj, critic, gen, real, z = _setup(name, torch.float64, seed=3)
        out = []
        if obj.uses_critic:
            torch.manual_seed(11)
            loss, stats = obj.critic_loss(critic, real, _fake(gen, z, real).detach())
            out.append((loss.item(), {k: v.item() for k, v in stats.items()}))
        torch.manual_seed(12)
        loss, stats = obj.generator_loss(critic if obj.uses_critic else None, real, _fake(gen, z, real))
        out.append((loss.item(), {k: v.item() for k, v in stats.items()}))
        return out

    assert run() == run()


@pytest.mark.parametrize("name", NAMES)
def test_unknown_hyperparameter_rejected(name):
    with pytest.raises(ValueError, match="unknown hyperparameter 'definitely_not_a_field'"):
        O.get(name, definitely_not_a_field=1)


@pytest.mark.parametrize("name", NAMES)
def test_hyperparameters_round_trip_and_state(name):
    obj = O.get(name)
    again = O.get(name, **obj.hyperparameters())
    assert again.hyperparameters() == obj.hyperparameters()
    state = obj.state_dict()
    fresh = O.get(name)
    fresh.load_state_dict(state)
    assert set(fresh.state_dict()) == set(state)
    assert dataclasses.is_dataclass(obj)


@pytest.mark.parametrize("name", NAMES)
def test_bad_batches_rejected(name):
    obj, critic, gen, real, z = _setup(name, torch.float64)
    c = critic if obj.uses_critic else None
    fake = _fake(gen, z, real)
    with pytest.raises(ValueError, match="per-sample shapes"):
        obj.generator_loss(c, real, fake.reshape(8, -1)[:, :5])
    with pytest.raises(ValueError, match="dtypes"):
        obj.generator_loss(c, real.float(), fake)
    with pytest.raises(ValueError, match="at least"):
        obj.generator_loss(c, real[:1], fake[:1])
    bad = real.clone()
    bad[0, 0, 0] = float("nan")
    checked = O.get(name, check_finite=True)
    with pytest.raises(ValueError, match="non-finite"):
        checked.generator_loss(c, bad, fake)


def test_unknown_objective_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: .*smmd"):
        O.get("smmmd")


def test_registration_is_validated():
    with pytest.raises(TypeError, match="dataclass"):
        O.register("not-an-objective")(int)

    @dataclasses.dataclass
    class Incomplete(O.Objective):
        pass

    with pytest.raises(TypeError, match="must implement critic_loss"):
        O.register("incomplete")(Incomplete)
    assert "incomplete" not in O.names()
