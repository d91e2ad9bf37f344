"""``igm figure diracgan``: the registered figure."""

from __future__ import annotations

from pathlib import Path

import torch

from igm.analysis.diracgan.compute import compute
from igm.analysis.diracgan.methods import ALL_METHODS
from igm.analysis.diracgan.options import DiracFigureOptions, validate
from igm.analysis.diracgan.plot import plot_critics, plot_fields
from igm.analysis.diracgan.report import compact, summary
from igm.analysis.figures import register, write_json

__all__ = ["diracgan", "QUICK_METHODS"]

#: The quick mode's panels: all but lipmmd (slow; the tests run it on its own), GCMMD on 16 μ points.
QUICK_METHODS = {m: {"points": 16} if m == "gcmmd" else None for m in ALL_METHODS if m != "lipmmd"}


@register(
    "diracgan",
    DiracFigureOptions,
    quick={"grid": 5, "steps": 60, "lr": 0.3, "extra_starts": (), "critic_points": 201, "sup_thetas": 4,
           "sup_psis": 16, "dpi": 60, "methods": QUICK_METHODS},
    help="seed 000 figures 1 and 5: DiracGAN vector fields, trajectories, critics and optimised distances",
)
def diracgan(opts: DiracFigureOptions, out_dir: Path) -> dict:
    validate(opts)
    torch.set_num_threads(1)
    result = compute(opts)
    fields_png, critics_png = out_dir / "diracgan-fields.png", out_dir / "diracgan-critics.png"
    plot_fields(result, opts, fields_png)
    plot_critics(result, opts, critics_png)
    result["summary"] = summary(result, opts)
    result["figures"] = [str(fields_png), str(critics_png)]
    write_json(out_dir / "diracgan.json", compact(result))
    return result
