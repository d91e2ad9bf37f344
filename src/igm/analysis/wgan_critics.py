"""``igm figure wgan-optimal-critic``: the optimal GAN discriminator against the optimal WGAN critic
on two 1-D Gaussians (seed 001, figure 2).

The paper: "the discriminator of a minimax GAN saturates and results in vanishing gradients. Our
WGAN critic provides very clean gradients on all parts of the space"; the critic "converges to a
linear function". Our copy lost the figure's setting, so we choose it: real N(−2, 0.5²), fake
N(2, 0.5²), drawn over [−6, 6]. Three critics are trained from scratch on fresh samples at every
step (:func:`igm.analysis.wgan_figures.train_critic`) with the library's objectives: ``gan`` (its
discriminator D = sigmoid(logit)), ``wgan`` (clipping, c = 0.01) and ``wgan-gp`` (λ = 10).

"To optimality" needs restarts here: on the line, the two-sided GP has a second local optimum, the
critic sloping the wrong way. For f = −s·x the critic's objective s·Δμ − λ(s − 1)² (Δμ the gap
between the means) has local maxima at s = 1 + Δμ/(2λ) and at s = −(1 − Δμ/(2λ)), and with one
input dimension there is no direction to turn through (in 2-D, as in ``wgan-parallel-lines``, the
second one is a saddle). Some initialisations end there (slope ≈ +0.8 for the default setting,
pushing fakes away from the reals), so each method trains ``restarts`` critics and keeps the one with the
lowest critic loss on held-out points, its own objective, not closeness to any expected answer;
the JSON lists every restart's held-out loss and slope at the midpoint.

What we measure, "between the modes" meaning x in [real mean, fake mean] and "at the fakes" the
mean over ``eval_samples`` fresh fake points:

- GAN: the derivative of D itself, D' = σ(l)σ(−l) l' (the quantity that saturates), its largest
  value on the line and where; its mean at the fakes, absolute and relative to that peak; the share
  of the between-modes interval where |D'| < 1% of the peak ("flat"); and the generator's signal
  at the fakes for the minimax loss log(1 − D), |∂ log(1 − D)/∂x| = σ(l)|l'|, next to the
  non-saturating loss's −log D, |∂ log D/∂x| = σ(−l)|l'| (which does not vanish: that is what the
  −log D trick is for). Computed from the logit in float64, so 1 − D never rounds to 0.
- critics: min |f'| between the modes relative to max |f'| there, |f'| at the fakes relative to
  that max, the mean |f'| between the modes, and R² of a straight line
  fitted to f between the modes and over the whole drawn range.
- WGAN-GP's reference slope: the best linear critic f = −s·x maximises s·Δμ − λ(s − 1)², so
  s = 1 + Δμ/(2λ) (1.2 here, not 1: the two-sided penalty is a soft constraint).
- all: the share of the drawn range where the generator's descent direction points towards the
  real mode (f' < 0, resp. l' < 0, as the real mode is on the left).

Outputs ``wgan-optimal-critic.png`` (functions above, |derivatives| on a log scale below) and
``wgan-optimal-critic.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from igm import objectives
from igm.analysis.figures import register, write_json
from igm.analysis.wgan_figures import make_critic, make_optimiser, train_critic

__all__ = ["OptimalCriticOptions", "function_and_derivative", "gan_quantities", "critic_quantities",
           "optimal_critic", "METHODS"]

METHODS = ("gan", "wgan", "wgan-gp")


@dataclass
class OptimalCriticOptions:
    real_mean: float = -2.0
    real_std: float = 0.5
    fake_mean: float = 2.0
    fake_std: float = 0.5
    x_min: float = -6.0  # the line the functions are drawn and measured on
    x_max: float = 6.0
    grid: int = 1201
    methods: tuple[str, ...] = METHODS
    hidden: int = 64  # MLP critic 1 → hidden × depth → 1
    depth: int = 2
    activation: str = "leaky_relu"  # as in wgan-parallel-lines
    batch: int = 256  # fresh samples per distribution at every step
    steps: int = 3000
    restarts: int = 3  # critics trained per method; the lowest critic loss on held-out points is kept
    eval_samples: int = 8192  # fresh fakes for the "at the fakes" numbers
    clip: float = 0.01
    gp_weight: float = 10.0
    wgan_optimiser: str = "rmsprop"
    wgan_lr: float = 5e-4
    gp_optimiser: str = "adam"
    gp_lr: float = 3e-3
    gan_optimiser: str = "adam"
    gan_lr: float = 3e-3
    flat_fraction: float = 0.01  # GAN: |D'| below this share of its peak counts as flat
    seed: int = 0
    threads: int = 1


def _objective(method: str, opts: OptimalCriticOptions):
    if method == "gan":
        return objectives.get("gan"), opts.gan_optimiser, opts.gan_lr
    if method == "wgan":
        return objectives.get("wgan", clip=opts.clip), opts.wgan_optimiser, opts.wgan_lr
    if method == "wgan-gp":
        return objectives.get("wgan-gp", gp_weight=opts.gp_weight), opts.gp_optimiser, opts.gp_lr
    raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")


def _sample(opts: OptimalCriticOptions, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    real = opts.real_mean + opts.real_std * torch.randn(n, 1, generator=gen)
    return real, opts.fake_mean + opts.fake_std * torch.randn(n, 1, generator=gen)


def function_and_derivative(critic: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """The critic's output and its derivative at 1-D points x (shape (n,)), both float64."""
    pts = x.to(torch.float32).reshape(-1, 1).requires_grad_(True)
    out = critic(pts).reshape(-1)
    (grad,) = torch.autograd.grad(out.sum(), pts)
    return out.detach().double(), grad.reshape(-1).double()


def gan_quantities(logit: Tensor, dlogit: Tensor) -> dict[str, Tensor]:
    """From the logit: D, D' = σ(l)σ(−l) l', ∂ log(1 − D)/∂x = −σ(l) l', ∂ log D/∂x = σ(−l) l'."""
    l, dl = logit.double(), dlogit.double()
    return {"d": torch.sigmoid(l), "dd": torch.sigmoid(l) * torch.sigmoid(-l) * dl,
            "d_log_one_minus_d": -torch.sigmoid(l) * dl, "d_log_d": torch.sigmoid(-l) * dl}


def _r2(x: Tensor, y: Tensor) -> float:
    """R² of the least-squares line through (x, y)."""
    a = torch.stack([x, torch.ones_like(x)], 1)
    coef = torch.linalg.lstsq(a, y.reshape(-1, 1)).solution.reshape(-1)
    resid = y - a @ coef
    tot = ((y - y.mean()) ** 2).sum()
    return float(1 - (resid**2).sum() / tot) if tot > 0 else 1.0


def critic_quantities(x: Tensor, f: Tensor, df: Tensor, df_fakes: Tensor, between: Tensor) -> dict[str, float]:
    g = df[between].abs()
    peak = float(g.max())
    return {
        "max_abs_grad_between": peak,
        "min_abs_grad_between": float(g.min()),
        "min_abs_grad_between_rel": float(g.min()) / peak if peak > 0 else 0.0,
        "mean_abs_grad_between": float(g.mean()),
        "grad_at_fakes": float(df_fakes.abs().mean()),
        "grad_at_fakes_rel": float(df_fakes.abs().mean()) / peak if peak > 0 else 0.0,
        "r2_between": _r2(x[between], f[between]),
        "r2_all": _r2(x, f),
        "towards_real_share": float((df < 0).double().mean()),
    }


def _gan_metrics(x: Tensor, q: dict[str, Tensor], q_fakes: dict[str, Tensor], q_reals: dict[str, Tensor],
                 dlogit: Tensor, between: Tensor, flat: float) -> dict[str, float]:
    dd = q["dd"].abs()
    peak = float(dd.max())
    i = int(dd.argmax())
    return {
        "max_abs_dD": peak, "x_at_max_abs_dD": float(x[i]),
        "dD_at_fakes": float(q_fakes["dd"].abs().mean()),
        "dD_at_fakes_rel": float(q_fakes["dd"].abs().mean()) / peak if peak > 0 else 0.0,
        "dD_at_reals": float(q_reals["dd"].abs().mean()),
        "D_at_fakes": float(q_fakes["d"].mean()), "D_at_reals": float(q_reals["d"].mean()),
        "flat_share_between": float((dd[between] < flat * peak).double().mean()),
        "minimax_signal_at_fakes": float(q_fakes["d_log_one_minus_d"].abs().mean()),
        "non_saturating_signal_at_fakes": float(q_fakes["d_log_d"].abs().mean()),
        "towards_real_share": float((dlogit < 0).double().mean()),
    }


def _plot(opts: OptimalCriticOptions, x: Tensor, curves: dict, path: Path) -> None:
    from igm.analysis.comparison_plots import pyplot, save

    plt = pyplot()
    n = len(curves)
    fig, axes = plt.subplots(2, n, figsize=(4.4 * n, 7.0), squeeze=False)
    xs = x.numpy()

    def density(mean: float, std: float) -> Tensor:
        return torch.exp(-0.5 * ((x - mean) / std) ** 2)  # peak 1

    for col, (method, c) in enumerate(curves.items()):
        top, bottom = axes[0, col], axes[1, col]
        values = c["d"] if method == "gan" else c["f"]
        lo, hi = float(values.min()), float(values.max())
        span = hi - lo if hi > lo else 1.0
        for mean, std, colour, label in ((opts.real_mean, opts.real_std, "tab:blue", "real"),
                                         (opts.fake_mean, opts.fake_std, "tab:green", "fake")):
            top.fill_between(xs, lo, (lo + span * density(mean, std)).numpy(), color=colour, alpha=0.2, label=label)
        name = {"gan": "GAN discriminator D(x)", "wgan": f"WGAN critic f(x), clip {opts.clip:g}",
                "wgan-gp": f"WGAN-GP critic f(x), λ = {opts.gp_weight:g}"}[method]
        top.plot(xs, values.numpy(), c="tab:red" if method == "gan" else "tab:cyan", lw=2, label=name)
        top.set_title(name, fontsize=10)
        top.legend(fontsize=7, loc="best")
        floor = 1e-30
        if method == "gan":
            bottom.semilogy(xs, c["dd"].abs().clamp_min(floor).numpy(), c="tab:red", label="|D'(x)|")
            bottom.semilogy(xs, c["d_log_one_minus_d"].abs().clamp_min(floor).numpy(), "--", c="tab:orange",
                            label="|∂ log(1 − D)/∂x| (minimax G)")
            bottom.semilogy(xs, c["d_log_d"].abs().clamp_min(floor).numpy(), ":", c="tab:purple",
                            label="|∂ log D/∂x| (non-saturating G)")
        else:
            bottom.semilogy(xs, c["df"].abs().clamp_min(floor).numpy(), c="tab:cyan", label="|f'(x)|")
        for mean in (opts.real_mean, opts.fake_mean):
            bottom.axvline(mean, c="0.7", lw=0.8)
        bottom.set_xlabel("x")
        bottom.set_title("|derivative|, log scale (floor 1e-30); grey: modes' means", fontsize=9)
        bottom.legend(fontsize=7, loc="lower center")
    fig.suptitle(f"optimal critics, real N({opts.real_mean:g}, {opts.real_std:g}²) vs fake "
                 f"N({opts.fake_mean:g}, {opts.fake_std:g}²) (WGAN paper, figure 2)", fontsize=11)
    save(fig, path, dpi=110)


@register("wgan-optimal-critic", OptimalCriticOptions,
          quick={"steps": 600, "hidden": 32, "batch": 128, "grid": 401, "eval_samples": 2048},
          help="optimal GAN discriminator vs WGAN / WGAN-GP critic on two 1-D Gaussians (seed 001 fig. 2)")
def optimal_critic(opts: OptimalCriticOptions, out_dir: Path) -> dict:
    if min(opts.steps, opts.batch, opts.eval_samples, opts.hidden, opts.restarts) < 1 or opts.grid < 3 \
            or opts.depth < 0:
        raise ValueError("steps, batch, eval_samples, hidden, restarts must be positive, grid at least 3, depth ≥ 0")
    if not opts.x_min < opts.real_mean < opts.fake_mean < opts.x_max or min(opts.real_std, opts.fake_std) <= 0:
        raise ValueError("need x_min < real_mean < fake_mean < x_max and positive stds")
    if not opts.methods:
        raise ValueError("methods must name at least one of " + ", ".join(METHODS))
    for m in opts.methods:
        make_optimiser(_objective(m, opts)[1], [torch.zeros(1, requires_grad=True)], 1e-3)
    torch.set_num_threads(max(1, opts.threads))
    x = torch.linspace(opts.x_min, opts.x_max, opts.grid, dtype=torch.float64)
    between = (x >= opts.real_mean) & (x <= opts.fake_mean)
    curves, metrics, seconds = {}, {}, {}
    for j, method in enumerate(opts.methods):
        t0 = time.perf_counter()
        objective, optimiser, lr = _objective(method, opts)
        base = opts.seed * 1_000_003 + 97 * j
        hold = torch.Generator().manual_seed(base + 90_000)  # held-out points: selection, then metrics
        held_real, held_fake = _sample(opts, opts.eval_samples, hold)
        critic, tries = None, []
        for r in range(opts.restarts):
            torch.manual_seed(base + 7919 * r)  # initialisation (and the GP's ε)
            gen = torch.Generator().manual_seed(base + 7919 * r + 50_000)
            candidate = make_critic(1, opts.hidden, opts.depth, opts.activation)
            train_critic(objective, candidate, lambda n, gen=gen: _sample(opts, n, gen), steps=opts.steps,
                         batch=opts.batch, optimiser=optimiser, lr=lr)
            torch.manual_seed(base + 123)  # the same ε for every restart's held-out loss
            loss = float(objective.critic_loss(candidate, held_real, held_fake)[0].detach())
            _, slope = function_and_derivative(candidate, torch.tensor([0.5 * (opts.real_mean + opts.fake_mean)],
                                                                      dtype=torch.float64))
            tries.append({"held_out_loss": loss, "slope_at_midpoint": float(slope[0])})
            if critic is None or loss < min(t["held_out_loss"] for t in tries[:-1]):
                critic = candidate
        real, fake = _sample(opts, opts.eval_samples, hold)
        f, df = function_and_derivative(critic, x)
        _, df_fakes = function_and_derivative(critic, fake.reshape(-1).double())
        if method == "gan":
            lf, dlf = function_and_derivative(critic, fake.reshape(-1).double())
            lr_, dlr = function_and_derivative(critic, real.reshape(-1).double())
            q = gan_quantities(f, df)
            curves[method] = {"logit": f, "dlogit": df, **q}
            metrics[method] = _gan_metrics(x, q, gan_quantities(lf, dlf), gan_quantities(lr_, dlr), df, between,
                                           opts.flat_fraction)
        else:
            curves[method] = {"f": f, "df": df}
            metrics[method] = critic_quantities(x, f, df, df_fakes, between)
            if method == "wgan-gp":  # linear critics −s·x: s·Δμ − λ(s − 1)² peaks at s = 1 ± Δμ/(2λ)
                shift = (opts.fake_mean - opts.real_mean) / (2 * opts.gp_weight)
                metrics[method]["linear_optimum_slope"] = 1 + shift
                metrics[method]["wrong_sign_local_optimum_slope"] = -(1 - shift)
        metrics[method]["restarts"] = tries
        metrics[method]["chosen_restart"] = min(range(len(tries)), key=lambda r: tries[r]["held_out_loss"])
        seconds[method] = round(time.perf_counter() - t0, 2)
    path = out_dir / "wgan-optimal-critic.png"
    _plot(opts, x, curves, path)
    summary = [f"real N({opts.real_mean:g}, {opts.real_std:g}²), fake N({opts.fake_mean:g}, {opts.fake_std:g}²), "
               f"{opts.steps} critic steps each:"]
    if "gan" in metrics:
        g = metrics["gan"]
        summary.append(f"  gan: max |D'| {g['max_abs_dD']:.3g} at x = {g['x_at_max_abs_dD']:.2f}; |D'| at the fakes "
                       f"{g['dD_at_fakes']:.2g} ({g['dD_at_fakes_rel']:.2g} of the peak); flat (|D'| < "
                       f"{opts.flat_fraction:g}·peak) on {100 * g['flat_share_between']:.0f}% between the modes")
        summary.append("       generator signal at the fakes: minimax |∂log(1−D)/∂x| "
                       f"{g['minimax_signal_at_fakes']:.2g}, "
                       f"non-saturating |∂log D/∂x| {g['non_saturating_signal_at_fakes']:.3g}")
    for m in ("wgan", "wgan-gp"):
        if m in metrics:
            c = metrics[m]
            summary.append(f"  {m}: min/max |f'| between the modes {c['min_abs_grad_between_rel']:.3f}; |f'| at the "
                           f"fakes {c['grad_at_fakes_rel']:.3f} of the max; "
                           f"mean |f'| {c['mean_abs_grad_between']:.3g}; "
                           f"R² of a line {c['r2_between']:.4f} between the modes, {c['r2_all']:.4f} on "
                           f"[{opts.x_min:g}, {opts.x_max:g}]")
    for m, v in metrics.items():
        summary.append(f"  {m} restarts (held-out critic loss, slope at the midpoint; chosen #{v['chosen_restart']}): "
                       + "; ".join(f"{t['held_out_loss']:.4g}, {t['slope_at_midpoint']:+.3g}" for t in v["restarts"]))
    seconds["total"] = round(sum(seconds.values()), 2)
    summary.append(f"  {seconds['total']:.0f} s")
    payload = {"options": opts, "x": x, "curves": curves, "metrics": metrics, "seconds": seconds,
               "figures": [str(path)], "summary": summary}
    write_json(out_dir / "wgan-optimal-critic.json", payload)
    return payload
