"""Training outcomes of the ``ring-*`` presets, measured across seeds (``benchmarks/bench_quality.py``).

A run is scored from its own run directory:

- the final evaluation (``summary.json``): the high-quality share (samples within 3 std of a mode),
  the modes covered (at least 1% of the samples at a mode) and the MMD² to the target;
- the first evaluation step at which the run is *converged* (:func:`converged`: every mode
  covered and a high-quality share of at least :data:`MIN_HIGH_QUALITY`), read from
  ``metrics.jsonl``, and the wall seconds of training up to that step (the logged ``sec_per_step``
  summed over the logging windows, so a resumed run keeps its earlier time);
- whether the run is still converged at the end (a run that converges and then drifts away is not
  "converged").

:func:`run_one` trains (or resumes, or reads back) one ``(preset, seed)`` run; it is what the
benchmark's worker processes call.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from igm.train.artifacts import read_metrics, training_seconds

__all__ = [
    "MIN_HIGH_QUALITY",
    "converged",
    "RunScore",
    "score_run",
    "run_overrides",
    "run_one",
    "aggregate",
    "markdown_table",
]

MIN_HIGH_QUALITY = 0.70  # with every mode covered: the bar a ring run must clear to count as converged


def converged(stats: dict[str, Any], min_high_quality: float = MIN_HIGH_QUALITY) -> bool:
    """Every mode covered and at least ``min_high_quality`` of the samples within 3 std of a mode.

    ``stats`` holds ``modes_covered``, ``modes`` and ``high_quality`` with or without the ``eval/``
    prefix of the run's logs. Missing or non-finite values are not converged."""
    def get(key: str) -> float:
        value = stats.get(key, stats.get(f"eval/{key}"))
        return float("nan") if value is None else float(value)

    covered, modes, share = get("modes_covered"), get("modes"), get("high_quality")
    if not all(math.isfinite(v) for v in (covered, modes, share)):
        return False
    return covered >= modes and share >= min_high_quality


@dataclass
class RunScore:
    preset: str
    seed: int
    steps: int  # generator steps trained
    high_quality: float | None
    modes_covered: int | None
    modes: int | None
    mmd2_target: float | None
    converged: bool  # converged at the final evaluation
    converged_step: int | None  # first evaluation step at which it was converged (None: never)
    converged_seconds: float | None  # training wall seconds up to that step
    seconds: float  # training wall seconds of the whole run
    rollbacks: int
    curve: list[tuple[int, float, int]]  # (step, high-quality share, modes covered) per evaluation


def score_run(run_dir: str | Path, preset: str = "", seed: int = -1) -> RunScore:
    """Score a finished run from its ``summary.json`` and ``metrics.jsonl``."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = read_metrics(run_dir)
    at_step = {0: 0.0, **training_seconds(rows)}
    elapsed = at_step[max(at_step)]
    curve: list[tuple[int, float, int]] = []
    first = None
    for row in rows:
        step = int(row["step"])
        if "eval/high_quality" in row:
            if curve and curve[-1][0] == step:  # the final evaluation repeats the last step's
                continue
            curve.append((step, float(row["eval/high_quality"]), int(row["eval/modes_covered"])))
            if first is None and converged(row):
                first = step
    def seconds_at(step: int) -> float:
        known = [s for s in at_step if s <= step]
        return at_step[max(known)]

    final = {k.removeprefix("eval/"): v for k, v in summary.items() if k.startswith("eval/")}
    return RunScore(
        preset=preset or run_dir.parent.name,
        seed=seed,
        steps=int(summary["step"]),
        high_quality=final.get("high_quality"),
        modes_covered=final.get("modes_covered"),
        modes=final.get("modes"),
        mmd2_target=final.get("mmd2_target"),
        converged=converged(final),
        converged_step=first,
        converged_seconds=None if first is None else seconds_at(first),
        seconds=elapsed,
        rollbacks=int(summary.get("rollbacks", 0)),
        curve=curve,
    )


def run_overrides(seed: int, eval_every: int, extra: Iterable[str] = ()) -> list[str]:
    """The overrides of a benchmark run: its seed, one thread, no progress bar, an evaluation every
    ``eval_every`` steps (the evaluator's random stream is its own, so this does not change the
    training), then the caller's ``extra`` overrides."""
    return [f"train.seed={seed}", "train.threads=1", "train.progress=false", f"eval.every={eval_every}",
            *extra]


# config keys that do not change what a run trains, so a finished run stays valid when they change
BOOKKEEPING = (("train", "keep_checkpoints"),)


def _config_hash(cfg) -> str:
    from igm.train.config import to_dict

    values = to_dict(cfg)
    for section, key in BOOKKEEPING:
        values.get(section, {}).pop(key, None)
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_one(preset: str, seed: int, run_dir: str | Path, eval_every: int = 50, extra: Iterable[str] = ()) -> dict[str, Any]:
    """Train ``preset`` at ``seed`` into ``run_dir`` and return its :class:`RunScore` as a dict.

    Resumable: a finished run of the same configuration is read back, an interrupted one resumes
    from its last checkpoint, and a directory holding another configuration is started afresh."""
    from igm.train import apply_overrides, build_run, load_run, presets, train
    from igm.train.checkpoint import resumable

    run_dir = Path(run_dir)
    cfg = apply_overrides(presets.get(preset), run_overrides(seed, eval_every, extra))
    key = _config_hash(cfg)
    stamp = run_dir / "quality-config.txt"
    if run_dir.exists() and (not stamp.is_file() or stamp.read_text().strip() != key):
        shutil.rmtree(run_dir)  # another configuration's run: this benchmark's own cache, start again
    summary = run_dir / "summary.json"
    finished = summary.is_file() and json.loads(summary.read_text()).get("step") == cfg.train.steps
    if not finished and resumable(run_dir / "checkpoints"):
        train(load_run(run_dir), resume=True)
    elif not finished:
        run = build_run(cfg, run_dir)
        stamp.write_text(key + "\n")
        train(run)
    return asdict(score_run(run_dir, preset, seed))


def aggregate(scores: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per preset (in first-seen order): seeds, converged count, and median/min/max of the final
    share, modes, steps and seconds to converge (over the converged runs)."""
    out = []
    for preset in dict.fromkeys(s["preset"] for s in scores):
        mine = sorted((s for s in scores if s["preset"] == preset), key=lambda s: s["seed"])
        conv = [s for s in mine if s["converged"] and s["converged_step"] is not None]
        out.append({
            "preset": preset,
            "seeds": [s["seed"] for s in mine],
            "converged": sum(s["converged"] for s in mine),
            "runs": mine,
            "median_step": statistics.median([s["converged_step"] for s in conv]) if conv else None,
            "median_seconds": statistics.median([s["converged_seconds"] for s in conv]) if conv else None,
            "median_run_seconds": statistics.median([s["seconds"] for s in mine]),
            "steps": mine[0]["steps"],
        })
    return out


def _cell(s: dict[str, Any]) -> str:
    hq = "n/a" if s["high_quality"] is None else f"{s['high_quality']:.2f}"
    return f"{hq}/{s['modes_covered']}"


def markdown_table(agg: list[dict[str, Any]]) -> str:
    """The quality table: converged count, each seed's final share/modes, steps and seconds to converge."""
    lines = [
        "| preset | converged | final HQ share / modes, per seed | steps to converge (median) | seconds to converge (median) | run seconds (median) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for e in agg:
        cells = ", ".join(_cell(s) for s in e["runs"])
        step = "never" if e["median_step"] is None else f"{e['median_step']:.0f} of {e['steps']}"
        secs = "—" if e["median_seconds"] is None else f"{e['median_seconds']:.0f}"
        lines.append(
            f"| `{e['preset']}` | {e['converged']}/{len(e['runs'])} | {cells} | {step} | {secs} | {e['median_run_seconds']:.0f} |"
        )
    return "\n".join(lines)
