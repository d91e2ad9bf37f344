"""The DiracGAN figure's numbers: the fields, trajectories, critic curves and optimised distances."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from igm import kernels
from igm.analysis import dirac
from igm.analysis.diracgan.methods import METHODS, Method, build_objective
from igm.analysis.diracgan.options import DiracFigureOptions
from igm.objectives.base import Objective

__all__ = ["Grids", "field_on_grid", "trajectory", "best_psi", "critic_curve", "gcmmd_witness", "compute"]


def gcmmd_witness(critic: nn.Module, real: Tensor, fake: Tensor, measure_points: Tensor, kernel: kernels.Kernel,
                  lam: float) -> Callable[[Tensor], Tensor]:
    """The unnormalised optimal GCMMD critic f̃ = (D_μ + λI)⁻¹ η as a function of inputs t:
    :func:`igm.constrained.gcmmd_witness_critic` with μ on ``measure_points``."""
    from igm.constrained import gcmmd_witness_critic

    return gcmmd_witness_critic(critic, real, fake, kernel, lam, measure_points=measure_points)


def field_on_grid(name: str, opts: DiracFigureOptions, thetas: np.ndarray, psis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(U, V) of shape (len(psis), len(thetas)): U = −∂_θ L_G, V = −∂_ψ L_C at (thetas[j], psis[i])."""
    method, obj = METHODS[name], build_objective(name, opts)
    u = np.zeros((len(psis), len(thetas)))
    v = np.zeros_like(u)
    for i, psi in enumerate(psis):
        for j, theta in enumerate(thetas):
            torch.manual_seed(opts.seed)  # common random interpolates at every point
            u[i, j], v[i, j] = dirac.vector_field(obj, float(theta), float(psi), opts.batch, method.critic)
    return u, v


def trajectory(name: str, opts: DiracFigureOptions, theta: float, psi: float, steps: int) -> dict[str, Any]:
    torch.manual_seed(opts.seed)
    hist = dirac.train(build_objective(name, opts), theta=theta, psi=psi, steps=steps, lr=opts.lr,
                       batch=opts.batch, critic=METHODS[name].critic)
    return {"start": [theta, psi], "theta": [h.theta for h in hist], "psi": [h.psi for h in hist],
            "generator_loss": [h.generator_loss for h in hist]}


def _critic_value(obj: Objective, method: Method, theta: float, psi: float, batch: int, seed: int) -> float:
    """−critic loss at (θ, ψ): the critic's objective (a squared distance for the distance methods)."""
    torch.manual_seed(seed)
    critic, gen = method.critic(psi), dirac.DiracGenerator(theta)
    real = torch.zeros(batch, 1, dtype=torch.float64)
    loss, _ = obj.critic_loss(critic, real, gen(batch).detach())
    return -float(loss.detach())


def _psi_candidates(method: Method, opts: DiracFigureOptions, theta: float) -> np.ndarray:
    if method.expensive:
        top = min(opts.sup_psi_max, opts.lip_max_psi_theta / max(abs(theta), 1e-12))
        return np.geomspace(0.02, max(top, 0.03), opts.lip_sup_psis)
    pos = np.geomspace(0.02, opts.sup_psi_max, opts.sup_psis)
    return pos if method.symmetric else np.concatenate([-pos[::-1], pos])


def best_psi(name: str, opts: DiracFigureOptions, theta: float) -> tuple[float, float, bool]:
    """(ψ*, value, saturated): the ψ on the candidate grid maximising the critic's objective at θ
    (the first of ties); ``saturated`` when the largest |ψ| on the grid reaches the same value, i.e.
    the supremum is approached as |ψ| → ∞ rather than attained."""
    method, obj = METHODS[name], build_objective(name, opts)
    cands = _psi_candidates(method, opts, theta)
    values = [_critic_value(obj, method, theta, float(p), opts.batch, opts.seed) for p in cands]
    k = int(np.argmax(values))
    top = max(values[0], values[-1]) if not method.symmetric else values[-1]
    return float(cands[k]), float(values[k]), bool(top >= values[k] - 1e-12 * max(1.0, abs(values[k])))


def _kernel_curve(obj: Objective, critic: nn.Module, real: Tensor, fake: Tensor, t: Tensor) -> np.ndarray:
    from igm.mmd import witness

    with torch.no_grad():
        return witness(critic(real), critic(fake), obj.kernel)(critic(t)).numpy()


def _gcmmd_curve(obj: Objective, critic: nn.Module, real: Tensor, fake: Tensor, t: Tensor) -> np.ndarray:
    """μ = P, the real batch (the registered ``gcmmd``)."""
    return gcmmd_witness(critic, real, fake, real, obj.kernel, obj.rkhs_weight)(t).numpy()


def _gcmmd_interpolates_curve(obj: Objective, critic: nn.Module, real: Tensor, fake: Tensor, t: Tensor) -> np.ndarray:
    """μ = the objective's own points between P and Q (:class:`GCMMDInterpolates`)."""
    return gcmmd_witness(critic, real, fake, obj.measure_points(real, fake), obj.kernel, obj.rkhs_weight)(t).numpy()


def _lipschitz_curve(obj: Objective, critic: nn.Module, real: Tensor, fake: Tensor, t: Tensor) -> np.ndarray:
    res = obj.solve(float(fake[0, 0]), float(critic.psi.detach()))
    return res.witness(t.numpy())


def _linear_curve(obj: Objective, critic: nn.Module, real: Tensor, fake: Tensor, t: Tensor) -> np.ndarray:
    with torch.no_grad():
        return critic(t).reshape(-1).numpy()


_CURVES: dict[str, Callable[[Objective, nn.Module, Tensor, Tensor, Tensor], np.ndarray]] = {
    "kernel": _kernel_curve,
    "gcmmd": _gcmmd_curve,
    "gcmmd-interpolates": _gcmmd_interpolates_curve,
    "lipschitz": _lipschitz_curve,
    "linear": _linear_curve,
}


def critic_curve(name: str, opts: DiracFigureOptions, psi: float, x: np.ndarray) -> np.ndarray:
    """The critic function at θ = critic_theta, ψ as a function of x (unnormalised), drawn the way
    the method's ``witness`` says."""
    method, theta, n = METHODS[name], opts.critic_theta, opts.batch
    if method.witness is None:
        raise ValueError(f"DiracGAN method {name!r} draws no critic in panel (c)")
    real = torch.zeros(n, 1, dtype=torch.float64)
    fake = torch.full((n, 1), theta, dtype=torch.float64)
    t = torch.as_tensor(x, dtype=torch.float64)[:, None]
    return _CURVES[method.witness](build_objective(name, opts), method.critic(psi), real, fake, t)

# ------------------------------------------------------------------------------------------
# the panels of one method


@dataclass(frozen=True)
class Grids:
    """Where the panels are evaluated: the field grid (``lip_grid`` points for expensive methods), the
    x points of the critic panel (c) and the θ values of the distance panel (d)."""

    thetas: np.ndarray
    psis: np.ndarray
    coarse_thetas: np.ndarray
    coarse_psis: np.ndarray
    x: np.ndarray
    sup_theta: np.ndarray

    @classmethod
    def of(cls, opts: DiracFigureOptions) -> "Grids":
        top = max(abs(opts.theta_range[0]), abs(opts.theta_range[1]))
        return cls(np.linspace(*opts.theta_range, opts.grid), np.linspace(*opts.psi_range, opts.grid),
                   np.linspace(*opts.theta_range, opts.lip_grid), np.linspace(*opts.psi_range, opts.lip_grid),
                   np.linspace(-1.5, opts.critic_theta + 1.5, opts.critic_points),
                   np.linspace(0.0, top, opts.sup_thetas))


def _first_below(values: list[float], tol: float) -> int | None:
    for k, val in enumerate(values):
        if abs(val) < tol:
            return k
    return None


def _field_and_trajectories(name: str, opts: DiracFigureOptions, grids: Grids) -> dict[str, Any]:
    """Figures 1 (a, b) and 5 for one method: its field, its trajectories and where the main one ends."""
    method = METHODS[name]
    th, ps = (grids.coarse_thetas, grids.coarse_psis) if method.expensive else (grids.thetas, grids.psis)
    u, v = field_on_grid(name, opts, th, ps)
    main = trajectory(name, opts, opts.start_theta, opts.start_psi, opts.steps)
    runs = [main]
    if not method.expensive and opts.extra_steps:
        pairs = zip(opts.extra_starts[::2], opts.extra_starts[1::2])
        runs += [trajectory(name, opts, a, b, opts.extra_steps) for a, b in pairs]
    final = {
        "abs_theta": abs(main["theta"][-1]),
        "theta": main["theta"][-1],
        "psi": main["psi"][-1],
        "first_step_abs_theta_below_0.05": _first_below(main["theta"], 0.05),
        "generator_loss": main["generator_loss"][-1],
    }
    return {"field": {"theta": th, "psi": ps, "u": u, "v": v}, "trajectories": runs, "final": final}


def _critic_panel(name: str, opts: DiracFigureOptions, x: np.ndarray) -> dict[str, Any]:
    """Figure 1 (c) for one method: its critic at θ = critic_theta and the best ψ, scaled to f(0) = 1,
    f(θ) = 0."""
    frozen = METHODS[name].frozen_psi
    if frozen is not None:
        psi_star, saturated = frozen, False
    else:
        psi_star, _, saturated = best_psi(name, opts, opts.critic_theta)
    f = critic_curve(name, opts, psi_star, x)
    f0, ft = np.interp([0.0, opts.critic_theta], x, f)
    gap = float(f0 - ft)
    return {"psi": psi_star, "saturated": saturated, "values": f, "gap": gap,
            "normalised": (f - ft) / gap if gap != 0 else np.zeros_like(f)}


def _distance_panel(name: str, opts: DiracFigureOptions, sup_theta: np.ndarray) -> tuple[list, list]:
    """Figure 1 (d) for one method: sup_ψ D_ψ(δ₀, δ_θ) at each θ (0 at θ = 0) and the ψ attaining it."""
    vals, best = [], []
    for theta in sup_theta:
        if theta == 0.0:
            vals.append(0.0)
            best.append(None)
            continue
        p, val, _ = best_psi(name, opts, float(theta))
        vals.append(math.sqrt(max(val, 0.0)))
        best.append(p)
    return vals, best


def compute(opts: DiracFigureOptions) -> dict[str, Any]:
    """Every number of the figure, per method: fields, trajectories, final points, critics (c),
    distances (d) and the seconds each method took."""
    grids = Grids.of(opts)
    fields: dict[str, Any] = {}
    trajectories: dict[str, list] = {}
    final: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    dist_values: dict[str, list] = {}
    dist_psi: dict[str, list] = {}
    timings: dict[str, float] = {}
    for name in opts.methods:
        t0 = time.perf_counter()
        parts = _field_and_trajectories(name, opts, grids)
        fields[name], trajectories[name], final[name] = parts["field"], parts["trajectories"], parts["final"]
        if METHODS[name].witness is not None:
            curves[name] = _critic_panel(name, opts, grids.x)
        if METHODS[name].distance:
            dist_values[name], dist_psi[name] = _distance_panel(name, opts, grids.sup_theta)
        timings[name] = time.perf_counter() - t0
    return {
        "options": opts,
        "fields": fields,
        "trajectories": trajectories,
        "final": final,
        "critics": {"theta": opts.critic_theta, "x": grids.x, "curves": curves},
        "distances": {"theta": grids.sup_theta, "values": dist_values, "argmax_psi": dist_psi},
        "timings": timings,
    }
