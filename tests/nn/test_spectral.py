"""Tests for igm.nn.spectral, checked against numpy / torch SVDs and hand-derived gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerance import assert_close
from torch import nn

from igm.nn.spectral import (
    LayerSpectrum,
    ScaledSpectralNorm,
    apply_spectral,
    layer_spectra,
    spectral_parametrize,
)

TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _matrix(module: nn.Module, weight: torch.Tensor | None = None) -> np.ndarray:
    """Weight as a float64 (out, rest) matrix; ConvTranspose weights are (in, out, ...)."""
    w = (module.weight if weight is None else weight).detach().double().numpy()
    if isinstance(module, TRANSPOSED):
        w = np.moveaxis(w, 1, 0)
    return w.reshape(w.shape[0], -1)


def _svals(module: nn.Module) -> np.ndarray:
    """Exact singular values of the weight the module uses (read without a power iteration)."""
    was_training = module.training
    module.eval()
    try:
        return np.linalg.svd(_matrix(module), compute_uv=False)
    finally:
        module.train(was_training)


def _param(module: nn.Module) -> ScaledSpectralNorm:
    return module.parametrizations.weight[0]


def _original(module: nn.Module) -> torch.Tensor:
    return module.parametrizations.weight.original


def _with_spectrum(module: nn.Module, top: tuple[float, ...], seed: int = 0) -> None:
    """Overwrite module.weight with a matrix whose singular values are ``top`` then 0.5s."""
    rng = np.random.default_rng(seed)
    w = module.weight
    out_dim = 1 if isinstance(module, TRANSPOSED) else 0
    rows = w.shape[out_dim]
    cols = w.numel() // rows
    k = min(rows, cols)
    q1, _ = np.linalg.qr(rng.standard_normal((rows, k)))
    q2, _ = np.linalg.qr(rng.standard_normal((cols, k)))
    s = np.full(k, 0.5)
    s[: len(top)] = top
    mat = (q1 * s) @ q2.T
    shape = (rows,) + tuple(d for i, d in enumerate(w.shape) if i != out_dim)
    full = np.moveaxis(mat.reshape(shape), 0, out_dim)
    with torch.no_grad():
        w.copy_(torch.from_numpy(np.ascontiguousarray(full)))


LAYERS = {
    "linear": (lambda: nn.Linear(12, 7), (5, 12)),
    "conv2d": (lambda: nn.Conv2d(3, 5, 3), (2, 3, 6, 6)),
    "convtranspose2d": (lambda: nn.ConvTranspose2d(4, 6, 3), (2, 4, 5, 5)),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_power_iteration_converges_to_unit_top_singular_value(kind: str) -> None:
    torch.manual_seed(0)
    make, in_shape = LAYERS[kind]
    layer = make()
    _with_spectrum(layer, (3.0, 1.5))  # gap 2: power iteration converges fast
    spectral_parametrize(layer, init="power", n_init_iterations=0)  # random u, v
    assert abs(_svals(layer)[0] - 1.0) > 1e-3  # control: not converged yet
    layer(torch.randn(in_shape))  # a real forward pass runs the parametrisation
    for _ in range(30):  # each read of .weight in train mode is one power iteration
        layer.weight
    assert _svals(layer)[0] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_exact_init_gives_unit_top_singular_value_from_first_step(kind: str) -> None:
    torch.manual_seed(1)
    layer = spectral_parametrize(LAYERS[kind][0]())  # default random init: tiny top gap
    assert _svals(layer)[0] == pytest.approx(1.0, abs=1e-4)


def test_sigma_hat_after_registration_matches_true_sigma() -> None:
    torch.manual_seed(2)
    lin = nn.Linear(96, 64)  # 15 power iterations from random vectors are ~1e-2 off here
    true_sigma = np.linalg.svd(lin.weight.detach().double().numpy(), compute_uv=False)[0]
    spectral_parametrize(lin)
    p = _param(lin)
    u, v, w = (t.detach().double().numpy() for t in (p._u, p._v, _original(lin)))
    assert np.linalg.norm(u) == pytest.approx(1.0) and np.linalg.norm(v) == pytest.approx(1.0)
    assert abs(u @ w @ v - true_sigma) / true_sigma < 1e-3


def test_gradients_reach_weight_and_scale_with_correct_values() -> None:
    torch.manual_seed(3)
    lin = spectral_parametrize(nn.Linear(5, 3))
    with torch.no_grad():
        _param(lin).scale.fill_(1.3)
    x, g = torch.randn(7, 5), torch.randn(7, 3)
    (lin(x) * g).sum().backward()
    p = _param(lin)
    s, w = 1.3, _original(lin).detach().double()
    u, v = p._u.double(), p._v.double()  # vectors used in this forward
    sigma = u @ w @ v
    grad_eff = (g.T @ x).double()  # dL / dW_bar
    w_bar = s * w / sigma
    assert p.scale.grad is not None and _original(lin).grad is not None
    # a float32 sum of 15 terms whose magnitudes add up to ~25x the result: tolerance.bound, not rel=1e-5
    terms = grad_eff * w_bar / s
    assert_close(p.scale.grad, terms.sum(), dtype=torch.float32, magnitude=terms.abs().sum(), terms=terms.numel())
    expected = (s / sigma) * (grad_eff - (grad_eff * w).sum() / sigma * torch.outer(u, v))
    np.testing.assert_allclose(_original(lin).grad.double().numpy(), expected.numpy(), rtol=1e-4, atol=1e-6)
    assert not p._u.requires_grad and not p._v.requires_grad


def test_fixed_scale_is_a_buffer_not_a_parameter() -> None:
    lin = spectral_parametrize(nn.Linear(4, 3), learn_scale=False)
    names = {n for n, _ in lin.named_parameters()}
    assert not any(n.endswith("scale") for n in names)
    assert "parametrizations.weight.0.scale" in dict(lin.named_buffers())
    assert _param(lin).scale.item() == 1.0 and not _param(lin).scale.requires_grad
    learned = spectral_parametrize(nn.Linear(4, 3), learn_scale=True)
    assert "parametrizations.weight.0.scale" in dict(learned.named_parameters())


def test_scale_two_doubles_the_spectrum() -> None:
    torch.manual_seed(4)
    lin = spectral_parametrize(nn.Linear(9, 6))
    before = _svals(lin)
    with torch.no_grad():
        _param(lin).scale.fill_(2.0)
    after = _svals(lin)
    assert after[0] == pytest.approx(2.0, abs=1e-4)
    np.testing.assert_allclose(after, 2.0 * before, rtol=1e-6)


def test_eval_mode_does_not_run_power_iteration() -> None:
    torch.manual_seed(5)
    lin = spectral_parametrize(nn.Linear(8, 6))
    with torch.no_grad():  # move the weight so a power iteration would move u
        _original(lin).add_(torch.randn_like(_original(lin)))
    p, x = _param(lin), torch.randn(3, 8)
    u0, v0 = p._u.clone(), p._v.clone()
    lin.eval()
    lin(x)
    lin(x)
    assert torch.equal(p._u, u0) and torch.equal(p._v, v0)
    lin.train()
    lin(x)
    assert not torch.allclose(p._u, u0, atol=1e-4)  # control: training does update u


def _net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2))


def test_state_dict_round_trip_reproduces_outputs() -> None:
    torch.manual_seed(6)
    model = apply_spectral(_net())
    x = torch.randn(5, 3, 6, 6)
    for _ in range(3):
        model(x)
    with torch.no_grad():
        _param(model[3]).scale.fill_(0.7)
    state = model.state_dict()
    for idx in ("0", "3"):
        for key in ("_u", "_v", "scale"):
            assert f"{idx}.parametrizations.weight.0.{key}" in state
    torch.manual_seed(7)
    fresh = apply_spectral(_net())
    assert not torch.allclose(fresh(x), model(x))  # control: differs before loading
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh(x), model(x))  # train mode: same power iteration on both
    model.eval(), fresh.eval()
    assert torch.equal(fresh(x), model(x))


def test_layer_spectra_matches_numpy_svd() -> None:
    torch.manual_seed(8)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 5, 2), nn.Flatten(), nn.Linear(8, 3))
    spectral_parametrize(model[0])
    spectral_parametrize(model[1], learn_scale=False)
    with torch.no_grad():
        _param(model[0]).scale.fill_(1.7)
        model[3].weight[2].zero_()  # plain layer, rank deficient
    u0 = _param(model[0])._u.clone()
    spectra = layer_spectra(model)
    assert set(spectra) == {"0", "1"}
    assert torch.equal(_param(model[0])._u, u0)  # no side effect in train mode
    full = layer_spectra(model, include_plain=True)
    assert set(full) == {"0", "1", "3"}
    for name, scale in (("0", 1.7), ("1", 1.0), ("3", 1.0)):
        spec = full[name]
        assert isinstance(spec, LayerSpectrum)
        expected = _svals(model[int(name)])
        assert spec.singular_values.dtype == torch.float64 and not spec.singular_values.requires_grad
        np.testing.assert_allclose(spec.singular_values.numpy(), expected, rtol=1e-6, atol=1e-9)
        assert spec.sigma_max == pytest.approx(expected[0]) and spec.sigma_min == pytest.approx(expected[-1], abs=1e-9)
        if name != "3":
            assert spec.condition_number == pytest.approx(spec.sigma_max / spec.sigma_min)
        assert spec.scale == pytest.approx(scale)
    assert full["0"].sigma_max == pytest.approx(1.7, abs=1e-4)
    # rank collapse: 0 up to the LAPACK build's rounding (exactly 0 with some, ~1e-17 with others)
    assert full["3"].sigma_min <= 1e-12 * full["3"].sigma_max and full["3"].condition_number == float("inf")


def test_module_without_weight_raises_value_error() -> None:
    with pytest.raises(ValueError, match="ReLU has no tensor parameter 'weight'"):
        spectral_parametrize(nn.ReLU())
    with pytest.raises(ValueError, match="no tensor parameter 'kernel'"):
        spectral_parametrize(nn.Linear(3, 2), name="kernel")
    with pytest.raises(TypeError, match="Embedding"):
        spectral_parametrize(nn.Embedding(10, 4))


def test_double_registration_rejected_and_apply_spectral_skips() -> None:
    lin = spectral_parametrize(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="already parametrised"):
        spectral_parametrize(lin)
    model = nn.Sequential(lin, nn.Linear(2, 2))
    apply_spectral(model)
    apply_spectral(model)
    assert len(model[0].parametrizations.weight) == 1 and len(model[1].parametrizations.weight) == 1


def test_power_init_is_seeded_by_global_rng() -> None:
    weight = torch.randn(6, 10)
    us = []
    for seed in (11, 11, 12):
        torch.manual_seed(seed)
        us.append(ScaledSpectralNorm(weight, init="power", n_init_iterations=2)._u)
    assert torch.equal(us[0], us[1]) and not torch.allclose(us[0], us[2])
