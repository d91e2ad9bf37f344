"""The seed papers' MNIST figures.

* ``igm figure mnist-gcmmd-vs-smmd`` (seed 000, figure 8(d)): KID on the shipped MNIST net over
  training for GCMMD, SN-GCMMD and SMMD over several seeds, with the paper's claim that SMMD
  converges faster than GCMMD read off the curves. The runs are the MNIST comparison's (the same
  presets, widths, steps and ``OUT/runs/PRESET/seedN`` layout): with the comparison's ``--out`` the
  figure reuses its runs and trains nothing.
* ``igm figure mnist-gram`` (seed 003, figure 7): ``mnist-gram-paper`` (the A.3 setup) with sample
  grids over training, and the generator loss (MMD² in the critic's space) and the ratio-matching
  objective (the critic's Pearson-divergence estimate) on one plot. The paper's reading is that,
  unlike a GAN's two losses, these two fall together.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from igm.analysis.comparison import ComparisonOptions, kid_curve, run_all, train_or_read
from igm.analysis.comparison_plots import mean_curve, pyplot, save
from igm.analysis.figures import register, write_json

__all__ = ["GcmmdVsSmmdOptions", "MnistGramOptions", "converge_step", "spearman", "gcmmd_vs_smmd", "mnist_gram"]

GCMMD_VS_SMMD = ("mnist-gcmmd", "mnist-sn-gcmmd", "mnist-smmd")


@dataclass
class GcmmdVsSmmdOptions:
    seeds: int = 3
    steps: int | None = None  # generator steps (None: the presets' own 1500, as in the MNIST comparison)
    eval_every: int = 150  # KID every N steps (the MNIST comparison's)
    eval_samples: int = 1000
    overrides: tuple[str, ...] = ()  # config overrides for all three
    threads: int = 1
    progress: bool = False


def converge_step(curve: list[tuple[int, float, float]], threshold: float) -> int | None:
    """The first step of a ``(step, mean, std)`` curve whose mean KID is at or below ``threshold``."""
    return next((s for s, m, _ in curve if m <= threshold), None)


def _plot_kid(per: dict[str, dict], path: Path, threshold: float) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for (name, p), color in zip(per.items(), ("tab:red", "tab:orange", "tab:blue")):
        steps, means, stds = zip(*p["curve"])
        lo = [max(m - s, 1e-3) for m, s in zip(means, stds)]
        hi = [m + s for m, s in zip(means, stds)]
        label = f"{name.removeprefix('mnist-')} ({p['seconds_per_step']:.2f} s/step)"
        for ax, xs in ((axes[0], steps), (axes[1], [s * p["seconds_per_step"] for s in steps])):
            ax.plot(xs, means, color=color, lw=2, label=label)
            ax.fill_between(xs, lo, hi, color=color, alpha=0.2)
    for ax, xlabel in zip(axes, ("generator step", "training seconds (fastest seed's time per step)")):
        ax.axhline(threshold, color="0.5", ls="--", lw=1)
        ax.set_xlabel(xlabel)
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("MNIST-net KID ×10³ (mean ± std over seeds)")
    axes[0].legend(fontsize=8)
    return save(fig, path)


@register("mnist-gcmmd-vs-smmd", GcmmdVsSmmdOptions,
          quick={"seeds": 2, "steps": 4, "eval_every": 2, "eval_samples": 64,
                 "overrides": ("model.generator_params.base_channels=4", "model.critic_params.base_channels=4")},
          help="seed 000 fig. 8(d): MNIST-net KID over training, GCMMD vs SN-GCMMD vs SMMD, several seeds")
def gcmmd_vs_smmd(opts: GcmmdVsSmmdOptions, out_dir: Path) -> dict:
    cmp = ComparisonOptions(presets=GCMMD_VS_SMMD, seeds=opts.seeds, steps=opts.steps, eval_every=opts.eval_every,
                            eval_samples=opts.eval_samples, overrides=opts.overrides, threads=opts.threads,
                            progress=opts.progress)
    rows = run_all(list(GCMMD_VS_SMMD), cmp, out_dir)
    per = {}
    for name in GCMMD_VS_SMMD:
        mine = [r for r in rows if r["preset"] == name]
        curve = mean_curve(mine)
        times = [r["seconds"] / r["step"] for r in mine]
        per[name] = {"curve": curve, "final": curve[-1][1], "final_std": curve[-1][2],
                     "mean_log_kid": statistics.fmean(math.log(max(m, 1e-6)) for _, m, _ in curve),
                     "seconds_per_step": min(times), "seeds": [r["kid"] for r in mine]}
    # the level every method reaches by the end (on average): the worst final mean KID
    threshold = max(p["final"] for p in per.values())
    for p in per.values():
        p["steps_to_threshold"] = converge_step(p["curve"], threshold)
    smmd = per["mnist-smmd"]
    gcmmds = [per["mnist-gcmmd"], per["mnist-sn-gcmmd"]]
    faster_steps = all(smmd["steps_to_threshold"] < g["steps_to_threshold"] for g in gcmmds)
    lower_area = all(smmd["mean_log_kid"] < g["mean_log_kid"] for g in gcmmds)
    verdict = ("reproduced" if faster_steps and lower_area else
               "partly reproduced" if faster_steps or lower_area else "not reproduced")
    reading = (
        f"threshold KID {threshold:.2f} (the worst final mean); steps to reach it: "
        + ", ".join(f"{n.removeprefix('mnist-')} {p['steps_to_threshold']}" for n, p in per.items())
        + "; mean log-KID over training: "
        + ", ".join(f"{n.removeprefix('mnist-')} {p['mean_log_kid']:.2f}" for n, p in per.items())
        + f". 'SMMD converges faster than GCMMD': {verdict}"
    )
    figure = _plot_kid(per, out_dir / "mnist-gcmmd-vs-smmd.png", threshold)
    payload = {"options": opts, "runs": rows, "methods": per, "threshold": threshold, "verdict": verdict,
               "figures": [str(figure)], "summary": [reading]}
    write_json(out_dir / "mnist-gcmmd-vs-smmd.json", payload)
    return payload


@dataclass
class MnistGramOptions:
    steps: int = 2000  # the paper's figure 7 trains 5,000 iterations; 2,000 keep it near 15 minutes here
    snapshots: int = 5  # sample grids (and KID) at this many evenly spaced steps
    seed: int = 0
    data_path: str | None = None  # MNIST IDX directory for the full set; None: the 5,000 shipped digits
    eval_samples: int = 1000
    log_every: int = 20
    threads: int = 1
    progress: bool = False
    overrides: tuple[str, ...] = field(default=())  # extra config overrides (e.g. smaller nets in tests)


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (scipy's, average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _gram_config(opts: MnistGramOptions):
    from igm.train import apply_overrides, presets

    if opts.steps < 1 or opts.snapshots < 1 or opts.log_every < 1 or opts.steps % opts.snapshots:
        raise ValueError("steps, snapshots and log_every must be positive, and snapshots must divide steps")
    data = ["data.name=mnist", f"data.params.path={opts.data_path}"] if opts.data_path else ["data.name=mnist5k", "data.params={}"]
    every = opts.steps // opts.snapshots
    return apply_overrides(presets.get("mnist-gram-paper"), [
        *data, *opts.overrides, f"train.steps={opts.steps}", f"train.seed={opts.seed}", f"train.threads={opts.threads}",
        f"train.progress={str(opts.progress).lower()}", f"train.log_every={opts.log_every}",
        f"train.sample_every={every}", f"eval.every={every}", f"eval.samples={opts.eval_samples}",
        f"train.checkpoint_every={every}",
    ])


def _plot_gram(curves: dict, kid: list, grids: list, path: Path) -> Path:
    from PIL import Image

    plt = pyplot()
    fig = plt.figure(figsize=(2.3 * max(len(grids), 3), 6.2))
    top = fig.add_gridspec(2, 1, height_ratios=[1.2, 1])
    ax = fig.add_subplot(top[0])
    ax.plot(curves["step"], curves["generator_loss"], color="tab:blue", lw=1.2)
    ax.set_ylabel("generator loss: MMD² in critic space", color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    twin = ax.twinx()
    twin.plot(curves["step"], curves["pearson"], color="tab:red", lw=1.2)
    twin.set_ylabel("ratio matching: Pearson estimate", color="tab:red")
    twin.set_yscale("log")
    ax.grid(alpha=0.3)
    bottom = top[1].subgridspec(1, len(grids))
    for i, (step, png) in enumerate(grids):
        a = fig.add_subplot(bottom[i])
        with Image.open(png) as im:
            a.imshow(im.convert("RGB"))
        a.axis("off")
        k = dict(kid).get(step)
        a.set_title(f"iteration {step}" + (f"\nKID {k:.1f}" if k is not None else ""), fontsize=8)
    return save(fig, path)


@register("mnist-gram", MnistGramOptions,
          quick={"steps": 6, "snapshots": 2, "log_every": 1, "eval_samples": 64,
                 "overrides": ("model.generator_params.hidden=[16,16]", "model.critic_params.channels=[4,4,4]",
                               "train.batch_size=32")},
          help="seed 003 fig. 7: GRAM on MNIST (A.3 setup), samples over training, generator loss and ratio matching")
def mnist_gram(opts: MnistGramOptions, out_dir: Path) -> dict:
    from igm.train.artifacts import read_metrics

    run_dir = out_dir / "run"
    train_or_read(_gram_config(opts), run_dir)
    by_step = {r["step"]: r for r in read_metrics(run_dir) if "generator_loss" in r}
    steps = sorted(by_step)
    curves = {"step": steps, "generator_loss": [by_step[s]["generator_loss"] for s in steps],
              "pearson": [by_step[s]["joint/pearson"] for s in steps]}
    kid = kid_curve(run_dir)
    grids = [(int(p.stem.split("_")[1]), p) for p in sorted((run_dir / "samples").glob("step_*.png"))]
    grids = [(s, p) for s, p in grids if s > 0]
    # "both fall together": rank correlation of the two over training, and each one's fall from the
    # first to the last tenth of the logged steps
    tenth = max(1, len(steps) // 10)
    fall = {k: statistics.fmean(curves[k][:tenth]) / statistics.fmean(curves[k][-tenth:])
            for k in ("generator_loss", "pearson")}
    rho = spearman(curves["generator_loss"], curves["pearson"]) if len(steps) > 1 else float("nan")
    together = rho > 0.5 and all(v > 1 for v in fall.values())
    verdict = "reproduced" if together else "partly reproduced" if all(v > 1 for v in fall.values()) else "not reproduced"
    reading = (f"generator loss fell {fall['generator_loss']:.1f}x and the Pearson estimate {fall['pearson']:.1f}x "
               f"(first vs last tenth); Spearman correlation of the two over training {rho:.2f}; "
               f"KID {', '.join(f'{k:.1f} at {s}' for s, k in kid)}. 'Both losses fall together': {verdict}")
    figure = _plot_gram(curves, kid, grids, out_dir / "mnist-gram.png")
    payload = {"options": opts, "curves": curves, "kid": kid, "fall": fall, "spearman": rho, "verdict": verdict,
               "samples": [str(p) for _, p in grids], "figures": [str(figure)], "summary": [reading]}
    write_json(out_dir / "mnist-gram.json", payload)
    return payload
