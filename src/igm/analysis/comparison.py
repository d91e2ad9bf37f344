"""The method comparisons: every image objective trained with its family's presets over several
seeds, scored by KID and FID on the family's feature net.

* ``igm figure digits-comparison``: the ``digits-*`` presets on scikit-learn's 8×8 digits (a quick
  check: the data is too easy to separate the best methods);
* ``igm figure mnist-comparison``: the ``mnist-*`` presets on the 5,000 shipped MNIST digits, with
  KID curves over training (the headline comparison).

Protocol: each method at its own preset, i.e. its paper's optimiser, learning rates and schedule
(WGAN and MMD-GAN: RMSProp 5e-5; LGAN: β₁ = 0 with a linear decay to 0; GRAM: simultaneous
updates; the others Adam 2e-4, constant), with the same ``overrides`` (network widths) for every
method, for ``steps`` generator steps (None: each preset's own budget). A schedule that decays to 0
decays over those steps. Presets whose data is not the family's (``mnist-gram-paper`` reads IDX
files) are left out.

The runs live under ``OUT/runs/PRESET/seedN``. The command is resumable: a finished run (its
``summary.json`` at the requested step) is read back, an interrupted one resumes from its last
checkpoint, so a long comparison can be stopped and restarted at any point. A larger ``steps``
extends finished runs: those at a constant learning rate continue from their last checkpoint, the
others (LGAN's linear decay) are moved aside to ``seedN.stepsK`` and trained again.

Training time: from each run's ``metrics.jsonl`` (:func:`train_seconds`, every attempt of a
resumed run counted once); the table gives the fastest seed's, since on a shared machine load
only adds time.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from igm.analysis.figures import register, write_json

__all__ = [
    "ComparisonOptions", "MnistComparisonOptions", "digits_comparison", "mnist_comparison", "run_all", "train_or_read",
    "aggregate", "markdown_table", "train_seconds", "kid_curve", "late_drop",
]

@dataclass
class ComparisonOptions:
    presets: tuple[str, ...] = ()  # default: every preset of the family on the family's data
    seeds: int = 3
    steps: int | None = None  # generator steps for every run (None: each preset's own train.steps)
    eval_every: int | None = None  # KID/FID every N steps for the curves (None: only at the end)
    eval_samples: int = 1000  # generated samples scored at each evaluation
    overrides: tuple[str, ...] = ()  # config overrides applied to every preset (the same for all)
    threads: int = 1  # torch CPU threads per run
    progress: bool = False  # per-run progress bars
    log_every: int = 50  # training statistics every N steps (capped by steps)


@dataclass
class MnistComparisonOptions(ComparisonOptions):
    # the mnist-* presets' own budget (1500 steps at DCGAN widths 16: 15 presets × 3 seeds take about
    # 2.5 hours on 2 cores), with KID every 150 steps for the curves
    eval_every: int | None = 150


def _presets(opts: ComparisonOptions, family: str, data: str) -> list[str]:
    from igm.train import presets

    names = list(opts.presets) or [
        n for n in presets.names() if n.startswith(f"{family}-") and presets.get(n).data.name == data
    ]
    for name in names:
        presets.get(name)  # an unknown name is an error listing the valid ones
    return names


def _check(opts: ComparisonOptions) -> None:
    if opts.seeds < 1 or (opts.steps is not None and opts.steps < 1):
        raise ValueError("seeds and steps must be positive")
    if opts.eval_every is not None and opts.eval_every < 1:
        raise ValueError("eval_every must be positive (or null: only at the end)")


def _config(preset: str, seed: int, opts: ComparisonOptions):
    from igm.train import apply_overrides, presets

    steps = opts.steps if opts.steps is not None else presets.get(preset).train.steps
    every = min(opts.eval_every or steps, steps)
    overrides = [
        *opts.overrides, f"train.steps={steps}", f"train.seed={seed}", f"train.threads={opts.threads}",
        f"train.progress={str(opts.progress).lower()}", f"eval.every={every}",
        f"eval.samples={opts.eval_samples}", f"train.sample_every={steps}",
        f"train.checkpoint_every={max(1, min(steps, 100))}", f"train.log_every={max(1, min(steps, opts.log_every))}",
    ]
    return apply_overrides(presets.get(preset), overrides)


def train_or_read(cfg, run_dir: Path) -> dict:
    """The summary of the run of ``cfg`` in ``run_dir``: read back when it finished at
    ``cfg.train.steps``, extended when it finished earlier (:func:`_extend`), resumed from its last
    checkpoint when it was interrupted, trained from the start otherwise."""
    from igm.train import build_run, load_run, train
    from igm.train.checkpoint import resumable

    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        saved = json.loads(summary_path.read_text())
        if saved.get("step") == cfg.train.steps:
            return saved
        if saved.get("step", 0) < cfg.train.steps:
            return _extend(cfg, run_dir, saved["step"])
    if resumable(run_dir / "checkpoints"):
        return train(load_run(run_dir), resume=True)
    return train(build_run(cfg, run_dir))


def _extend(cfg, run_dir: Path, done: int) -> dict:
    """A longer budget than a finished run's. With a constant learning rate the run's first ``done``
    steps are the longer run's, so it resumes from its last checkpoint with the new budget; with a
    decaying schedule they are not, so the old run is moved to ``seedN.steps<done>`` (nothing is
    deleted) and the run starts again."""
    from igm.train import build_run, load_run, train

    if cfg.optim.schedule == "constant":
        longer = [f"train.steps={cfg.train.steps}", f"train.sample_every={cfg.train.sample_every}",
                  f"eval.every={cfg.eval.every}"]
        return train(load_run(run_dir, longer), resume=True)
    run_dir.rename(run_dir.with_name(f"{run_dir.name}.steps{done}"))
    return train(build_run(cfg, run_dir))


def train_seconds(run_dir: Path) -> float | None:
    """The training time of a run from its ``metrics.jsonl`` (:func:`igm.train.artifacts.training_seconds`).
    Unlike ``summary.json``'s ``seconds`` (the last attempt's), it covers every attempt of a resumed
    run once. None without a log."""
    from igm.train.artifacts import read_metrics, training_seconds

    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return None
    at_step = training_seconds(read_metrics(path))
    return at_step[max(at_step)] if at_step else 0.0


def kid_curve(run_dir: Path) -> list[tuple[int, float]]:
    """``(step, KID)`` of every in-training evaluation in a run's ``metrics.jsonl``, by step; where a
    resumed run evaluated a step twice, the later record."""
    from igm.train.artifacts import read_metrics

    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    at = {r["step"]: r["eval/kid"] for r in read_metrics(path) if "eval/kid" in r}
    return sorted(at.items())


def late_drop(curve: list[tuple[int, float]], fraction: float = 0.3) -> float | None:
    """How much KID still fell over the last ``fraction`` of training: (KID at the first evaluation
    at or after (1 − fraction) · last step − final KID) / that KID. Near 0 (or negative): a plateau.
    None with fewer than two evaluations."""
    if len(curve) < 2:
        return None
    last = curve[-1][0]
    start = next(k for s, k in curve if s >= (1 - fraction) * last)
    return (start - curve[-1][1]) / start if start else 0.0


def run_all(names: list[str], opts: ComparisonOptions, out_dir: Path) -> list[dict]:
    """Train (or read back) every ``names`` × seed run under ``out_dir/runs``, seed-major so that a
    stopped comparison has whole seeds done; one row per run."""
    _check(opts)
    for preset in names:  # every config built before any training: a bad option fails at once
        _config(preset, 0, opts)
    rows = []
    for seed in range(opts.seeds):
        for preset in names:
            run_dir = out_dir / "runs" / preset / f"seed{seed}"
            summary = train_or_read(_config(preset, seed, opts), run_dir)
            curve = kid_curve(run_dir)
            rows.append({
                "preset": preset, "seed": seed, "run_dir": str(run_dir), "step": summary.get("step"),
                "kid": summary.get("eval/kid"), "fid": summary.get("eval/fid"), "seconds": train_seconds(run_dir),
                "curve": curve, "late_drop": late_drop(curve),
            })
            print(f"{preset} seed {seed}: KID {rows[-1]['kid']:.4f}, FID {rows[-1]['fid']:.2f}, {rows[-1]['seconds']:.0f} s",
                  flush=True)
    return rows


def aggregate(rows: list[dict]) -> list[dict]:
    """Mean ± sample std over seeds of KID, FID, training time and the late KID drop, per preset,
    in the rows' order."""
    out = []
    for preset in dict.fromkeys(r["preset"] for r in rows):
        mine = [r for r in rows if r["preset"] == preset]
        entry = {"preset": preset, "seeds": len(mine)}
        for key in ("kid", "fid", "seconds", "late_drop"):
            vals = [r[key] for r in mine if r.get(key) is not None]
            entry[key] = statistics.fmean(vals) if vals else None
            entry[f"{key}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        times = [r["seconds"] for r in mine if r.get("seconds") is not None]
        entry["seconds_min"] = min(times) if times else None  # load only adds time: the least-loaded run
        out.append(entry)
    return out


def markdown_table(agg: list[dict]) -> str:
    curves = any(e.get("late_drop") is not None for e in agg)
    head = "| preset | seeds | KID (mean ± std) | FID (mean ± std) | training time, fastest seed (s) |"
    rule = "|---|---|---|---|---|"
    if curves:
        head, rule = head + " KID drop over the last 30% |", rule + "---|"
    lines = [head, rule]
    for e in sorted(agg, key=lambda e: e["kid"] if e["kid"] is not None else float("inf")):
        line = (f"| `{e['preset']}` | {e['seeds']} | {e['kid']:.3f} ± {e['kid_std']:.3f} | "
                f"{e['fid']:.1f} ± {e['fid_std']:.1f} | {e['seconds_min']:.0f} |")
        if curves:
            line += f" {100 * e['late_drop']:.0f}% |" if e.get("late_drop") is not None else " — |"
        lines.append(line)
    return "\n".join(lines)


def compare(opts: ComparisonOptions, out_dir: Path, family: str, data: str, features: str) -> dict:
    """Run the comparison of ``family``'s presets and write ``OUT/FAMILY-comparison.{md,json}`` and
    its figures."""
    from igm.analysis.comparison_plots import plot_bars, plot_curves, plot_samples

    names = _presets(opts, family, data)
    rows = run_all(names, opts, out_dir)
    agg = aggregate(rows)
    table = markdown_table(agg)
    tag = f"{family}-comparison"
    (out_dir / f"{tag}.md").write_text(table + "\n")
    budget = "each preset's full budget" if opts.steps is None else f"{opts.steps} generator steps"
    figures = [plot_bars(agg, rows, out_dir / f"{tag}-kid.png", f"{features} KID after {budget}")]
    if any(len(r["curve"]) > 1 for r in rows):
        figures.append(plot_curves(agg, rows, out_dir / f"{tag}-curves.png", f"{features} KID"))
    samples = plot_samples(agg, rows, out_dir / f"{tag}-samples.png", prefix=f"{family}-")
    figures += [samples] if samples else []
    payload = {"options": opts, "runs": rows, "aggregate": agg, "figures": [str(p) for p in figures],
               "summary": table.splitlines()}
    write_json(out_dir / f"{tag}.json", payload)
    return payload


@register("digits-comparison", ComparisonOptions,
          quick={"presets": ("digits-gan", "digits-sn-smmd"), "seeds": 2, "steps": 2, "eval_samples": 64},
          help="every digits-* preset at its own settings and budget, several seeds: KID, FID, training time")
def digits_comparison(opts: ComparisonOptions, out_dir: Path) -> dict:
    return compare(opts, out_dir, "digits", "digits", "digits-feature")


@register("mnist-comparison", MnistComparisonOptions,
          quick={"presets": ("mnist-gan", "mnist-sn-smmd"), "seeds": 2, "steps": 4, "eval_every": 2,
                 "eval_samples": 64,
                 "overrides": ("model.generator_params.base_channels=4", "model.critic_params.base_channels=4")},
          help="every mnist-* preset at its paper's settings and budget, 3 seeds, KID curves over training")
def mnist_comparison(opts: MnistComparisonOptions, out_dir: Path) -> dict:
    return compare(opts, out_dir, "mnist", "mnist5k", "MNIST-net")
