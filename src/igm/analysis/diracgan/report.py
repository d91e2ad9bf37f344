"""The DiracGAN figure's JSON copy of its numbers and its printed summary."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from igm.analysis.diracgan.options import DiracFigureOptions

__all__ = ["compact", "significant", "summary"]


def significant(values: Any, digits: int = 10) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (for a smaller JSON)."""
    a = np.asarray(values, dtype=float)
    return np.vectorize(lambda v: float(f"{v:.{digits}g}"), otypes=[float])(a) if a.size else a


def compact(result: dict, max_points: int = 101) -> dict:
    """The JSON copy of the result: trajectories every ``stride`` steps (at most ``max_points``
    points, the last one kept), arrays to 10 significant digits, the critics only normalised, and
    each method's hyperparameters in full (its defaults included)."""
    out = dict(result)
    if "options" in result:
        opts = result["options"]
        out["options"] = {**dataclasses.asdict(opts), "methods": {n: opts.hyperparameters(n) for n in opts.methods}}
    out["fields"] = {k: {key: significant(val) for key, val in f.items()} for k, f in result["fields"].items()}
    trajs = {}
    for name, runs in result["trajectories"].items():
        trajs[name] = []
        for run in runs:
            n = len(run["theta"])
            stride = max(1, -(-(n - 1) // (max_points - 1)))
            idx = sorted(set(range(0, n, stride)) | {n - 1})
            trajs[name].append({"start": run["start"], "stride": stride, "step": idx,
                                "theta": significant(np.asarray(run["theta"])[idx]), "psi": significant(np.asarray(run["psi"])[idx])})
    out["trajectories"] = trajs
    crit = result["critics"]
    out["critics"] = {**crit, "x": significant(crit["x"]), "curves": {
        k: {key: (significant(val) if key == "normalised" else val) for key, val in c.items() if key != "values"}
        for k, c in crit["curves"].items()}}
    return out


def summary(result: dict, opts: DiracFigureOptions) -> list[str]:
    """The lines ``igm figure diracgan`` prints: where each method's main trajectory ends."""
    width = max(len(n) for n in opts.methods)
    lines = [f"final |θ| after {opts.steps} alternating steps from (θ, ψ) = ({opts.start_theta:g}, "
             f"{opts.start_psi:g}), lr {opts.lr:g}:"]
    for name in opts.methods:
        fin = result["final"][name]
        below = fin["first_step_abs_theta_below_0.05"]
        lines.append(f"  {name:<{width}s} |θ| {fin['abs_theta']:.3g}  ψ {fin['psi']:+.3g}  "
                     f"|θ| < 0.05 from step {below if below is not None else '-'}  ({result['timings'][name]:.1f} s)")
    return lines
