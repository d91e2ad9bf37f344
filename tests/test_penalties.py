"""Jacobian norms of igm.penalties against full Jacobians from torch.autograd.functional, one sample
at a time (an independent computation), and the Hutchinson probes' variance against its closed form."""

import math

import pytest
import torch
from torch import nn

from igm.nn.spectral import apply_spectral
from igm.penalties import forward_jacobian_sqnorm, jacobian_sqnorm

EPS64 = torch.finfo(torch.float64).eps


def _net(d_in: int, d_out: int, spectral: bool = False) -> nn.Module:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(d_in, 9), nn.LeakyReLU(0.2), nn.Linear(9, 9), nn.Tanh(), nn.Linear(9, d_out)).double()
    return apply_spectral(net) if spectral else net


def _reference(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """‖J(x_b)‖²_F per sample from the full d × D Jacobian of each sample on its own."""
    return torch.stack([(torch.autograd.functional.jacobian(lambda t: net(t[None])[0], xb) ** 2).sum() for xb in x])


@pytest.mark.parametrize("d_in,d_out", [(2, 16), (5, 3), (4, 1)])
def test_exact_and_forward_match_full_jacobian(d_in, d_out):
    net = _net(d_in, d_out)
    x = torch.randn(7, d_in, dtype=torch.float64)
    ref = _reference(net, x)
    xi = x.clone().requires_grad_(True)
    exact = jacobian_sqnorm(net(xi), xi, method="exact")
    feats, forward = forward_jacobian_sqnorm(net, x)
    # a few dozen float64 operations per entry: agreement to a small multiple of eps
    tol = 1e3 * EPS64 * float(ref.max())
    assert torch.allclose(exact, ref, rtol=0, atol=tol)
    assert torch.allclose(forward, ref, rtol=0, atol=tol)
    assert torch.allclose(feats, net(x), rtol=0, atol=1e3 * EPS64)


def test_forward_norm_has_the_same_parameter_gradients_as_exact():
    """The forward-mode norm is differentiable in the network's parameters (for the critic's step)."""
    net = _net(2, 16)
    x = torch.randn(11, 2, dtype=torch.float64)
    params = list(net.parameters())
    xi = x.clone().requires_grad_(True)
    f = net(xi)
    g_exact = torch.autograd.grad((jacobian_sqnorm(f, xi).mean() + f.pow(2).mean()), params, allow_unused=True)
    f2, sq = forward_jacobian_sqnorm(net, x)
    g_fwd = torch.autograd.grad(sq.mean() + f2.pow(2).mean(), params, allow_unused=True)
    for a, b in zip(g_exact, g_fwd):
        if a is None:  # the last bias does not enter the Jacobian or ...
            assert b is None or float(b.abs().max()) == 0.0
            continue
        assert torch.allclose(a, b, rtol=0, atol=1e3 * EPS64 * float(a.abs().max() + 1))


def test_forward_norm_through_the_spectral_parametrisation():
    net = _net(2, 16, spectral=True)
    net.eval()  # frozen u, v: both routes see the same weights
    x = torch.randn(5, 2, dtype=torch.float64)
    _, forward = forward_jacobian_sqnorm(net, x)
    assert torch.allclose(forward, _reference(net, x), rtol=0, atol=1e4 * EPS64)


def test_forward_norm_keeps_the_graph_to_the_inputs():
    """A generator step with μ depending on the fakes differentiates the norm through the points."""
    net = _net(2, 4)
    x = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    _, forward = forward_jacobian_sqnorm(net, x)
    (g_fwd,) = torch.autograd.grad(forward.sum(), x)
    xi = x.detach().clone().requires_grad_(True)
    (g_ref,) = torch.autograd.grad(jacobian_sqnorm(net(xi), xi).sum(), xi)
    assert torch.allclose(g_fwd, g_ref, rtol=0, atol=1e3 * EPS64 * float(g_ref.abs().max() + 1))


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_projection_is_unbiased_with_the_closed_form_variance(probe):
    """Per sample, ‖vᵀJ‖² with A = JJᵀ has mean tr A and variance 2‖A‖²_F (Gaussian v) or
    2(‖A‖²_F − Σ A_ii²) (Rademacher v). Checked over 4000 draws for each of 3 samples."""
    net = _net(3, 5)
    x = torch.randn(3, 3, dtype=torch.float64)
    jac = torch.stack([torch.autograd.functional.jacobian(lambda t: net(t[None])[0], xb) for xb in x])  # (3, 5, 3)
    a = jac @ jac.transpose(1, 2)
    mean = a.diagonal(dim1=1, dim2=2).sum(1)
    var = 2 * a.pow(2).sum((1, 2))
    if probe == "rademacher":
        var = var - 2 * a.diagonal(dim1=1, dim2=2).pow(2).sum(1)
    draws = 4000
    xi = x.clone().requires_grad_(True)
    f = net(xi)
    g = torch.Generator().manual_seed(0)
    est = torch.stack([jacobian_sqnorm(f, xi, method="projection", probe=probe, create_graph=False, generator=g) for _ in range(draws)])
    # the sample mean is within 5 standard errors; the sample variance within 5 of its own standard
    # errors, using the 4th moment of the draws (a loose but honest bound)
    se_mean = (var / draws).sqrt()
    assert ((est.mean(0) - mean).abs() < 5 * se_mean).all(), (est.mean(0), mean)
    centred = est - est.mean(0)
    se_var = ((centred.pow(4).mean(0) - centred.pow(2).mean(0) ** 2) / draws).sqrt()
    assert ((est.var(0) - var).abs() < 5 * se_var).all(), (est.var(0), var)


def test_rademacher_beats_gaussian_on_a_diagonal_heavy_jacobian():
    """With JJᵀ diagonal the Rademacher estimate is exact and the Gaussian one is not."""
    lin = nn.Linear(4, 4, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)))
    x = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
    f = lin(x)
    g = torch.Generator().manual_seed(1)
    rad = jacobian_sqnorm(f, x, method="projection", probe="rademacher", generator=g)
    gau = jacobian_sqnorm(f, x, method="projection", probe="gaussian", generator=g)
    assert torch.allclose(rad, torch.full_like(rad, 30.0), rtol=0, atol=100 * EPS64)
    assert float((gau - 30.0).abs().max()) > 1.0


def test_jacobian_arguments_are_checked():
    net = _net(2, 3)
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    f = net(x)
    with pytest.raises(ValueError, match="probe"):
        jacobian_sqnorm(f, x, method="projection", probe="sobol")
    with pytest.raises(ValueError, match="projections"):
        jacobian_sqnorm(f, x, method="projection", projections=0)
    with pytest.raises(ValueError, match="unknown Jacobian method"):
        jacobian_sqnorm(f, x, method="forward")
    assert math.isfinite(float(jacobian_sqnorm(f, x).sum()))
