"""``igm figure lgan-gradients``: where the critic's gradient sends the fake samples (seed 004,
figure 3 and section 5.3).

Zhou et al. show that for a Lipschitz-regularised critic f of the LGAN family
E_Q φ(f(y)) + E_P φ(−f(x)) (φ satisfying their eq. 11), the gradient ∇f at each fake sample y points
towards some real sample x. Their 2-D check: P two Gaussians, Q one Gaussian close to one of them,
both fixed (no generator), a critic trained to optimality with MaxGP, and the arrows ∇f(y) drawn.

Here a small MLP critic is trained full-batch on fixed real and fake point sets with the library's
``lgan`` objective for each φ (MaxGP), plus baselines (by default: the standard GAN loss without
penalty, and WGAN with the two-sided GP). For each fake y we measure the smallest angle between
∇f(y) and the directions x_i − y to the real samples, and report the share of fakes whose gradient
points at some real sample within ``angle_deg``. Because the real points cover a range of
directions, we also report the chance level: the share of all directions (uniform on the circle)
that point within ``angle_deg`` of some real sample, averaged over the fakes.

Outputs ``lgan-gradients.png`` (one panel per variant: points, unit gradient arrows, contours of f)
and ``lgan-gradients.json`` (points, gradients, angles, shares).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from igm import objectives
from igm.analysis.figures import register, write_json
from igm.objectives.lgan import PHIS

__all__ = ["LGANGradientOptions", "parse_variant", "point_sets", "make_critic", "train_critic",
           "fake_gradients", "min_angles", "chance_level", "lgan_gradients"]


@dataclass
class LGANGradientOptions:
    variants: tuple[str, ...] = (  # "phi:penalty[:lam]"; penalty none means λ = 0
        "exp:maxgp", "softplus:maxgp", "sqrt:maxgp", "linear:maxgp", "hinge:maxgp", "least-squares:maxgp",
        "softplus:none", "linear:gp",
    )
    lam: float = 0.1  # penalty weight unless a variant names its own (the authors' default 0.1)
    real_centers: tuple[float, ...] = (-1.5, 0.0, 1.5, 0.0)  # x, y of each real Gaussian
    real_std: float = 0.15
    real_per_mode: int = 32
    fake_center: tuple[float, ...] = (1.0, 1.2)  # one Gaussian, closer to the right mode
    fake_std: float = 0.25
    fakes: int = 32
    hidden: int = 128  # MLP critic 2 → hidden → hidden → 1
    layers: int = 2  # hidden layers
    activation: str = "relu"  # relu | leaky-relu | tanh | softplus
    steps: int = 2000  # full-batch Adam steps per critic
    lr: float = 1e-3
    angle_deg: float = 10.0  # "points to a real sample": smallest angle to some x_i − y at most this
    chance_directions: int = 3600  # directions on the circle for the chance level
    seed: int = 0
    threads: int = 1  # torch CPU threads


def parse_variant(spec: str, default_lam: float) -> tuple[str, str, float]:
    """``"phi:penalty[:lam]"`` → (phi, penalty, λ); penalty ``none`` gives λ = 0."""
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"variant {spec!r} must look like phi:penalty or phi:penalty:lam")
    phi, penalty = parts[0], parts[1]
    if phi not in PHIS:
        raise ValueError(f"variant {spec!r}: unknown phi {phi!r}; valid: {', '.join(PHIS)}")
    lam = float(parts[2]) if len(parts) == 3 else default_lam
    if penalty == "none":
        return phi, "maxgp", 0.0
    if penalty not in ("maxgp", "gp", "lp"):
        raise ValueError(f"variant {spec!r}: unknown penalty {penalty!r}; valid: maxgp, gp, lp, none")
    return phi, penalty, lam


def point_sets(opts: LGANGradientOptions) -> tuple[Tensor, Tensor]:
    """The fixed real (two or more Gaussians) and fake (one Gaussian) points, float32."""
    if len(opts.real_centers) % 2 or not opts.real_centers or len(opts.fake_center) != 2:
        raise ValueError("real_centers must hold x, y pairs and fake_center one x, y pair")
    gen = torch.Generator().manual_seed(opts.seed)
    centers = torch.tensor(opts.real_centers, dtype=torch.float32).reshape(-1, 2)
    real = torch.cat([c + opts.real_std * torch.randn(opts.real_per_mode, 2, generator=gen) for c in centers])
    fake = torch.tensor(opts.fake_center, dtype=torch.float32) + opts.fake_std * torch.randn(opts.fakes, 2, generator=gen)
    return real, fake


_ACTIVATIONS = {"relu": nn.ReLU, "leaky-relu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh, "softplus": nn.Softplus}


def make_critic(opts: LGANGradientOptions) -> nn.Module:
    if opts.activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {opts.activation!r}; valid: {', '.join(_ACTIVATIONS)}")
    mods: list[nn.Module] = []
    width = 2
    for _ in range(opts.layers):
        mods += [nn.Linear(width, opts.hidden), _ACTIVATIONS[opts.activation]()]
        width = opts.hidden
    mods.append(nn.Linear(width, 1))
    return nn.Sequential(*mods)


def _shuffled(points: Tensor, n: int) -> Tensor:
    """``n`` rows: the points repeated to at least ``n`` and shuffled."""
    reps = -(-n // points.shape[0])
    return points.repeat(reps, 1)[torch.randperm(points.shape[0] * reps)][:n]


def train_critic(opts: LGANGradientOptions, variant: str, real: Tensor, fake: Tensor) -> tuple[nn.Module, dict]:
    """Train a fresh critic on the fixed sets with the ``lgan`` objective; returns it and the final
    stats. Each step pairs a random permutation of the reals with the fakes repeated to the same
    size, so the penalty's interpolates cover every real mode."""
    phi, penalty, lam = parse_variant(variant, opts.lam)
    objective = objectives.get("lgan", phi=phi, penalty=penalty, gp_weight=lam)
    torch.manual_seed(opts.seed)
    critic = make_critic(opts)
    opt = torch.optim.Adam(critic.parameters(), lr=opts.lr, betas=(0.5, 0.9))
    n = max(real.shape[0], fake.shape[0])
    stats: dict = {}
    for _ in range(opts.steps):
        r, f = _shuffled(real, n), _shuffled(fake, n)
        loss, stats = objective.critic_loss(critic, r, f)
        if not torch.isfinite(loss):
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = {k: float(v) for k, v in stats.items()}
    final["loss"] = float(loss.detach())
    return critic, final


def fake_gradients(critic: nn.Module, fake: Tensor) -> Tensor:
    """∇f(y) at every fake (the direction in which the generator's loss −f decreases)."""
    y = fake.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(y).sum(), y)
    return g.detach()


def min_angles(grads: Tensor, fake: Tensor, real: Tensor) -> Tensor:
    """For each fake, the smallest angle (degrees) between ∇f(y) and x_i − y over the reals."""
    g, y, x = grads.double(), fake.double(), real.double()
    to_real = x[None, :, :] - y[:, None, :]  # (n_fake, n_real, 2)
    dot = (g[:, None, :] * to_real).sum(-1)
    cross = g[:, None, 0] * to_real[..., 1] - g[:, None, 1] * to_real[..., 0]
    return torch.rad2deg(torch.atan2(cross.abs(), dot)).min(1).values  # atan2: accurate at small angles


def chance_level(fake: Tensor, real: Tensor, angle_deg: float, directions: int) -> float:
    """Mean over fakes of the share of directions on the circle within ``angle_deg`` of some real."""
    theta = torch.arange(directions, dtype=torch.float64) * (2 * math.pi / directions)
    dirs = torch.stack([theta.cos(), theta.sin()], 1)
    shares = []
    for y in fake.double():
        ang = min_angles(dirs, y.expand(directions, 2), real.double())
        shares.append(float((ang <= angle_deg).double().mean()))
    return sum(shares) / len(shares)


def _plot(opts: LGANGradientOptions, real: Tensor, fake: Tensor, results: list[dict], critics: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(4, len(results))
    rows = -(-len(results) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.0 * rows), squeeze=False)
    pts = torch.cat([real, fake])
    lo, hi = pts.min(0).values - 0.6, pts.max(0).values + 0.6
    gx, gy = torch.meshgrid(torch.linspace(float(lo[0]), float(hi[0]), 80),
                            torch.linspace(float(lo[1]), float(hi[1]), 80), indexing="xy")
    for ax in axes.flat:
        ax.axis("off")
    for ax, res, critic in zip(axes.flat, results, critics):
        ax.axis("on")
        with torch.no_grad():
            fv = critic(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)).reshape(gx.shape)
        ax.contourf(gx.numpy(), gy.numpy(), fv.numpy(), levels=20, cmap="coolwarm", alpha=0.35)
        ax.scatter(real[:, 0], real[:, 1], s=8, c="tab:blue", label="real")
        ax.scatter(fake[:, 0], fake[:, 1], s=8, c="tab:red", label="fake")
        g = torch.as_tensor(res["gradients"])
        ok = torch.as_tensor(res["min_angle_deg"]) <= opts.angle_deg
        u = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
        for mask, color in ((ok, "k"), (~ok, "tab:orange")):
            if bool(mask.any()):
                ax.quiver(fake[mask, 0], fake[mask, 1], u[mask, 0], u[mask, 1], color=color,
                          angles="xy", scale_units="xy", scale=1.6, width=0.005)
        ax.set_title(f"{res['label']}\n{100 * res['share']:.0f}% within {opts.angle_deg:g}° "
                     f"(chance {100 * res['chance']:.0f}%)", fontsize=10)
        ax.set_aspect("equal")
        ax.set_xlim(float(lo[0]), float(hi[0]))
        ax.set_ylim(float(lo[1]), float(hi[1]))
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=8, loc="lower left")
    fig.suptitle(f"critic gradient ∇f at the fakes (black: points at a real sample within {opts.angle_deg:g}°; "
                 f"orange: does not); background: f (red high, blue low)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@register("lgan-gradients", LGANGradientOptions,
          quick={"variants": ("exp:maxgp", "linear:maxgp", "softplus:none"), "steps": 300, "hidden": 64,
                 "real_per_mode": 16, "fakes": 16, "chance_directions": 720},
          help="LGAN critic gradients at fixed fakes, one panel per phi, MaxGP (seed 004 fig. 3)")
def lgan_gradients(opts: LGANGradientOptions, out_dir: Path) -> dict:
    if opts.steps < 1 or opts.hidden < 1 or opts.layers < 1 or not opts.variants:
        raise ValueError("steps, hidden, layers must be positive and variants non-empty")
    if not 0 < opts.angle_deg < 180:
        raise ValueError("angle_deg must be in (0, 180)")
    for v in opts.variants:
        parse_variant(v, opts.lam)
    torch.set_num_threads(max(1, opts.threads))
    real, fake = point_sets(opts)
    chance = chance_level(fake, real, opts.angle_deg, opts.chance_directions)
    results, critics = [], []
    for variant in opts.variants:
        phi, penalty, lam = parse_variant(variant, opts.lam)
        critic, stats = train_critic(opts, variant, real, fake)
        grads = fake_gradients(critic, fake)
        angles = min_angles(grads, fake, real)
        label = f"φ = {phi}, " + ("no penalty" if lam == 0 else f"{penalty.upper()} λ = {lam:g}")
        results.append({
            "variant": variant, "phi": phi, "penalty": "none" if lam == 0 else penalty, "lam": lam, "label": label,
            "share": float((angles <= opts.angle_deg).float().mean()),
            "median_angle_deg": float(angles.median()),
            "chance": chance,
            "grad_norm_mean": float(grads.norm(dim=1).mean()),
            "final_stats": stats,
            "gradients": grads, "min_angle_deg": angles,
        })
        critics.append(critic)
    path = out_dir / "lgan-gradients.png"
    _plot(opts, real, fake, results, critics, path)
    summary = [f"share of fakes whose ∇f points within {opts.angle_deg:g}° of a real sample "
               f"(chance level {100 * chance:.0f}%):"]
    for r in results:
        summary.append(f"  {r['label']:32s} {100 * r['share']:5.1f}%  median angle {r['median_angle_deg']:5.1f}°  "
                       f"mean ‖∇f‖ {r['grad_norm_mean']:.3g}")
    payload = {"options": opts, "real": real, "fake": fake, "chance": chance, "results": results,
               "figures": [str(path)], "summary": summary}
    write_json(out_dir / "lgan-gradients.json", payload)
    return payload
