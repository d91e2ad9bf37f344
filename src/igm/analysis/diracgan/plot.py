"""The DiracGAN figure's PNGs: the vector fields (figures 1 and 5) and the critics / distances (1 c, d)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from igm.analysis.diracgan.methods import METHODS, build_objective
from igm.analysis.diracgan.options import DiracFigureOptions

__all__ = ["plot_fields", "plot_critics"]


def plot_fields(result: dict, opts: DiracFigureOptions, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    names = list(opts.methods)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.3 * rows), squeeze=False)
    norm = Normalize(vmin=-6.0, vmax=1.0)
    mesh = None
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        f = result["fields"][name]
        th, ps = np.asarray(f["theta"]), np.asarray(f["psi"])
        u, v = np.asarray(f["u"]), np.asarray(f["v"])
        speed = np.log10(np.hypot(u, v) + 1e-12)
        mesh = ax.pcolormesh(th, ps, np.clip(speed, -6, 1), norm=norm, cmap="magma", shading="gouraud")
        norm_uv = np.hypot(u, v)
        if len(th) >= 10 and len(ps) >= 10 and norm_uv.max() > 0:
            ax.streamplot(th, ps, u, v, color="white", density=0.8, linewidth=0.6, arrowsize=0.7)
        else:  # coarse grids (lipmmd, quick mode): unit arrows
            scale = np.where(norm_uv > 0, norm_uv, 1.0)
            ax.quiver(th, ps, u / scale, v / scale, color="white", angles="xy", pivot="middle", width=0.006)
        for k, traj in enumerate(result["trajectories"][name]):
            main = k == 0
            ax.plot(traj["theta"], traj["psi"], color="tab:cyan" if main else "tab:green", lw=1.6 if main else 1.1)
            ax.plot(traj["theta"][0], traj["psi"][0], "o", color="tab:cyan" if main else "tab:green", ms=4)
            ax.plot(traj["theta"][-1], traj["psi"][-1], "x", color="white", ms=5, mew=1.5)
        clip = build_objective(name, opts).constraint  # weight clipping: ψ is projected onto [−c, c]
        if clip is not None:
            for s in (-clip.c, clip.c):
                ax.axhline(s, color="white", ls="--", lw=0.8)
        ax.set_xlim(th.min(), th.max())
        ax.set_ylim(ps.min(), ps.max())
        final = result["final"][name]
        ax.set_title(f"{METHODS[name].label}\nfinal |θ| = {final['abs_theta']:.2g} after {opts.steps} steps",
                     fontsize=8.5)
        ax.set_xlabel("θ (generator)", fontsize=8)
        ax.set_ylabel("ψ (critic)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"DiracGAN (P = δ₀, Q = δ_θ, φ_ψ(x) = ψx): fields (−∂θ L_G, −∂ψ L_C), colour log₁₀ speed; "
                 f"cyan: {opts.steps} alternating steps from ({opts.start_theta:g}, {opts.start_psi:g}), "
                 f"lr {opts.lr:g}", fontsize=9)
    fig.subplots_adjust(left=0.05, right=0.92, bottom=0.06, top=1.0 - 0.85 / (3.3 * rows), wspace=0.3,
                        hspace=0.45)  # fixed margins: tight_layout costs seconds per call
    if mesh is not None:
        cax = fig.add_axes((0.94, 0.2, 0.012, 0.6))
        fig.colorbar(mesh, cax=cax, label="log₁₀ ‖field‖")
    _save(fig, path, opts.dpi, quantise=True)
    plt.close(fig)


def _save(fig, path: Path, dpi: int, quantise: bool = False) -> None:
    """Save as PNG; ``quantise``: a 256-colour palette (the smooth speed maps compress ~3× better)."""
    if not quantise:
        fig.savefig(path, dpi=dpi)
        return
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    with Image.open(buf) as im:
        im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def plot_critics(result: dict, opts: DiracFigureOptions, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_c, ax_d) = plt.subplots(1, 2, figsize=(11, 4))
    crit = result["critics"]
    x = np.asarray(crit["x"])
    for name, c in crit["curves"].items():
        sup = " (sup as ψ → ∞)" if c["saturated"] else ""
        ax_c.plot(x, c["normalised"], lw=1.3, label=f"{METHODS[name].label}, ψ = {c['psi']:.3g}{sup}")
    ax_c.axvline(0.0, color="grey", lw=0.6, ls=":")
    ax_c.axvline(opts.critic_theta, color="grey", lw=0.6, ls=":")
    ax_c.set_title(f"(c) optimal critics at θ = {opts.critic_theta:g}, scaled to f(0) = 1, f(θ) = 0", fontsize=9)
    ax_c.set_xlabel("x")
    ax_c.legend(fontsize=7)
    dist = result["distances"]
    th = np.asarray(dist["theta"])
    for name, vals in dist["values"].items():
        ax_d.plot(th, vals, "o-", ms=3, lw=1.2, label=METHODS[name].label)
    ax_d.set_title("(d) distance optimised over ψ (sup on a ψ grid), as a function of θ", fontsize=9)
    ax_d.set_xlabel("θ")
    ax_d.set_ylabel("sup_ψ D_ψ(δ₀, δ_θ)")
    ax_d.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path, opts.dpi)
    plt.close(fig)
