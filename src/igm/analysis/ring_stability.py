"""``igm figure ring-stability``: GRAM against a GAN (and an MMD-net) on the 8-Gaussian ring with
std 0.01, over generator hidden sizes {20, 100, 200} × noise dimensions {2, 4, 8, 16} (seed 003,
section 3.4, figure 2 and appendix A; figure 6 for MMD-nets).

Every run uses the paper's appendix A.1 settings, completed from the authors' Julia code
(``examples/Hyper.toml``, ``parallel_exps.jl``; Adam's β₂ = 0.999 and the Gaussian noise come from there):

- generator: ``z → h → h → 2`` MLP, ReLU, no output activation, no batch norm, z ~ N(0, I);
  ``h`` and ``dim z`` are the varied settings;
- batch 200 real and 200 generated points;
- GRAM: critic ``2-100-100-10`` (ReLU), one Gaussian kernel of bandwidth 1 in the critic's space,
  Adam lr 1e-3, β = (0.5, 0.999), simultaneous updates (one critic and one generator step per batch);
- GAN: discriminator ``2-100-100-1`` (ReLU; the appendix lists "2-100-100-10" for the GAN too, but
  the authors' discriminator has one sigmoid output), the non-saturating loss, Adam lr 1e-4,
  β = (0.5, 0.999), one discriminator step per generator step;
- MMD-net: one Gaussian kernel of bandwidth 1 on the raw points, RMSprop lr 1e-3, the generator
  trained on sqrt(biased MMD²).

The paper trains "2,000 epochs" of a fixed set of 1,000 points (the authors' ``get_data``), i.e.
10,000 steps of batch 200, with constant learning rates; so does the default here (about 5 minutes
per GRAM run on one CPU thread). With std 0.01, GRAM under these settings only starts to gather
its samples at the modes after about 5,000 steps, so a much shorter run says nothing about it.

The varied hidden size is the generator's (the authors' ``parallel_exps.jl`` varies ``Dhs_g``; the
paper's caption says "critic", its text "generator capacity"). Note that the authors' released code
draws the ring with std 0.2 (``Ring(8, 2, 2f-1)``), not the 0.01 the paper states; ``std`` is an option.

A run "converged" when its final samples cover every ring mode and enough of them are of high
quality (within 3 std of a mode): :func:`converged` on the statistics of :func:`ring_statistics`,
with the thresholds as options. The default share, 0.25, is about 6× what a generator spread evenly
along the ring's circle would get (8 · 6σ / (2π · 2) ≈ 3.8% for σ = 0.01), so it asks for samples
gathered at the modes while tolerating the thin "bridges" between modes that a continuous generator
of Gaussian noise cannot avoid; the table also counts convergence at 0.1 and 0.5. A run whose losses
turned non-finite (after the loop's rollbacks) is reported as diverged.

The runs live under ``RUNS/METHOD/hH-zZ-seedS`` (``runs_dir``, default ``OUT/runs``). The figure is
resumable: a finished run (its ``ring_result.json`` with the same configuration) is read back, an
interrupted one resumes from its last checkpoint, and a run directory of another configuration is
started afresh.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from igm.analysis.figures import register, write_json

__all__ = [
    "RingStabilityOptions",
    "PAPER_SETTINGS",
    "ring_statistics",
    "converged",
    "ring_verdict",
    "run_config",
    "markdown_table",
    "ring_stability",
]

# Appendix A.1 of seed 003 (and the authors' Hyper.toml for the ring): per-method settings.
PAPER_SETTINGS: dict[str, dict[str, Any]] = {
    "gram": {
        "preset": "ring-gram",
        "objective": {"name": "gram", "params": {"sigmas": [1.0]}},
        "critic_out": 10,
        "critic_params": {"hidden": 100, "depth": 2, "activation": "relu"},
        "optim": {"optimizer": "adam", "lr_generator": 1e-3, "lr_critic": 1e-3, "betas": [0.5, 0.999]},
        "n_critic": 1,
    },
    "gan": {
        "preset": "ring-gan",
        "objective": {"name": "gan", "params": {}},
        "critic_out": 1,
        "critic_params": {"hidden": 100, "depth": 2, "activation": "relu"},
        "optim": {"optimizer": "adam", "lr_generator": 1e-4, "lr_critic": 1e-4, "betas": [0.5, 0.999]},
        "n_critic": 1,
    },
    "mmd-net": {
        "preset": "ring-mmd-net",
        "objective": {"name": "mmd-net", "params": {"kernel": {"name": "gaussian", "sigma": 1.0}}},
        "optim": {"optimizer": "rmsprop", "lr_generator": 1e-3, "lr_critic": 1e-3},
        "n_critic": 1,
    },
}


SENSITIVITY = (0.1, 0.25, 0.5)  # high-quality thresholds the table also counts


@dataclass
class RingStabilityOptions:
    methods: tuple[str, ...] = ("gram", "gan", "mmd-net")  # keys of PAPER_SETTINGS, or any NAME with a ring-NAME preset
    hidden_sizes: tuple[int, ...] = (20, 100, 200)  # generator hidden width (two hidden layers)
    z_dims: tuple[int, ...] = (2, 4, 8, 16)  # noise dimension
    steps: int = 10000  # generator steps per run (the paper: 2,000 epochs of 1,000 points, batch 200)
    batch_size: int = 200
    std: float = 0.01  # std of each ring Gaussian
    radius: float = 2.0  # ring radius
    seed: int = 0
    samples: int = 2000  # final samples per run, scored and drawn
    min_modes: int = 8  # converged: at least this many modes covered ...
    min_high_quality: float = 0.25  # ... and at least this share of samples within `quality_radius` std of a mode
    quality_radius: float = 3.0  # high quality: within this many std of the nearest mode
    mode_share: float = 0.1  # a mode is covered when it gets ≥ mode_share × (samples / modes) high-quality samples
    threads: int = 1  # torch CPU threads per run
    runs_dir: str = ""  # where the run directories go (default: OUT/runs)
    progress: bool = False  # per-run progress bars


# ----------------------------------------------------------------------------------------------
# the convergence criterion (pure functions)


def ring_statistics(samples, modes, std: float, quality_radius: float = 3.0, mode_share: float = 0.1) -> dict[str, Any]:
    """Mode statistics of ``samples`` (n, 2) against ``modes`` (k, 2) Gaussians of ``std``.

    ``high_quality``: share of samples within ``quality_radius · std`` of their nearest mode;
    ``per_mode``: high-quality samples per mode; ``modes_covered``: modes with at least
    ``max(1, mode_share · n / k)`` of them; ``finite``: whether every sample is finite (non-finite
    samples count as low quality)."""
    x = torch.as_tensor(np.asarray(samples), dtype=torch.float64)
    mu = torch.as_tensor(np.asarray(modes), dtype=torch.float64)
    if x.dim() != 2 or x.shape[1] != 2 or mu.dim() != 2 or mu.shape[1] != 2 or len(mu) == 0:
        raise ValueError(f"samples must be (n, 2) and modes (k, 2); got {tuple(x.shape)} and {tuple(mu.shape)}")
    if not std > 0 or not quality_radius > 0 or not mode_share >= 0:
        raise ValueError("std and quality_radius must be positive and mode_share non-negative")
    n, k = x.shape[0], mu.shape[0]
    finite = torch.isfinite(x).all(1)
    dist = torch.cdist(torch.where(finite[:, None], x, torch.zeros_like(x)), mu)
    nearest, which = dist.min(1)
    good = finite & (nearest <= quality_radius * std)
    per_mode = torch.bincount(which[good], minlength=k)
    min_count = max(1, math.ceil(mode_share * n / k)) if n else 1
    return {
        "samples": int(n),
        "modes": int(k),
        "high_quality": float(good.double().mean()) if n else 0.0,
        "per_mode": [int(c) for c in per_mode],
        "min_count": int(min_count),
        "modes_covered": int((per_mode >= min_count).sum()),
        "finite": bool(finite.all()),
    }


def converged(stats: dict[str, Any], min_modes: int = 8, min_high_quality: float = 0.25) -> bool:
    """True when the run covers at least ``min_modes`` modes with a high-quality share of at least
    ``min_high_quality`` and every sample is finite (``stats`` from :func:`ring_statistics`)."""
    ok = stats["modes_covered"] >= min_modes and stats["high_quality"] >= min_high_quality
    return bool(ok and stats.get("finite", True))


def ring_verdict(samples, dataset, min_modes: int | None = None, min_high_quality: float = 0.25,
                 quality_radius: float = 3.0, mode_share: float = 0.1) -> dict[str, Any]:
    """:func:`ring_statistics` of ``samples`` against ``dataset.modes`` / ``dataset.std`` plus the
    ``converged`` flag (``min_modes`` defaults to every mode of the dataset)."""
    stats = ring_statistics(samples, dataset.modes, float(dataset.std), quality_radius, mode_share)
    need = stats["modes"] if min_modes is None else min_modes
    return {**stats, "converged": converged(stats, need, min_high_quality)}


# ----------------------------------------------------------------------------------------------
# the runs


def run_config(method: str, hidden: int, z_dim: int, opts: RingStabilityOptions):
    """The :class:`~igm.train.RunConfig` of one run: the method's preset with the paper's settings."""
    from igm.train import presets
    from igm.train.config import RunConfig, from_dict, to_dict

    settings = PAPER_SETTINGS.get(method, {"preset": f"ring-{method}"})
    data = to_dict(presets.get(settings["preset"]))
    data["description"] = f"ring-stability: {method}, generator hidden {hidden}, z_dim {z_dim}"
    data["data"] = {"name": "ring", "params": {"std": float(opts.std), "radius": float(opts.radius), "modes": 8}}
    model = data["model"]
    model.update(generator="mlp", z_dim=int(z_dim), z_dist="normal", spectral=model.get("spectral", "none"))
    model["generator_params"] = {"hidden": int(hidden), "depth": 2, "activation": "relu"}
    if "objective" in settings:
        data["objective"] = settings["objective"]
    if "critic_params" in settings:
        model["critic"] = "mlp"
        model["critic_params"] = dict(settings["critic_params"])
    if "critic_out" in settings:
        model["critic_out"] = settings["critic_out"]
    data["optim"].update(settings.get("optim", {}), schedule="constant", grad_clip=None)
    steps = int(opts.steps)
    data["train"].update(
        steps=steps, batch_size=int(opts.batch_size), seed=int(opts.seed), threads=int(opts.threads),
        progress=bool(opts.progress), ema=None, log_every=max(1, min(steps, 100)),
        sample_every=0, checkpoint_every=max(1, min(steps, 1000)),
    )
    if "n_critic" in settings:
        data["train"].update(n_critic=settings["n_critic"], extra_critic_steps=0)
    data["eval"].update(every=0, samples=int(opts.samples))
    return from_dict(RunConfig, data)


def _final_samples(generator: torch.nn.Module, z_dim: int, n: int, seed: int, device) -> np.ndarray:
    from igm.nn.latent import sample_latent

    g = torch.Generator().manual_seed(seed + 424242)
    was = generator.training
    generator.eval()
    with torch.no_grad():
        x = generator(sample_latent(n, z_dim, "normal", g).to(device)).double().cpu().numpy()
    generator.train(was)
    return x


def _one_run(method: str, hidden: int, z_dim: int, opts: RingStabilityOptions, run_dir: Path, dataset) -> dict:
    from igm.train import TrainingDiverged, build_run, load_config, load_run, train
    from igm.train.checkpoint import resumable
    from igm.train.config import to_dict

    result_path = run_dir / "ring_result.json"
    samples_path = run_dir / "final_samples.npy"
    cfg = run_config(method, hidden, z_dim, opts)
    if result_path.is_file():
        saved = json.loads(result_path.read_text())
        if saved.get("config") == to_dict(cfg) and saved.get("samples") == opts.samples and samples_path.is_file():
            return {**saved, "x": np.load(samples_path)}
    t0 = time.perf_counter()
    status, error = "finished", None
    resume = False
    if resumable(run_dir / "checkpoints") and (run_dir / "config.yaml").is_file():
        resume = to_dict(load_config(run_dir / "config.yaml")) == to_dict(cfg)
    if not resume and run_dir.exists():  # another setting (or a finished run asked again): start afresh
        shutil.rmtree(run_dir)
    run = load_run(run_dir) if resume else build_run(cfg, run_dir)
    try:
        summary = train(run, resume=resume)
    except TrainingDiverged as err:
        status, error, summary = "diverged", str(err), {"step": run.step}
    x = _final_samples(run.generator, z_dim, opts.samples, opts.seed, run.device)
    np.save(samples_path, x)
    result = {
        "method": method, "hidden": hidden, "z_dim": z_dim, "seed": opts.seed, "steps": opts.steps,
        "samples": opts.samples, "status": status, "error": error, "step": summary.get("step"),
        "train_seconds": summary.get("seconds"), "seconds": time.perf_counter() - t0,
        "run_dir": str(run_dir), "config": to_dict(cfg),
    }
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    return {**result, "x": x}


def _judge(row: dict, dataset, opts: RingStabilityOptions) -> dict:
    x = row.get("x")
    if x is None or row["status"] == "diverged":
        stats = ring_statistics(np.zeros((0, 2)) if x is None else x, dataset.modes, dataset.std,
                                opts.quality_radius, opts.mode_share)
        return {**stats, "converged": False}
    return ring_verdict(x, dataset, opts.min_modes, opts.min_high_quality, opts.quality_radius, opts.mode_share)


# ----------------------------------------------------------------------------------------------
# table and figure


def _cell(r: dict) -> str:
    mark = "✓" if r["converged"] else ("✗ (NaN)" if r["status"] == "diverged" else "✗")
    return f"{mark} {r['modes_covered']}/{r['modes']}, {100 * r['high_quality']:.0f}%"


def markdown_table(rows: list[dict], opts: RingStabilityOptions) -> str:
    """One table per method: rows = hidden sizes, columns = noise dimensions; each cell
    ``✓|✗ modes covered/8, high-quality %``; then the converged counts."""
    lines = [
        f"Converged = at least {opts.min_modes} modes covered (≥ {opts.mode_share:g} × its fair share of "
        f"high-quality samples each) and ≥ {100 * opts.min_high_quality:.0f}% of the {opts.samples} samples within "
        f"{opts.quality_radius:g} std of a mode; {opts.steps} generator steps, batch {opts.batch_size}, seed {opts.seed}.",
        "",
    ]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for method in methods:
        mine = {(r["hidden"], r["z_dim"]): r for r in rows if r["method"] == method}
        hs = list(dict.fromkeys(r["hidden"] for r in rows if r["method"] == method))
        zs = list(dict.fromkeys(r["z_dim"] for r in rows if r["method"] == method))
        lines.append(f"**{method}**")
        lines.append("")
        lines.append("| hidden \\ z | " + " | ".join(f"z = {z}" for z in zs) + " |")
        lines.append("|---|" + "---|" * len(zs))
        for h in hs:
            lines.append(f"| {h} | " + " | ".join(_cell(mine[(h, z)]) if (h, z) in mine else "" for z in zs) + " |")
        lines.append("")
    alt = [t for t in SENSITIVITY if t != opts.min_high_quality]
    lines.append("| method | converged | runs | all modes covered | "
                 + " | ".join(f"converged at ≥ {100 * t:.0f}% HQ" for t in alt) + " | diverged (non-finite) |")
    lines.append("|---|---|---|---|" + "---|" * len(alt) + "---|")
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        full = [r for r in mine if r["status"] != "diverged" and r["modes_covered"] >= opts.min_modes]
        lines.append(
            f"| {method} | {sum(r['converged'] for r in mine)} | {len(mine)} | {len(full)} | "
            + " | ".join(str(sum(r["high_quality"] >= t for r in full)) for t in alt)
            + f" | {sum(r['status'] == 'diverged' for r in mine)} |"
        )
    return "\n".join(lines)


def _panel(ax, r: dict, modes: np.ndarray, lim: float) -> None:
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    x = r.get("x")
    outside = 0.0
    if x is not None and len(x):
        fin = np.isfinite(x).all(1)
        inside = fin & (np.abs(x) <= lim).all(1)
        outside = 1.0 - inside.mean()
        ax.scatter(x[inside, 0], x[inside, 1], s=1.5, c="tab:orange", alpha=0.35, linewidths=0, rasterized=True)
    ax.scatter(modes[:, 0], modes[:, 1], marker="+", s=30, c="tab:blue", linewidths=0.9)
    color = "tab:green" if r["converged"] else "tab:red"
    for spine in ax.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(1.5)
    note = f"\n{100 * outside:.0f}% outside" if outside >= 0.005 else ""
    ax.set_title(f"h={r['hidden']} z={r['z_dim']}: {_cell(r)}{note}", fontsize=6.5, color=color)


def _plot(rows: list[dict], modes: np.ndarray, out_dir: Path, opts: RingStabilityOptions) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lim = 1.6 * float(np.abs(modes).max()) if len(modes) else 3.0
    methods = list(dict.fromkeys(r["method"] for r in rows))
    hs = list(dict.fromkeys(r["hidden"] for r in rows))
    zs = list(dict.fromkeys(r["z_dim"] for r in rows))
    index = {(r["method"], r["hidden"], r["z_dim"]): r for r in rows}
    paths = []
    nrows, ncols = len(methods) * len(hs), len(zs)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(1.9 * ncols + 0.6, 4.5), 1.95 * nrows + 0.6), squeeze=False)
    for i, method in enumerate(methods):
        for j, h in enumerate(hs):
            for k, z in enumerate(zs):
                ax = axes[i * len(hs) + j][k]
                r = index.get((method, h, z))
                if r is None:
                    ax.axis("off")
                    continue
                _panel(ax, r, modes, lim)
            axes[i * len(hs) + j][0].set_ylabel(f"{method}\nhidden {h}", fontsize=8)
    fig.suptitle(
        f"8-Gaussian ring (std {opts.std:g}), {opts.steps} steps, seed {opts.seed}\n"
        "final samples (orange), modes (+); green = converged, red = not", fontsize=8,
    )
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / (1.95 * nrows + 0.6)))
    path = out_dir / "ring-stability.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    for method in methods:
        fig, axes = plt.subplots(len(hs), len(zs), figsize=(max(2.3 * len(zs), 4.5), 2.35 * len(hs) + 0.5), squeeze=False)
        for j, h in enumerate(hs):
            for k, z in enumerate(zs):
                r = index.get((method, h, z))
                if r is None:
                    axes[j][k].axis("off")
                    continue
                _panel(axes[j][k], r, modes, lim)
        n_ok = sum(index[(method, h, z)]["converged"] for h in hs for z in zs if (method, h, z) in index)
        n_all = sum((method, h, z) in index for h in hs for z in zs)
        fig.suptitle(f"{method}: {n_ok}/{n_all} converged after {opts.steps} steps\n"
                     "(rows: generator hidden size; columns: noise dimension)", fontsize=9)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (2.35 * len(hs) + 0.5)))
        p = out_dir / f"ring-stability-{method}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


@register(
    "ring-stability", RingStabilityOptions,
    quick={"methods": ("gram", "gan"), "hidden_sizes": (20,), "z_dims": (2,), "steps": 20, "samples": 400},
    help="GRAM vs GAN vs MMD-net on the std-0.01 ring over hidden sizes × noise dims (seed 003 fig. 2)",
)
def ring_stability(opts: RingStabilityOptions, out_dir: Path) -> dict:
    import igm.data

    if opts.steps < 1 or opts.samples < 1 or opts.batch_size < 2:
        raise ValueError("steps and samples must be positive and batch_size at least 2")
    if not opts.methods or not opts.hidden_sizes or not opts.z_dims:
        raise ValueError("methods, hidden_sizes and z_dims must be non-empty")
    if not 0 <= opts.min_high_quality <= 1:
        raise ValueError(f"min_high_quality must be in [0, 1]; got {opts.min_high_quality}")
    dataset = igm.data.get("ring", std=float(opts.std), radius=float(opts.radius), modes=8)
    runs_dir = Path(opts.runs_dir) if opts.runs_dir else out_dir / "runs"
    for method in opts.methods:
        run_config(method, opts.hidden_sizes[0], opts.z_dims[0], opts)  # unknown methods fail before any training
    rows = []
    for method in opts.methods:
        for h in opts.hidden_sizes:
            for z in opts.z_dims:
                run_dir = runs_dir / method / f"h{h}-z{z}-seed{opts.seed}"
                row = _one_run(method, h, z, opts, run_dir, dataset)
                row.update(_judge(row, dataset, opts))
                rows.append(row)
                print(f"{method} h={h} z={z}: {_cell(row)} ({row['seconds']:.0f} s)", flush=True)
    table = markdown_table(rows, opts)
    (out_dir / "ring-stability.md").write_text(table + "\n")
    figures = _plot(rows, dataset.modes.double().numpy(), out_dir, opts)
    public = [{k: v for k, v in r.items() if k not in ("x", "config")} for r in rows]
    counts = {m: {"converged": sum(r["converged"] for r in public if r["method"] == m),
                  "runs": sum(r["method"] == m for r in public)} for m in opts.methods}
    payload = {"options": opts, "counts": counts, "runs": public, "figures": [str(p) for p in figures],
               "summary": [f"{m}: {c['converged']}/{c['runs']} converged" for m, c in counts.items()]}
    write_json(out_dir / "ring-stability.json", payload)
    return payload
