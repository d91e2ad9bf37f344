"""``igm figure gaussians``: MMD, Gradient-Constrained MMD and Scaled MMD between two Gaussians
(seed 000, appendix F.1, figure 7).

Our copy of the paper lost figure 7's caption; its text says that SMMD and GCMMD "behave similarly"
on Gaussians, that optimising them over the kernel is also similar, and that "optimizing the MMD
would yield an essentially constant distance". We reconstruct the setting as

- P = N(0, s_P² I_D), Q = N(μ e₁, σ_Q² I_D) (D = 1 by default, s_P = 0.1);
- the kernel k_ψ(x, y) = exp(−‖x − y‖² / (2ψ²)), i.e. the Gaussian kernel (σ = 1) on the linear
  feature map φ_ψ(x) = x / ψ: "fixed kernel" is ψ ∈ {0.1, 10}, "optimised kernel" the largest
  value over a log grid of ψ in [0.1, 10];
- λ = 1 and μ-measure = P for both gradient-controlled distances (the paper's parametrisation:
  SMMD² = MMD² / (λ + E_P k(x, x) + E_P ‖∇φ‖²_F) = MMD² / (λ + 1 + D/ψ²)).

Every value is a plug-in (biased, V-statistic) estimate from ``samples`` points per distribution,
computed with the library's own estimators: :func:`igm.constrained.gcmmd.gcmmd2_critic` (GCMMD² and
the biased MMD² of the same samples) and the ``smmd`` objective (SMMD² with the paper's λ). The
samples are coupled (common random numbers): X = s_P ε, Y = μ e₁ + σ_Q ε' with ε, ε' fixed across
the grid, so the curves are smooth in μ and the estimate is exactly 0 at P = Q when ``couple`` is on
(ε' = ε). GCMMD's measure μ is the first ``measure_points`` of the P sample.

Outputs: ``gaussians.png`` (distances against the mean shift with σ_Q = s_P, each curve normalised
by its maximum; the optimal ψ; the raw values) and ``gaussians-maps.png`` (log₁₀ of each distance
over the (μ, σ_Q) plane, as the paper's figure is organised), and ``gaussians.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from igm import kernels, objectives
from igm.analysis.figures import register, write_json
from igm.constrained.gcmmd import gcmmd2_critic

__all__ = ["GaussiansOptions", "LinearFeature", "sample_pair", "distances", "bandwidth_grid", "gaussians"]

DISTANCES = ("mmd", "smmd", "gcmmd")


@dataclass
class GaussiansOptions:
    dim: int = 1  # D: dimension of the two Gaussians
    s_p: float = 0.1  # P = N(0, s_p² I)
    samples: int = 200  # points drawn from each of P and Q
    measure_points: int = 50  # GCMMD: μ = empirical measure on this many P points
    lam: float = 1.0  # λ of GCMMD and SMMD
    fixed_psi: tuple[float, ...] = (0.1, 10.0)  # bandwidths of the "fixed kernel" curves
    psi_min: float = 0.1  # optimised kernel: ψ on a log grid in [psi_min, psi_max]
    psi_max: float = 10.0
    psi_count: int = 17
    mu_min: float = 0.01  # curves: log-spaced mean shifts, σ_Q = s_P
    mu_max: float = 30.0
    mu_count: int = 40
    map_mu_max: float = 3.0  # maps: μ linear in [0, map_mu_max], σ_Q log-spaced
    map_sigma_min: float = 0.02
    map_sigma_max: float = 2.0
    map_mu_count: int = 21
    map_sigma_count: int = 13
    maps: bool = True  # draw the (μ, σ_Q) maps
    couple: bool = True  # common random numbers: Y = μ e₁ + (σ_Q/s_P) X
    seed: int = 0
    threads: int = 1  # torch CPU threads


class LinearFeature(nn.Module):
    """φ_ψ(x) = x / ψ: the Gaussian kernel (σ = 1) on φ_ψ is a Gaussian kernel of bandwidth ψ."""

    def __init__(self, psi: float):
        super().__init__()
        self.psi = float(psi)

    def forward(self, x: Tensor) -> Tensor:
        return x / self.psi


def sample_pair(samples: int, dim: int, s_p: float, mu: float, sigma_q: float, seed: int = 0,
                couple: bool = True) -> tuple[Tensor, Tensor]:
    """``(X, Y)`` with X ~ N(0, s_p² I), Y ~ N(μ e₁, σ_q² I), float64. The standard-normal draws
    depend only on (samples, dim, seed), so every (μ, σ_q) shares them; with ``couple`` Y uses the
    same draws as X."""
    gen = torch.Generator().manual_seed(seed)
    eps_x = torch.randn(samples, dim, generator=gen, dtype=torch.float64)
    eps_y = eps_x if couple else torch.randn(samples, dim, generator=gen, dtype=torch.float64)
    shift = torch.zeros(dim, dtype=torch.float64)
    shift[0] = mu
    return s_p * eps_x, shift + sigma_q * eps_y


def distances(x: Tensor, y: Tensor, psi: float, lam: float, measure_points: int) -> dict[str, float]:
    """Squared distances between the samples under k_ψ: biased MMD², SMMD² (the paper's
    parametrisation, μ = P) and GCMMD² (μ = the first ``measure_points`` of x)."""
    critic = LinearFeature(psi)
    kernel = kernels.Gaussian(1.0)
    smmd = objectives.get("smmd", kernel=kernel, rkhs_weight=lam, diag_weight=1.0, grad_weight=1.0, estimator="biased")
    _, stats = smmd.critic_loss(critic, x, y)
    gc, gstats = gcmmd2_critic(critic, x, y, kernel, lam, measure_points=x[:measure_points])
    return {
        "mmd": float(stats["mmd2"]),
        "smmd": float(stats["smmd2"]),
        "scale": float(stats["scale"]),
        "gcmmd": float(gc.detach()),
        "mmd_gcmmd": float(gstats["mmd2"]),  # the same biased MMD², computed by the GCMMD code
    }


def bandwidth_grid(opts: GaussiansOptions) -> list[float]:
    if opts.psi_count == 1:
        return [opts.psi_min]
    lo, hi = math.log(opts.psi_min), math.log(opts.psi_max)
    return [math.exp(lo + (hi - lo) * i / (opts.psi_count - 1)) for i in range(opts.psi_count)]


def _grid(lo: float, hi: float, n: int, log: bool) -> list[float]:
    if n == 1:
        return [lo]
    if log:
        a, b = math.log(lo), math.log(hi)
        return [math.exp(a + (b - a) * i / (n - 1)) for i in range(n)]
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def _cell(opts: GaussiansOptions, mu: float, sigma_q: float, psis: list[float]) -> dict:
    """Fixed-kernel and optimised values of the three distances at one (μ, σ_Q)."""
    x, y = sample_pair(opts.samples, opts.dim, opts.s_p, mu, sigma_q, opts.seed, opts.couple)
    fixed = {f"{p:g}": distances(x, y, p, opts.lam, opts.measure_points) for p in opts.fixed_psi}
    per_psi = [distances(x, y, p, opts.lam, opts.measure_points) for p in psis]
    optimised, argmax = {}, {}
    for name in DISTANCES:
        values = [d[name] for d in per_psi]
        i = max(range(len(values)), key=values.__getitem__)
        optimised[name], argmax[name] = values[i], psis[i]
    return {"fixed": fixed, "optimised": optimised, "best_psi": argmax}


def _check(opts: GaussiansOptions) -> None:
    if opts.dim < 1 or opts.samples < 2 or not 1 <= opts.measure_points <= opts.samples:
        raise ValueError("need dim ≥ 1, samples ≥ 2 and 1 ≤ measure_points ≤ samples")
    if not (opts.lam > 0 and opts.s_p > 0 and 0 < opts.psi_min <= opts.psi_max):
        raise ValueError("lam, s_p and the bandwidths must be positive (psi_min ≤ psi_max)")
    if not (0 < opts.mu_min <= opts.mu_max and 0 < opts.map_sigma_min <= opts.map_sigma_max):
        raise ValueError("the μ and σ ranges must be positive and ordered")
    if min(opts.psi_count, opts.mu_count, opts.map_mu_count, opts.map_sigma_count) < 1 or not opts.fixed_psi:
        raise ValueError("every grid needs at least one point, and fixed_psi at least one bandwidth")


_COLORS = {"mmd": "tab:blue", "smmd": "tab:orange", "gcmmd": "tab:green"}
_LABELS = {"mmd": "MMD", "smmd": "SMMD", "gcmmd": "GCMMD"}


def _plot_curves(opts: GaussiansOptions, curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mus = curves["mu"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    styles = ["-", "--", ":", "-."]

    def norm(v):
        top = max(v)
        return [max(t, 0.0) / top if top > 0 else 0.0 for t in v]

    ax = axes[0, 0]
    for j, p in enumerate(curves["fixed"]):
        for name in DISTANCES:
            d = [math.sqrt(max(v, 0.0)) for v in curves["fixed"][p][name]]
            ax.plot(mus, norm(d), styles[j % 4], color=_COLORS[name], label=f"{_LABELS[name]}, ψ = {p}")
    ax.set(xscale="log", xlabel="mean shift μ", ylabel="distance / its maximum over μ",
           title="fixed kernel (SMMD = MMD / constant: same curve)")
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    for name in DISTANCES:
        d = [math.sqrt(max(v, 0.0)) for v in curves["optimised"][name]]
        ax.plot(mus, norm(d), color=_COLORS[name], lw=2, label=f"optimised {_LABELS[name]}")
    ax.set(xscale="log", xlabel="mean shift μ", ylabel="distance / its maximum over μ",
           title=f"kernel optimised over ψ ∈ [{opts.psi_min:g}, {opts.psi_max:g}]")
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    for name in DISTANCES:
        d = [math.sqrt(max(v, 0.0)) for v in curves["optimised"][name]]
        ax.plot(mus, d, color=_COLORS[name], lw=2, label=f"optimised {_LABELS[name]}")
        for j, p in enumerate(curves["fixed"]):
            d = [math.sqrt(max(v, 1e-300)) for v in curves["fixed"][p][name]]
            ax.plot(mus, d, styles[(j + 1) % 4], color=_COLORS[name], lw=1, alpha=0.7,
                    label=f"{_LABELS[name]}, ψ = {p}")
    ax.set(xscale="log", yscale="log", xlabel="mean shift μ", ylabel="distance (square root of the estimate)",
           title="raw values")
    ax.legend(fontsize=7, ncol=2)

    ax = axes[1, 1]
    for name in DISTANCES:
        ax.plot(mus, curves["best_psi"][name], "o-", ms=3, color=_COLORS[name], label=_LABELS[name])
    ax.set(xscale="log", yscale="log", xlabel="mean shift μ", ylabel="maximising bandwidth ψ",
           title="optimal kernel bandwidth")
    ax.legend(fontsize=8)
    fig.suptitle(
        f"P = N(0, {opts.s_p:g}²), Q = N(μ, {opts.s_p:g}²)"
        + (f" in {opts.dim} dims" if opts.dim > 1 else "")
        + f"; λ = {opts.lam:g}, μ-measure = P, {opts.samples} samples each"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_maps(opts: GaussiansOptions, maps: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [(f"ψ = {p}", maps["fixed"][p]) for p in maps["fixed"]] + [("optimised ψ", maps["optimised"])]
    fig, axes = plt.subplots(len(rows), 3, figsize=(12, 3.3 * len(rows)), squeeze=False)
    mus, sigmas = np.array(maps["mu"]), np.array(maps["sigma"])
    for r, (label, values) in enumerate(rows):
        for c, name in enumerate(DISTANCES):
            ax = axes[r, c]
            z = np.log10(np.clip(np.array(values[name]), 1e-12, None)) / 2  # log₁₀ of the distance
            mesh = ax.pcolormesh(mus, sigmas, z.T, shading="nearest", cmap="viridis")
            ax.set_yscale("log")
            ax.plot([0], [opts.s_p], "r*", ms=10)
            ax.set_title(f"log₁₀ {_LABELS[name]}, {label}", fontsize=10)
            ax.set_xlabel("mean μ of Q")
            ax.set_ylabel("std σ of Q")
            fig.colorbar(mesh, ax=ax)
    fig.suptitle(f"P = N(0, {opts.s_p:g}²) (red star); λ = {opts.lam:g}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _summary(curves: dict) -> list[str]:
    mus = curves["mu"]
    lines = [f"distances (square roots of the estimates) at μ = {mus[0]:.3g}, {mus[len(mus) // 2]:.3g}, {mus[-1]:.3g}:"]
    for p in curves["fixed"]:
        for name in DISTANCES:
            v = [math.sqrt(max(t, 0.0)) for t in curves["fixed"][p][name]]
            lines.append(f"  {_LABELS[name]:5s} ψ = {p:5s}: {v[0]:.4g}, {v[len(v) // 2]:.4g}, {v[-1]:.4g}")
    for name in DISTANCES:
        v = [math.sqrt(max(t, 0.0)) for t in curves["optimised"][name]]
        lines.append(f"  {_LABELS[name]:5s} optimised: {v[0]:.4g}, {v[len(v) // 2]:.4g}, {v[-1]:.4g}")
    for name in DISTANCES:
        lines.append(f"  {_LABELS[name]:5s} optimised: reaches half its maximum at μ ≈ {curves['half_max_mu'][name]:.3g}")
    return lines


@register("gaussians", GaussiansOptions,
          quick={"samples": 60, "measure_points": 20, "psi_count": 5, "mu_count": 6, "maps": True,
                 "map_mu_count": 3, "map_sigma_count": 2},
          help="MMD, GCMMD and SMMD between two Gaussians vs their distance, fixed and optimised kernel (seed 000 fig. 7)")
def gaussians(opts: GaussiansOptions, out_dir: Path) -> dict:
    _check(opts)
    torch.set_num_threads(max(1, opts.threads))
    psis = bandwidth_grid(opts)
    mus = _grid(opts.mu_min, opts.mu_max, opts.mu_count, log=True)
    fixed_keys = [f"{p:g}" for p in opts.fixed_psi]

    cells = [_cell(opts, mu, opts.s_p, psis) for mu in mus]
    curves = {
        "mu": mus,
        "sigma_q": opts.s_p,
        "fixed": {k: {n: [c["fixed"][k][n] for c in cells] for n in (*DISTANCES, "scale")} for k in fixed_keys},
        "optimised": {n: [c["optimised"][n] for c in cells] for n in DISTANCES},
        "best_psi": {n: [c["best_psi"][n] for c in cells] for n in DISTANCES},
    }
    half = {}
    for name in DISTANCES:
        d = [math.sqrt(max(v, 0.0)) for v in curves["optimised"][name]]
        half[name] = next((m for m, v in zip(mus, d) if v >= 0.5 * max(d)), float("nan"))
    curves["half_max_mu"] = half

    payload = {"options": opts, "bandwidths": psis, "curves": curves,
               "note": "values are squared distances (MMD², SMMD², GCMMD²), plug-in estimates"}
    figures = [out_dir / "gaussians.png"]
    _plot_curves(opts, curves, figures[0])
    if opts.maps:
        map_mus = _grid(0.0, opts.map_mu_max, opts.map_mu_count, log=False)
        sigmas = _grid(opts.map_sigma_min, opts.map_sigma_max, opts.map_sigma_count, log=True)
        grid = [[_cell(opts, m, s, psis) for s in sigmas] for m in map_mus]
        maps = {
            "mu": map_mus,
            "sigma": sigmas,
            "fixed": {k: {n: [[c["fixed"][k][n] for c in row] for row in grid] for n in DISTANCES} for k in fixed_keys},
            "optimised": {n: [[c["optimised"][n] for c in row] for row in grid] for n in DISTANCES},
        }
        payload["maps"] = maps
        figures.append(out_dir / "gaussians-maps.png")
        _plot_maps(opts, maps, figures[1])
    payload["figures"] = [str(p) for p in figures]
    payload["summary"] = _summary(curves)
    write_json(out_dir / "gaussians.json", payload)
    return payload
