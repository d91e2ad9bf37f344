"""The method comparisons' figures: KID per preset (bars), KID over training (one panel per preset)
and the final samples (one grid per preset)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plot_bars", "plot_curves", "plot_samples", "mean_curve", "pyplot", "save"]


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path, dpi: int = 120) -> Path:
    """Lay out, write and close ``fig``."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def _order(agg: list[dict]) -> list[dict]:
    return sorted(agg, key=lambda e: e["kid"] if e["kid"] is not None else float("inf"))


def mean_curve(rows: list[dict]) -> list[tuple[int, float, float]]:
    """``(step, mean, std)`` over the runs' KID curves, at the steps every run evaluated."""
    import statistics

    per_run = [dict(r["curve"]) for r in rows]
    steps = sorted(set.intersection(*(set(c) for c in per_run))) if per_run else []
    out = []
    for s in steps:
        vals = [c[s] for c in per_run]
        out.append((s, statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0))
    return out


def plot_bars(agg: list[dict], rows: list[dict], path: Path, xlabel: str) -> Path:
    plt = pyplot()
    order = _order(agg)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.2))
    ys = list(range(len(order)))
    ax.barh(ys, [e["kid"] for e in order], xerr=[e["kid_std"] for e in order], color="tab:blue", alpha=0.8)
    for e, y in zip(order, ys):
        seeds = [r["kid"] for r in rows if r["preset"] == e["preset"]]
        ax.plot(seeds, [y] * len(seeds), "k.", ms=4)
    ax.set_yticks(ys, [e["preset"] for e in order])
    ax.invert_yaxis()
    ax.set_xlabel(f"{xlabel} (mean ± std over seeds; dots: seeds)")
    return save(fig, path, dpi=120)


def plot_curves(agg: list[dict], rows: list[dict], path: Path, ylabel: str) -> Path:
    """One panel per preset, best first: each seed's KID over training (thin) and the mean (thick),
    over the best preset's mean (grey) for reference, on a shared log scale."""
    plt = pyplot()
    order = _order(agg)
    cols = min(5, len(order))
    nrows = -(-len(order) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.6 * cols, 2.2 * nrows), sharex=True, sharey=True, squeeze=False)
    best = mean_curve([r for r in rows if r["preset"] == order[0]["preset"]])
    for ax in axes.flat[len(order):]:
        ax.axis("off")
    for ax, e in zip(axes.flat, order):
        mine = [r for r in rows if r["preset"] == e["preset"]]
        if best:
            ax.plot([s for s, _, _ in best], [m for _, m, _ in best], color="0.7", lw=1.5)
        for r in mine:
            if r["curve"]:
                ax.plot(*zip(*r["curve"]), color="tab:blue", lw=0.6, alpha=0.6)
        mean = mean_curve(mine)
        if mean:
            ax.plot([s for s, _, _ in mean], [m for _, m, _ in mean], color="tab:blue", lw=2)
        ax.set_title(f"{e['preset']}  {e['kid']:.2f} ± {e['kid_std']:.2f}", fontsize=8)
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    for ax in axes[-1]:
        ax.set_xlabel("generator step", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    return save(fig, path, dpi=110)


def plot_samples(agg: list[dict], rows: list[dict], path: Path, prefix: str = "") -> Path | None:
    """Seed 0's final sample grid of every preset, best first; None when no run saved samples."""
    from PIL import Image

    grids = []
    for e in _order(agg):
        run = next(r for r in rows if r["preset"] == e["preset"])
        pngs = sorted((Path(run["run_dir"]) / "samples").glob("step_*.png"))
        if pngs:
            grids.append((e["preset"], e["kid"], pngs[-1]))
    if not grids:
        return None
    plt = pyplot()
    cols = min(5, len(grids))
    nrows = -(-len(grids) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.4 * cols, 2.6 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, k, png) in zip(axes.flat, grids):
        with Image.open(png) as im:
            ax.imshow(im.convert("RGB"))
        ax.set_title(f"{name.removeprefix(prefix)}\nKID {k:.3f}", fontsize=8)
    return save(fig, path, dpi=120)
