"""``igm figure wgan-parallel-lines``: the EM distance against the JS divergence on example 1 of
the WGAN paper (seed 001, "learning parallel lines", figure 1), next to what the library's critics
estimate from samples.

P₀ is uniform on the segment {0} × [0, 1] of R² and P_θ the same segment at x = θ. The closed forms:

- W(P₀, P_θ) = |θ| (move every point sideways by |θ|);
- JS(P₀, P_θ) = log 2 for θ ≠ 0 and 0 at θ = 0. Convention: natural log and
  JS(P, Q) = ½ KL(P ‖ M) + ½ KL(Q ‖ M), M = (P + Q)/2, so that 0 ≤ JS ≤ log 2. (Our copy of the
  paper writes JS without the ½'s but states JS = log 2 here, which needs them.)

The sample estimates, each from a fresh critic trained at every θ of the grid on fresh batches at
every step, and evaluated on ``eval_samples`` new points:

- ``wgan`` (weight clipping, c = 0.01): the EM estimate E f(P₀) − E f(P_θ). The clipped critics
  form a K-Lipschitz family for some unknown K, so this estimates K · W, not W. We fit K once over
  the grid by least squares through the origin, K = Σ est·|θ| / Σ θ², and plot est / K; the raw
  values and the ratios est / |θ| are in the JSON.
- ``wgan-gp`` (two-sided penalty, λ = 10): the same EM estimate. For the linear critic
  f = −s·x·sign θ the critic's objective is s|θ| − λ(s − 1)², maximal at s = 1 + |θ|/(2λ), so
  the penalised optimum is |θ| + θ²/(2λ), 5% above W at |θ| = 1; the JSON gives this curve too.
- ``gan``: the discriminator's lower bound on JS, ½ L(D) + log 2 with
  L(D) = E_P₀ log D + E_Pθ log(1 − D) = −(the ``gan`` objective's critic loss); for every D,
  ½ L(D) + log 2 ≤ JS, with equality at the optimal D.

Every critic is the library's MLP (2 → 64 → 64 → 1, leaky ReLU: plain ReLU critics sometimes died
at the GP's learning rate, every unit off and f constant), trained for ``steps`` on fresh batches.
With ``couple`` (default) each method starts from the same initialisation and sees the same uniform
draws at every θ (common random numbers), so differences along the grid come from θ alone. The
clipped critic still ends in different corners of the clipping box at different θ, so its ratio
est / |θ| is not one constant; the JSON records it at every θ.

:func:`train_critic` (fresh samples per step, the objective's ``after_critic_step`` after each
optimiser step, so clipping is the library's) is shared with ``wgan-optimal-critic``
(:mod:`igm.analysis.wgan_critics`).

Outputs ``wgan-parallel-lines.png`` (EM and JS panels) and ``wgan-parallel-lines.json``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from igm import objectives
from igm.analysis.figures import register, write_json
from igm.nn import build

__all__ = ["ParallelLinesOptions", "w_closed", "js_closed", "gp_optimum", "sample_segment", "make_critic",
           "make_optimiser", "train_critic", "fit_scale", "parallel_lines", "METHODS"]

METHODS = ("wgan", "wgan-gp", "gan")
LOG2 = math.log(2.0)


def w_closed(theta: float) -> float:
    """W₁(P₀, P_θ) = |θ|."""
    return abs(float(theta))


def js_closed(theta: float) -> float:
    """JS(P₀, P_θ) (natural log, with the ½'s): log 2 when the segments are disjoint, else 0."""
    return LOG2 if theta != 0 else 0.0


def gp_optimum(theta: float, gp_weight: float) -> float:
    """The EM estimate of the best WGAN-GP critic, |θ| + θ²/(2λ) (the module docstring derives it)."""
    return abs(theta) + theta * theta / (2 * gp_weight) if gp_weight > 0 else math.inf


def sample_segment(x: float, n: int, gen: torch.Generator) -> Tensor:
    """n points uniform on {x} × [0, 1]."""
    pts = torch.zeros(n, 2)
    pts[:, 0] = x
    pts[:, 1] = torch.rand(n, generator=gen)
    return pts


def make_critic(dim: int, hidden: int, depth: int, activation: str) -> nn.Module:
    """The library's MLP critic, ``dim → hidden × depth → 1``."""
    return build("mlp", "critic", shape=(dim,), hidden=hidden, depth=depth, activation=activation)


def make_optimiser(name: str, params, lr: float) -> torch.optim.Optimizer:
    """``rmsprop`` (the WGAN paper's) or ``adam`` (β = (0.5, 0.9), WGAN-GP's)."""
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.9))
    raise ValueError(f"unknown optimiser {name!r}; valid: rmsprop, adam")


def train_critic(objective, critic: nn.Module, sample: Callable[[int], tuple[Tensor, Tensor]], *, steps: int,
                 batch: int, optimiser: str, lr: float) -> nn.Module:
    """``steps`` critic updates, each on a fresh ``sample(batch)`` = (real, fake), followed by the
    objective's ``after_critic_step`` (weight clipping for ``wgan``)."""
    opt = make_optimiser(optimiser, critic.parameters(), lr)
    objective.after_critic_step(critic, {})  # start inside the constraint set
    for _ in range(steps):
        real, fake = sample(batch)
        loss, stats = objective.critic_loss(critic, real, fake)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        objective.after_critic_step(critic, stats)
    return critic


def fit_scale(thetas: list[float], estimates: list[float]) -> float:
    """K minimising Σ (est − K|θ|)²: Σ est·|θ| / Σ θ²."""
    num = sum(e * abs(t) for t, e in zip(thetas, estimates))
    den = sum(t * t for t in thetas)
    return num / den if den > 0 else math.nan


@dataclass
class ParallelLinesOptions:
    theta_min: float = -1.0
    theta_max: float = 1.0
    theta_count: int = 21  # grid of θ, evenly spaced (21: steps of 0.1, θ = 0 included)
    methods: tuple[str, ...] = METHODS  # any of wgan, wgan-gp, gan
    hidden: int = 64  # MLP critic 2 → hidden → hidden → 1 (depth hidden layers)
    depth: int = 2
    activation: str = "leaky_relu"  # slope 0.2; a ReLU GP critic can die (all units off, f constant)
    batch: int = 256  # fresh samples from each of P₀ and P_θ at every step
    steps: int = 2000  # critic steps per θ and method
    eval_samples: int = 8192  # fresh points per distribution for the reported estimates
    clip: float = 0.01  # wgan: the paper's c
    gp_weight: float = 10.0  # wgan-gp: λ
    wgan_optimiser: str = "rmsprop"
    wgan_lr: float = 5e-4  # 10× the paper's 5e-5, so the clipped critic converges in `steps`
    gp_optimiser: str = "adam"
    gp_lr: float = 3e-3
    gan_optimiser: str = "adam"
    gan_lr: float = 3e-3
    couple: bool = True  # common random numbers: the same critic initialisation and draws at every θ
    seed: int = 0
    threads: int = 1  # torch CPU threads


def _objective(method: str, opts: ParallelLinesOptions):
    if method == "wgan":
        return objectives.get("wgan", clip=opts.clip), opts.wgan_optimiser, opts.wgan_lr
    if method == "wgan-gp":
        return objectives.get("wgan-gp", gp_weight=opts.gp_weight), opts.gp_optimiser, opts.gp_lr
    if method == "gan":
        return objectives.get("gan"), opts.gan_optimiser, opts.gan_lr
    raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")


def _estimate(method: str, objective, critic: nn.Module, real: Tensor, fake: Tensor) -> float:
    """EM estimate (wgan, wgan-gp) or the JS lower bound ½ L(D) + log 2 (gan) on the given points."""
    loss, stats = objective.critic_loss(critic, real, fake)
    if method == "gan":
        return 0.5 * -float(loss.detach()) + LOG2  # L(D) = −loss
    return float(stats["em_estimate"])


def _validate(opts: ParallelLinesOptions) -> None:
    if opts.theta_count < 2 or not opts.theta_min < opts.theta_max:
        raise ValueError("theta_count must be at least 2 and theta_min < theta_max")
    if min(opts.steps, opts.batch, opts.eval_samples, opts.hidden) < 1 or opts.depth < 0:
        raise ValueError("steps, batch, eval_samples and hidden must be positive, depth non-negative")
    if not opts.methods:
        raise ValueError("methods must name at least one of " + ", ".join(METHODS))
    for m in opts.methods:
        _objective(m, opts)
    for name in (opts.wgan_optimiser, opts.gp_optimiser, opts.gan_optimiser):
        make_optimiser(name, [torch.zeros(1, requires_grad=True)], 1e-3)


def _plot(data: dict, path: Path) -> None:
    from igm.analysis.comparison_plots import pyplot, save

    plt = pyplot()
    fig, (ax_w, ax_js) = plt.subplots(1, 2, figsize=(11, 4.3))
    fine = torch.linspace(data["thetas"][0], data["thetas"][-1], 401).tolist()
    ax_w.plot(fine, [w_closed(t) for t in fine], "k-", lw=1.5, label="W(P₀, P_θ) = |θ|")
    est = data["estimates"]
    if "wgan-gp" in est:
        lam = data["options"].gp_weight
        ax_w.plot(fine, [gp_optimum(t, lam) for t in fine], "--", c="tab:green", lw=1,
                  label=f"best GP critic: |θ| + θ²/(2·{lam:g})")
        ax_w.plot(data["thetas"], est["wgan-gp"], "o", c="tab:green", ms=5, label="WGAN-GP critic (λ = "
                  f"{lam:g})")
    if "wgan" in est:
        k = data["wgan_scale"]
        ax_w.plot(data["thetas"], data["wgan_rescaled"], "s", c="tab:blue", ms=5, mfc="none",
                  label=f"clipped WGAN critic / K (K = {k:.3g})")
    ax_w.set_xlabel("θ")
    ax_w.set_title("EM distance: closed form and critic estimates")
    ax_w.legend(fontsize=8, loc="upper center")
    neg = [t for t in fine if t < 0]
    pos = [t for t in fine if t > 0]
    for side in (neg, pos):
        ax_js.plot(side, [LOG2] * len(side), "k-", lw=1.5)
    ax_js.plot([0], [0], "ko", ms=5, label="JS(P₀, P_θ): log 2, and 0 at θ = 0")
    ax_js.plot([0], [LOG2], "ko", ms=5, mfc="white")
    if "gan" in est:
        ax_js.plot(data["thetas"], est["gan"], "^", c="tab:red", ms=5, mfc="none",
                   label="GAN bound ½ L(D) + log 2")
    ax_js.axhline(LOG2, c="0.8", lw=0.5, zorder=0)
    ax_js.set_ylim(-0.08, 0.8)
    ax_js.set_xlabel("θ")
    ax_js.set_title("JS divergence (natural log): closed form and GAN estimate")
    ax_js.legend(fontsize=8, loc="lower right")
    fig.suptitle("parallel lines (WGAN paper, example 1 / figure 1): P₀ on {0}×[0,1], P_θ on {θ}×[0,1]",
                 fontsize=10)
    save(fig, path, dpi=110)


@register("wgan-parallel-lines", ParallelLinesOptions,
          quick={"theta_count": 9, "steps": 500, "batch": 128, "hidden": 32, "eval_samples": 4096},
          help="EM vs JS on the WGAN paper's parallel lines, with critic estimates (seed 001 fig. 1)")
def parallel_lines(opts: ParallelLinesOptions, out_dir: Path) -> dict:
    _validate(opts)
    torch.set_num_threads(max(1, opts.threads))
    thetas = torch.linspace(opts.theta_min, opts.theta_max, opts.theta_count, dtype=torch.float64)
    thetas = [round(float(t), 12) + 0.0 for t in thetas]  # exact 0 where the grid crosses it
    start = time.perf_counter()
    estimates: dict[str, list[float]] = {m: [] for m in opts.methods}
    seconds: dict[str, float] = {m: 0.0 for m in opts.methods}
    for i, theta in enumerate(thetas):
        for j, method in enumerate(opts.methods):
            t0 = time.perf_counter()
            objective, optimiser, lr = _objective(method, opts)
            stream = opts.seed * 1_000_003 + 97 * j + (0 if opts.couple else 7919 * (i + 1))
            torch.manual_seed(stream)  # the critic's initialisation (and the GP's ε)
            gen = torch.Generator().manual_seed(stream + 50_000)  # the uniform draws
            critic = make_critic(2, opts.hidden, opts.depth, opts.activation)

            def sample(n: int, theta=theta, gen=gen) -> tuple[Tensor, Tensor]:
                return sample_segment(0.0, n, gen), sample_segment(theta, n, gen)

            train_critic(objective, critic, sample, steps=opts.steps, batch=opts.batch, optimiser=optimiser, lr=lr)
            real, fake = sample(opts.eval_samples)
            estimates[method].append(_estimate(method, objective, critic, real, fake))
            seconds[method] += time.perf_counter() - t0
    data: dict = {
        "options": opts, "thetas": thetas,
        "js_convention": "natural log; JS(P, Q) = KL(P||M)/2 + KL(Q||M)/2, M = (P+Q)/2",
        "closed_forms": {"w": [w_closed(t) for t in thetas], "js": [js_closed(t) for t in thetas]},
        "estimates": estimates,
    }
    summary = []
    if "wgan-gp" in estimates:
        ref = [gp_optimum(t, opts.gp_weight) for t in thetas]
        data["closed_forms"]["wgan_gp_optimum"] = ref
        err = [e - abs(t) for t, e in zip(thetas, estimates["wgan-gp"])]
        data["wgan_gp_error"] = err
        bias = max(r - abs(t) for t, r in zip(thetas, ref))
        summary.append(f"wgan-gp EM estimate − |θ|: max |error| {max(map(abs, err)):.3f} "
                       f"(best GP critic: |θ| + θ²/(2λ), error {bias:.3f} at the ends)")
    if "wgan" in estimates:
        k = fit_scale(thetas, estimates["wgan"])
        data["wgan_scale"] = k
        data["wgan_rescaled"] = [e / k for e in estimates["wgan"]]
        ratios = [e / abs(t) for t, e in zip(thetas, estimates["wgan"]) if t != 0]
        data["wgan_ratio"] = [e / abs(t) if t != 0 else None for t, e in zip(thetas, estimates["wgan"])]
        far = [e / abs(t) for t, e in zip(thetas, estimates["wgan"]) if abs(t) >= 0.25]
        summary.append(f"wgan (clip {opts.clip:g}) EM estimate = K·|θ| with K = {k:.4g} fitted once; "
                       f"est/|θ| over θ ≠ 0 in [{min(ratios):.4g}, {max(ratios):.4g}]"
                       + (f", over |θ| ≥ 0.25 in [{min(far):.4g}, {max(far):.4g}]" if far else ""))
        summary.append("  rescaled est/K − |θ|: max |error| "
                       f"{max(abs(r - abs(t)) for t, r in zip(thetas, data['wgan_rescaled'])):.3f}")
    if "gan" in estimates:
        g = estimates["gan"]
        at0 = [e for t, e in zip(thetas, g) if t == 0]
        far = [e for t, e in zip(thetas, g) if abs(t) >= 0.25]
        summary.append("gan JS bound ½L(D) + log 2: " + (f"at θ = 0 {at0[0]:.4f}; " if at0 else "")
                       + (f"min over |θ| ≥ 0.25 {min(far):.4f} (log 2 = {LOG2:.4f}); " if far else "")
                       + f"min over θ ≠ 0 {min(e for t, e in zip(thetas, g) if t != 0):.4f}")
    data["seconds"] = {**{m: round(s, 2) for m, s in seconds.items()}, "total": round(time.perf_counter() - start, 2)}
    summary.append(f"{len(thetas)} values of θ × {len(opts.methods)} critics, {opts.steps} steps each: "
                   f"{data['seconds']['total']:.0f} s")
    path = out_dir / "wgan-parallel-lines.png"
    _plot(data, path)
    data["figures"] = [str(path)]
    data["summary"] = summary
    write_json(out_dir / "wgan-parallel-lines.json", data)
    return data

