"""SMMD and SWGAN against the DiracGAN closed forms of SPEC §5 (value and gradients in θ and ψ)."""

import math

import pytest
import torch

import igm.objectives as O
from igm.analysis import dirac


def smmd_closed_form(theta, psi, lam, grad_weight):
    """SMMD² = 2(1 − exp(−ψ²θ²/2)) / (λ + 1 + w ψ²) and its partial derivatives in θ and ψ."""
    e = math.exp(-(psi**2) * theta**2 / 2)
    num, den = 2 * (1 - e), lam + 1 + grad_weight * psi**2
    d_theta = 2 * e * psi**2 * theta / den
    d_psi = (2 * e * psi * theta**2 * den - num * 2 * grad_weight * psi) / den**2
    return num / den, d_theta, d_psi


@pytest.mark.parametrize("theta,psi", [(1.0, 1.0), (0.3, 2.0), (-1.5, 0.4), (2.0, -0.7)])
@pytest.mark.parametrize("lam,grad_weight", [(0.0, 10.0), (1.0, 1.0), (0.5, 1.0)])
def test_smmd_dirac_value_and_gradients(theta, psi, lam, grad_weight):
    obj = O.get("smmd", lam=lam, grad_weight=grad_weight)
    value, d_theta, d_psi = smmd_closed_form(theta, psi, lam, grad_weight)
    out = dirac.losses(obj, theta, psi)
    assert out["generator_loss"] == pytest.approx(value, rel=1e-10, abs=1e-14)
    assert out["critic_loss"] == pytest.approx(-value, rel=1e-10, abs=1e-14)
    assert out["dgen_dtheta"] == pytest.approx(d_theta, rel=1e-9, abs=1e-13)
    # the critic minimises −SMMD², so its gradient in ψ is −∂_ψ SMMD²
    assert out["dcritic_dpsi"] == pytest.approx(-d_psi, rel=1e-9, abs=1e-13)


def test_plain_mmd_is_smmd_without_gradient_term():
    theta, psi = 0.8, 1.3
    out = dirac.losses(O.get("smmd", grad_weight=0.0), theta, psi)
    assert out["generator_loss"] == pytest.approx(2 * (1 - math.exp(-(psi * theta) ** 2 / 2)), rel=1e-12)


@pytest.mark.parametrize("measure", ["interpolates", "mixture"])
def test_smmd_dirac_other_measures(measure):
    # φ(x) = ψx has gradient ψ everywhere, so the scale is the same for every μ; but with μ
    # depending on fake the generator differentiates through it — still constant here.
    theta, psi = 0.7, 1.1
    value, d_theta, _ = smmd_closed_form(theta, psi, 1.0, 1.0)
    out = dirac.losses(O.get("smmd", lam=1.0, grad_weight=1.0, measure=measure), theta, psi)
    assert out["generator_loss"] == pytest.approx(value, rel=1e-10)
    assert out["dgen_dtheta"] == pytest.approx(d_theta, rel=1e-9)


def test_smmd_scale_matches_authors_code_on_nonlinear_critic():
    """scale = 1 / (1 + 10 E_P ‖∇φ‖²) with the per-sample gradient norm over all input dims."""
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    critic = critic.double()
    real, fake = torch.randn(6, 3, 2, 2, dtype=torch.float64), torch.randn(6, 3, 2, 2, dtype=torch.float64)
    grads = []
    for x in real:  # independent: one sample at a time, full Jacobian by torch.autograd.functional
        jac = torch.autograd.functional.jacobian(lambda t: critic(t[None])[0, 0], x)
        grads.append(float((jac**2).sum()))
    expected_scale = 1.0 / (1.0 + 10.0 * sum(grads) / len(grads))
    _, stats = O.get("smmd").critic_loss(critic, real, fake)
    assert float(stats["scale"]) == pytest.approx(expected_scale, rel=1e-10)


def test_swgan_dirac_closed_form():
    """Linear kernel on φ = ψx: gap = E φ(x) − E φ(y) = −ψθ, scale = 1/(1 + 10(E_P φ² + ψ²)) = 1/(1 + 10ψ²)."""
    theta, psi = 0.9, 0.6
    out = dirac.losses(O.get("swgan"), theta, psi)
    scale = 1 / (1 + 10 * psi**2)
    assert out["generator_loss"] == pytest.approx(-psi * theta * math.sqrt(scale), rel=1e-12)
    assert out["dgen_dtheta"] == pytest.approx(-psi * math.sqrt(scale), rel=1e-12)
    # ∂_ψ [ψθ sqrt(scale)] for the critic loss −gap·sqrt(scale) = ψθ / sqrt(1 + 10ψ²)
    d_psi = theta / math.sqrt(1 + 10 * psi**2) - psi * theta * 10 * psi / (1 + 10 * psi**2) ** 1.5
    assert out["dcritic_dpsi"] == pytest.approx(d_psi, rel=1e-10)


def test_projection_jacobian_is_unbiased_and_exact_for_scalar():
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 4)).double()
    real, fake = torch.randn(10, 5, dtype=torch.float64), torch.randn(10, 5, dtype=torch.float64)
    exact = float(O.get("smmd", jacobian="exact").critic_loss(net, real, fake)[1]["jacobian"])
    reference = sum(float((torch.autograd.functional.jacobian(net, x) ** 2).sum()) for x in real) / 10
    assert exact == pytest.approx(reference, rel=1e-10)
    est = [float(O.get("smmd", jacobian="projection").critic_loss(net, real, fake)[1]["jacobian"]) for _ in range(400)]
    mean, se = sum(est) / len(est), torch.tensor(est).std().item() / math.sqrt(len(est))
    assert abs(mean - exact) < 4 * se


def test_smmd_rejects_kernel_without_jacobian_weight():
    with pytest.raises(ValueError, match="Jacobian weight"):
        O.get("smmd", kernel="polynomial")


@pytest.mark.parametrize("measure", ["target", "mixture", "interpolates"])
def test_forward_jacobian_gives_the_exact_losses_and_gradients(measure):
    """jacobian="forward" (D forward-mode products) and "exact" (d backward passes) are the same
    computation reordered: critic and generator losses and gradients agree to float64 rounding."""
    torch.manual_seed(4)
    critic = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.LeakyReLU(0.2), torch.nn.Linear(16, 16)).double()
    gen = torch.nn.Linear(3, 2).double()
    real, z = torch.randn(12, 2, dtype=torch.float64), torch.randn(12, 3, dtype=torch.float64)
    out = {}
    for method in ("exact", "forward"):
        obj = O.get("smmd", jacobian=method, measure=measure)
        torch.manual_seed(5)  # the same interpolates
        c_loss, c_stats = obj.critic_loss(critic, real, gen(z).detach())
        c_grads = torch.autograd.grad(c_loss, list(critic.parameters()))
        torch.manual_seed(5)
        g_loss, _ = obj.generator_loss(critic, real, gen(z))
        g_grads = torch.autograd.grad(g_loss, list(gen.parameters()))
        out[method] = (c_loss, c_stats["jacobian"], g_loss, c_grads, g_grads)
    a, b = out["exact"], out["forward"]
    tol = 1e-12  # ~1e4·eps₆₄ on O(1) quantities of a few hundred operations
    for x, y in zip(a[:3], b[:3]):
        assert float(x) == pytest.approx(float(y), rel=tol, abs=tol)
    for xs, ys in zip(a[3:], b[3:]):
        for x, y in zip(xs, ys):
            assert torch.allclose(x, y, rtol=tol, atol=tol)


def test_unknown_probe_is_rejected():
    with pytest.raises(ValueError, match="probe"):
        O.get("smmd", jacobian="projection", probe="uniform")
