"""``igm figure wgan-loss-tracks-quality``: the WGAN paper's "meaningful loss metric" (seed 001,
figures 3, 4 and 8) on MNIST, with KID on the shipped MNIST net as the measure of sample quality.

Runs (``OUT/runs/KIND/seedN``, read back or resumed by :func:`igm.analysis.comparison.train_or_read`):

- ``wgan``: the ``mnist-wgan`` preset (DCGAN generator and critic, weight clipping c = 0.01,
  n_critic = 5, RMSProp) with the paper's 100 critic steps for the first 25 generator steps and
  every 500th. The learning rate is ``wgan_lr``, by default 5e-4, ten times the paper's 5e-5: at
  5e-5 the MNIST-net KID is still 110-129 after 2,000 steps (the untrained generator's: ~151).
- ``gan``: the ``mnist-gan`` preset (non-saturating GAN, Adam 2e-4) at the DCGAN recipe's one
  discriminator step per generator step (``gan_n_critic``).

The DCGAN runs' critic has batch norm after every conv but the first (``critic_norm``), as the WGAN
paper's and the DCGAN paper's discriminators do; the presets' critic has none.
- ``wgan-mlp``: the paper's failing case, WGAN with an MLP generator and an MLP critic (``mlp_hidden``
  units × ``mlp_depth`` layers, the paper's 4 × 512) at a high learning rate (``mlp_lr``).

The losses, from each run's ``metrics.jsonl`` (logged as means over ``log_every`` steps):

- ``em``: the WGAN critic's EM estimate E D(x) − E D(y) (``critic/em_estimate`` = −critic loss);
- ``js``: the GAN discriminator's lower bound on JS, ½ L(D) + log 2 with L(D) = E log D(x) +
  E log(1 − D(y)) = −(the ``gan`` critic loss), so ``js`` = log 2 − ½ ``critic_loss``;
- ``gen``: the GAN's generator cost E softplus(−D(y)) (= −E log D(y)).

At each evaluation step s the loss is the mean of its logged values over the evaluation window
(s − eval_every, s], and the Spearman rank correlation of those values with the KID at the same
steps is reported per run, and its mean over seeds. A loss that tracks quality falls with KID:
ρ > 0. The paper's claim: the EM estimate does (ρ(em) high), the GAN's JS estimate does not. The
failing case: the MLP WGAN's EM estimate stays flat while its samples stay bad.

Outputs ``wgan-loss-tracks-quality.png`` (each loss and KID over training, and loss against KID),
``wgan-loss-tracks-quality-samples.png`` (sample grids at ``snapshots`` stages of seed 0 of each
kind) and ``wgan-loss-tracks-quality.json``.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from igm.analysis.comparison import kid_curve, train_or_read, train_seconds
from igm.analysis.comparison_plots import pyplot, save
from igm.analysis.figures import register, write_json
from igm.analysis.mnist_figures import spearman

__all__ = ["WganQualityOptions", "LOSSES", "run_overrides", "train_configs", "loss_series", "window_means",
           "analyse_run", "wgan_loss_tracks_quality"]

LOG2 = math.log(2.0)
KINDS = ("wgan", "gan", "wgan-mlp")
PRESETS = {"wgan": "mnist-wgan", "gan": "mnist-gan", "wgan-mlp": "mnist-wgan"}
LOSSES = {"wgan": ("em",), "gan": ("js", "gen"), "wgan-mlp": ("em",)}
LABELS = {"em": "EM estimate E D(x) − E D(y)", "js": "JS bound ½ L(D) + log 2", "gen": "generator cost −E log D(y)"}


@dataclass
class WganQualityOptions:
    seeds: int = 3  # seeds of the DCGAN wgan and gan runs
    mlp_seeds: int = 1  # seeds of the failing case (0: leave it out)
    steps: int = 2000  # generator steps of every run (the 7 runs took 29 minutes, 2 at a time, on 2 cores)
    eval_every: int = 50  # KID every N steps (the points of the correlations)
    eval_samples: int = 500
    log_every: int = 10  # must divide eval_every
    late_from: int = 500  # also the correlations over the evaluations from this step on (past the early transient)
    snapshots: int = 4  # sample grids at this many evenly spaced steps (must divide steps)
    wgan_lr: float = 5e-4  # RMSProp, generator and critic; the paper's 5e-5 trains too slowly for this budget
    clip: float = 0.01
    # The papers' DCGAN discriminator: batch norm after every conv but the first (the WGAN code's and
    # the DCGAN paper's; the presets' critic has none). Without it the GAN with the DCGAN generator collapsed
    # to one class at 2 of 3 seeds (figure 4 at n_critic 5) and to one image at seed 0 with one
    # discriminator step (docs/reproductions.md).
    critic_norm: str = "batch"
    gan_n_critic: int = 1  # the DCGAN recipe: one discriminator step per generator step (the presets: 5)
    extra_critic_steps: int = 100  # the paper's: 100 critic steps ...
    extra_critic_until: int = 25  # ... for the first 25 generator steps ...
    extra_critic_every: int = 500  # ... and every 500th
    mlp_hidden: int = 512
    mlp_depth: int = 4
    mlp_lr: float = 5e-3  # RMSProp, "substantially high" (100× the paper's default)
    overrides: tuple[str, ...] = ()  # config overrides of the DCGAN runs (e.g. widths)
    mlp_overrides: tuple[str, ...] = ()  # config overrides of the failing case
    jobs: int = 2  # trainings at a time (separate processes); 1: in this process
    threads: int = 1  # torch CPU threads per training
    progress: bool = False


def _check(opts: WganQualityOptions) -> None:
    if min(opts.seeds, opts.steps, opts.eval_every, opts.log_every, opts.snapshots, opts.jobs, opts.eval_samples,
           opts.gan_n_critic) < 1:
        raise ValueError("seeds, steps, eval_every, log_every, snapshots, jobs, eval_samples and gan_n_critic must be "
                         "positive")
    if opts.mlp_seeds < 0 or opts.eval_every % opts.log_every or opts.steps % opts.snapshots:
        raise ValueError("mlp_seeds must be non-negative, log_every must divide eval_every and snapshots steps")
    check_critic_norm(opts.critic_norm)


def check_critic_norm(norm: str) -> None:
    """A clear error, before any training, for a norm the DCGAN critic does not have."""
    from igm.nn.dcgan import NORMS

    if norm not in NORMS:
        raise ValueError(f"critic_norm must be one of {', '.join(NORMS)}; got {norm!r}")


def run_overrides(kind: str, seed: int, opts: WganQualityOptions) -> list[str]:
    """The config overrides of one run on top of its preset (:data:`PRESETS`)."""
    common = [f"train.steps={opts.steps}", f"train.seed={seed}", f"train.threads={opts.threads}",
              f"train.progress={str(opts.progress).lower()}", f"train.log_every={opts.log_every}",
              f"train.sample_every={opts.steps // opts.snapshots}", f"eval.every={opts.eval_every}",
              f"eval.samples={opts.eval_samples}", f"train.checkpoint_every={max(1, min(opts.steps, 100))}"]
    critic = [f"model.critic_params.norm={opts.critic_norm}"]
    if kind == "gan":
        return [*opts.overrides, *critic, f"train.n_critic={opts.gan_n_critic}", *common]
    wgan = [f"objective.params.clip={opts.clip}", f"train.extra_critic_steps={opts.extra_critic_steps}",
            f"train.extra_critic_until={opts.extra_critic_until}", f"train.extra_critic_every={opts.extra_critic_every}"]
    if kind == "wgan":
        return [*opts.overrides, *critic, *wgan, f"optim.lr_generator={opts.wgan_lr}", f"optim.lr_critic={opts.wgan_lr}", *common]
    if kind == "wgan-mlp":
        mlp = ["model.generator=mlp", "model.critic=mlp",
               f"model.generator_params={{hidden: {opts.mlp_hidden}, depth: {opts.mlp_depth}, output_activation: tanh}}",
               f"model.critic_params={{hidden: {opts.mlp_hidden}, depth: {opts.mlp_depth}}}"]
        return [*mlp, *opts.mlp_overrides, *wgan, f"optim.lr_generator={opts.mlp_lr}", f"optim.lr_critic={opts.mlp_lr}",
                *common]
    raise ValueError(f"unknown run kind {kind!r}; valid: {', '.join(KINDS)}")


def _config(kind: str, seed: int, opts: WganQualityOptions):
    from igm.train import apply_overrides, presets

    return apply_overrides(presets.get(PRESETS[kind]), run_overrides(kind, seed, opts))


def _train_config(label: str, cfg, run_dir: str) -> str:
    """One training (in a worker process when several run at a time)."""
    t0 = time.perf_counter()
    train_or_read(cfg, Path(run_dir))
    return f"{label}: {time.perf_counter() - t0:.0f} s"


def train_configs(runs: list[tuple[str, object, Path]], jobs: int) -> None:
    """Train (or read back, :func:`igm.analysis.comparison.train_or_read`) each ``(label, config,
    run_dir)`` of ``runs``, ``jobs`` at a time in separate (spawned) processes, or one after another
    in this process when ``jobs`` is 1; prints each run's label and wall time as it finishes."""
    if jobs == 1:
        for label, cfg, run_dir in runs:
            print(_train_config(label, cfg, str(run_dir)), flush=True)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_train_config, label, cfg, str(run_dir)) for label, cfg, run_dir in runs]
        for f in futures:
            print(f.result(), flush=True)


def loss_series(records: list[dict], name: str) -> dict[int, float]:
    """``step → value`` of one loss over the logged training records (the last record per step)."""
    out = {}
    for r in records:
        if "critic_loss" not in r:
            continue
        if name == "em":
            out[r["step"]] = r["critic/em_estimate"]
        elif name == "js":
            out[r["step"]] = LOG2 - 0.5 * r["critic_loss"]
        elif name == "gen":
            out[r["step"]] = r["generator_loss"]
        else:
            raise ValueError(f"unknown loss {name!r}; valid: em, js, gen")
    return dict(sorted(out.items()))


def window_means(series: dict[int, float], steps: list[int], every: int) -> list[float]:
    """The mean of ``series`` over (s − every, s] at each s of ``steps`` (nan where it is empty)."""
    out = []
    for s in steps:
        vals = [v for t, v in series.items() if s - every < t <= s]
        out.append(statistics.fmean(vals) if vals else math.nan)
    return out


def _rho(pairs: list[tuple[float, float]]) -> float:
    ok = [(a, k) for a, k in pairs if math.isfinite(a)]
    if len(ok) < 3 or len({a for a, _ in ok}) < 2 or len({k for _, k in ok}) < 2:
        return math.nan  # undefined for a constant series (e.g. a collapsed generator's KID)
    return spearman(*zip(*ok))


def analyse_run(kind: str, seed: int, run_dir: Path, eval_every: int, late_from: int = 0) -> dict:
    """A run's KID curve, its losses over training and at the evaluation steps, and their Spearman
    correlations with KID: over every evaluation, and (``spearman_late``) over those at or after
    ``late_from``."""
    from igm.train.artifacts import read_metrics

    records = read_metrics(run_dir / "metrics.jsonl")
    kid = kid_curve(run_dir)
    steps = [s for s, _ in kid]
    kids = [k for _, k in kid]
    row = {"kind": kind, "seed": seed, "run_dir": str(run_dir), "kid": kid, "seconds": train_seconds(run_dir),
           "curves": {}, "at_eval": {}, "spearman": {}, "spearman_late": {}}
    for name in LOSSES[kind]:
        series = loss_series(records, name)
        row["curves"][name] = [[s, v] for s, v in series.items()]
        at = window_means(series, steps, eval_every)
        row["at_eval"][name] = at
        row["spearman"][name] = _rho(list(zip(at, kids)))
        row["spearman_late"][name] = _rho([(a, k) for s, a, k in zip(steps, at, kids) if s >= late_from])
    return row


def _flatness(row: dict) -> float:
    """The range of a run's EM estimate over its evaluation windows after the first, relative to
    the mean of its absolute value."""
    vals = row["at_eval"]["em"][1:] or row["at_eval"]["em"]
    return (max(vals) - min(vals)) / max(statistics.fmean(abs(v) for v in vals), 1e-12)


def _plot(rows: list[dict], path: Path) -> Path:
    plt = pyplot()
    panels = [(k, n) for k in KINDS for n in LOSSES[k] if any(r["kind"] == k for r in rows)]
    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 3.1 * len(panels)), squeeze=False)
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown")
    for (kind, name), (ax, sc) in zip(panels, axes):
        mine = [r for r in rows if r["kind"] == kind]
        twin = ax.twinx()
        for r in mine:
            c = colors[r["seed"] % len(colors)]
            s, v = zip(*r["curves"][name]) if r["curves"][name] else ((), ())
            ax.plot(s, v, color=c, lw=0.8, alpha=0.8)
            ks, kv = zip(*r["kid"]) if r["kid"] else ((), ())
            twin.plot(ks, kv, color=c, lw=1.5, ls="--", marker=".", ms=3)
            sc.scatter(r["at_eval"][name], [k for _, k in r["kid"]], color=c, s=12,
                       label=f"seed {r['seed']}: ρ = {r['spearman'][name]:.2f}")
        ax.set_xlabel("generator step")
        ax.set_ylabel(LABELS[name], fontsize=8)
        twin.set_ylabel("MNIST-net KID ×10³ (dashed)", fontsize=8)
        ax.set_title(f"{kind}: {name} (solid) and KID (dashed)", fontsize=9)
        ax.grid(alpha=0.3)
        sc.set_xlabel(f"{LABELS[name]} (mean over the eval window)", fontsize=8)
        sc.set_ylabel("KID ×10³", fontsize=8)
        mean = statistics.fmean(r["spearman"][name] for r in mine)
        sc.set_title(f"{kind}: {name} vs KID, Spearman ρ mean {mean:.2f}", fontsize=9)
        sc.legend(fontsize=7)
        sc.grid(alpha=0.3)
    return save(fig, path, dpi=110)


def _plot_samples(rows: list[dict], path: Path) -> Path | None:
    from PIL import Image

    firsts = [next(r for r in rows if r["kind"] == k) for k in KINDS if any(r["kind"] == k for r in rows)]
    grids = [[(int(p.stem.split("_")[1]), p) for p in sorted(Path(r["run_dir"], "samples").glob("step_*.png"))]
             for r in firsts]
    grids = [[(s, p) for s, p in g if s > 0] for g in grids]
    cols = max((len(g) for g in grids), default=0)
    if not cols:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(len(firsts), cols, figsize=(2.2 * cols, 2.5 * len(firsts)), squeeze=False)
    for r, g, row_axes in zip(firsts, grids, axes):
        kid = dict(r["kid"])
        for a in row_axes:
            a.axis("off")
        for a, (step, png) in zip(row_axes, sorted(g)):
            with Image.open(png) as im:
                a.imshow(im.convert("RGB"))
            k = kid.get(step)
            a.set_title(f"{r['kind']} step {step}" + (f"\nKID {k:.1f}" if k is not None else ""), fontsize=8)
    return save(fig, path, dpi=110)


@register("wgan-loss-tracks-quality", WganQualityOptions,
          quick={"seeds": 2, "steps": 6, "eval_every": 2, "log_every": 1, "late_from": 2, "eval_samples": 64, "snapshots": 2,
                 "extra_critic_steps": 3, "extra_critic_until": 2, "extra_critic_every": 5, "mlp_hidden": 16,
                 "mlp_depth": 1, "jobs": 1,
                 "overrides": ("model.generator_params.base_channels=4", "model.critic_params.base_channels=4")},
          help="seed 001 figs. 3, 4, 8: WGAN's EM estimate vs the GAN's JS bound against MNIST-net KID, 3 seeds")
def wgan_loss_tracks_quality(opts: WganQualityOptions, out_dir: Path) -> dict:
    _check(opts)
    runs = [(k, s) for s in range(opts.seeds) for k in ("wgan", "gan")] + [("wgan-mlp", s) for s in range(opts.mlp_seeds)]
    for kind, seed in runs:  # every config built before any training: a bad option fails at once
        _config(kind, seed, opts)
    t0 = time.perf_counter()
    train_configs([(f"{k} seed {s}", _config(k, s, opts), out_dir / "runs" / k / f"seed{s}") for k, s in runs], opts.jobs)
    wall = time.perf_counter() - t0
    rows = [analyse_run(k, s, out_dir / "runs" / k / f"seed{s}", opts.eval_every, opts.late_from) for k, s in runs]
    correlations = {}
    for kind in KINDS:
        for name in LOSSES[kind]:
            per = [r["spearman"][name] for r in rows if r["kind"] == kind]
            late = [r["spearman_late"][name] for r in rows if r["kind"] == kind]
            if per:
                correlations[f"{kind}/{name}"] = {"per_seed": per, "mean": statistics.fmean(per),
                                                   "late_per_seed": late, "late_mean": statistics.fmean(late)}
    em, js = correlations["wgan/em"], correlations["gan/js"]
    em_tracks = em["mean"] >= 0.5 and all(v > 0 for v in em["per_seed"])
    js_tracks = js["mean"] >= 0.5
    verdict = ("reproduced" if em_tracks and not js_tracks else
               "partly reproduced" if em_tracks or not js_tracks else "not reproduced")
    summary = [f"{k}: Spearman ρ(loss, KID) per seed " + ", ".join(f"{v:.2f}" for v in c["per_seed"])
               + f"; mean {c['mean']:.2f}; from step {opts.late_from} on " + ", ".join(f"{v:.2f}" for v in c["late_per_seed"])
               + f"; mean {c['late_mean']:.2f}" for k, c in correlations.items()]
    for kind in ("wgan", "gan"):
        finals = [r["kid"][-1][1] for r in rows if r["kind"] == kind and r["kid"]]
        if finals:
            summary.append(f"{kind}: KID {statistics.fmean(r['kid'][0][1] for r in rows if r['kind'] == kind):.1f} "
                           f"at step {opts.eval_every} → {statistics.fmean(finals):.1f} at {opts.steps} (seed mean)")
    summary.append(f"'the EM estimate tracks quality, the JS estimate does not': {verdict}")
    failing = None
    mlp = [r for r in rows if r["kind"] == "wgan-mlp"]
    if mlp:
        dcgan = [_flatness(r) for r in rows if r["kind"] == "wgan"]
        flat = [_flatness(r) for r in mlp]
        first, last = statistics.fmean(r["kid"][0][1] for r in mlp), statistics.fmean(r["kid"][-1][1] for r in mlp)
        stays_bad = last >= 0.9 * first
        is_flat = statistics.fmean(flat) <= 0.5 * statistics.fmean(dcgan)
        failing = {"kid_first": first, "kid_last": last, "kid_constant": all(len({k for _, k in r["kid"]}) == 1 for r in mlp), "em_relative_range": flat, "dcgan_em_relative_range": dcgan,
                   "verdict": "reproduced" if stays_bad and is_flat else "partly reproduced" if stays_bad or is_flat
                   else "not reproduced"}
        summary.append(f"wgan-mlp (failing case): KID {first:.1f} → {last:.1f}"
                       + (" (the same at every evaluation)" if failing["kid_constant"] else "") + "; "
                       f"EM estimate's range over training / "
                       f"its mean |value| {statistics.fmean(flat):.3f} (DCGAN wgan {statistics.fmean(dcgan):.3f}): "
                       f"'flat estimate, bad samples': {failing['verdict']}")
    summary.append(f"{len(runs)} runs of {opts.steps} steps, {opts.jobs} at a time: {wall:.0f} s")
    figures = [_plot(rows, out_dir / "wgan-loss-tracks-quality.png")]
    samples = _plot_samples(rows, out_dir / "wgan-loss-tracks-quality-samples.png")
    figures += [samples] if samples else []
    payload = {"options": opts, "runs": rows, "correlations": correlations, "verdict": verdict, "failing": failing,
               "seconds": wall, "figures": [str(p) for p in figures], "summary": summary}
    write_json(out_dir / "wgan-loss-tracks-quality.json", payload)
    return payload
