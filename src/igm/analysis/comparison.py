"""``igm figure digits-comparison``: every image objective trained with its ``digits-*`` preset over
several seeds, scored by digits-feature KID and FID.

Protocol: each method at its own preset, i.e. its paper's optimiser, learning rates and schedule
(WGAN and MMD-GAN: RMSProp 5e-5; LGAN: β₁ = 0 with a linear decay to 0; the others Adam 2e-4,
constant), for the preset's full step budget (``steps=None``). ``steps=N`` shortens every run to N
generator steps for a quick check; a schedule that decays to 0 then decays over those N steps.

The runs live under ``OUT/runs/PRESET/seedN``. The command is resumable: a finished run (its
``summary.json`` at the requested step) is read back, an interrupted one resumes from its last
checkpoint, so a long comparison can be stopped and restarted at any point.

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

__all__ = ["ComparisonOptions", "digits_comparison", "aggregate", "markdown_table", "train_seconds"]


@dataclass
class ComparisonOptions:
    presets: tuple[str, ...] = ()  # default: every digits-* preset
    seeds: int = 3
    steps: int | None = None  # generator steps for every run (None: each preset's own train.steps)
    eval_samples: int = 1000  # generated samples scored at the end
    threads: int = 1  # torch CPU threads per run
    progress: bool = False  # per-run progress bars


def _presets(opts: ComparisonOptions) -> list[str]:
    from igm.train import presets

    names = list(opts.presets) or [n for n in presets.names() if n.startswith("digits-")]
    for name in names:
        presets.get(name)  # an unknown name is an error listing the valid ones
    return names


def _one_run(preset: str, seed: int, opts: ComparisonOptions, run_dir: Path) -> dict:
    from igm.train import apply_overrides, build_run, load_run, presets, train
    from igm.train.checkpoint import resumable

    steps = opts.steps if opts.steps is not None else presets.get(preset).train.steps
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        saved = json.loads(summary_path.read_text())
        if saved.get("step") == steps:
            return saved
    if resumable(run_dir / "checkpoints"):
        return train(load_run(run_dir), resume=True)
    overrides = [
        f"train.steps={steps}", f"train.seed={seed}", f"train.threads={opts.threads}",
        f"train.progress={str(opts.progress).lower()}", f"eval.every={steps}",
        f"eval.samples={opts.eval_samples}", f"train.sample_every={steps}",
        f"train.checkpoint_every={max(1, min(steps, 100))}", f"train.log_every={max(1, min(steps, 50))}",
    ]
    cfg = apply_overrides(presets.get(preset), overrides)
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


def aggregate(rows: list[dict]) -> list[dict]:
    """Mean ± sample std over seeds of KID, FID and training time, per preset, in the rows' order."""
    out = []
    for preset in dict.fromkeys(r["preset"] for r in rows):
        mine = [r for r in rows if r["preset"] == preset]
        entry = {"preset": preset, "seeds": len(mine)}
        for key in ("kid", "fid", "seconds"):
            vals = [r[key] for r in mine if r.get(key) is not None]
            entry[key] = statistics.fmean(vals) if vals else None
            entry[f"{key}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        times = [r["seconds"] for r in mine if r.get("seconds") is not None]
        entry["seconds_min"] = min(times) if times else None  # load only adds time: the least-loaded run
        out.append(entry)
    return out


def markdown_table(agg: list[dict]) -> str:
    lines = ["| preset | seeds | KID (mean ± std) | FID (mean ± std) | training time, fastest seed (s) |", "|---|---|---|---|---|"]
    for e in sorted(agg, key=lambda e: e["kid"] if e["kid"] is not None else float("inf")):
        lines.append(
            f"| `{e['preset']}` | {e['seeds']} | {e['kid']:.3f} ± {e['kid_std']:.3f} | "
            f"{e['fid']:.1f} ± {e['fid_std']:.1f} | {e['seconds_min']:.0f} |"
        )
    return "\n".join(lines)


def _plot(agg: list[dict], rows: list[dict], out_dir: Path, steps: int | None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    order = sorted(agg, key=lambda e: e["kid"])
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.2))
    ys = range(len(order))
    ax.barh(list(ys), [e["kid"] for e in order], xerr=[e["kid_std"] for e in order], color="tab:blue", alpha=0.8)
    for e, y in zip(order, ys):
        seeds = [r["kid"] for r in rows if r["preset"] == e["preset"]]
        ax.plot(seeds, [y] * len(seeds), "k.", ms=4)
    ax.set_yticks(list(ys), [e["preset"] for e in order])
    ax.invert_yaxis()
    budget = "each preset's full budget" if steps is None else f"{steps} generator steps"
    ax.set_xlabel(f"digits-feature KID after {budget} (mean ± std over seeds; dots: seeds)")
    fig.tight_layout()
    bars = out_dir / "digits-comparison-kid.png"
    fig.savefig(bars, dpi=120)
    plt.close(fig)

    grids = []
    for e in order:
        run = next(r for r in rows if r["preset"] == e["preset"])
        pngs = sorted((Path(run["run_dir"]) / "samples").glob("step_*.png"))
        if pngs:
            grids.append((e["preset"], e["kid"], pngs[-1]))
    paths = [bars]
    if grids:
        cols = min(5, len(grids))
        nrows = -(-len(grids) // cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(2.4 * cols, 2.6 * nrows), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, (name, k, png) in zip(axes.flat, grids):
            with Image.open(png) as im:
                ax.imshow(im.convert("RGB"))
            ax.set_title(f"{name.removeprefix('digits-')}\nKID {k:.3f}", fontsize=8)
        fig.tight_layout()
        samples = out_dir / "digits-comparison-samples.png"
        fig.savefig(samples, dpi=120)
        plt.close(fig)
        paths.append(samples)
    return paths


@register("digits-comparison", ComparisonOptions,
          quick={"presets": ("digits-gan", "digits-sn-smmd"), "seeds": 2, "steps": 2, "eval_samples": 64},
          help="every digits-* preset at its own settings and budget, several seeds: KID, FID, training time")
def digits_comparison(opts: ComparisonOptions, out_dir: Path) -> dict:
    if opts.seeds < 1 or (opts.steps is not None and opts.steps < 1):
        raise ValueError("seeds and steps must be positive")
    names = _presets(opts)
    rows = []
    for seed in range(opts.seeds):  # seed-major: a stopped comparison has whole seeds done
        for preset in names:
            run_dir = out_dir / "runs" / preset / f"seed{seed}"
            summary = _one_run(preset, seed, opts, run_dir)
            rows.append({
                "preset": preset, "seed": seed, "run_dir": str(run_dir), "step": summary.get("step"),
                "kid": summary.get("eval/kid"), "fid": summary.get("eval/fid"), "seconds": train_seconds(run_dir),
            })
            print(f"{preset} seed {seed}: KID {rows[-1]['kid']:.4f}, FID {rows[-1]['fid']:.2f}, {rows[-1]['seconds']:.0f} s",
                  flush=True)
    agg = aggregate(rows)
    table = markdown_table(agg)
    (out_dir / "digits-comparison.md").write_text(table + "\n")
    figures = _plot(agg, rows, out_dir, opts.steps)
    payload = {"options": opts, "runs": rows, "aggregate": agg, "figures": [str(p) for p in figures],
               "summary": table.splitlines()}
    write_json(out_dir / "digits-comparison.json", payload)
    return payload
