"""``igm figure wgan-adam-vs-rmsprop``: the WGAN paper's negative result on momentum (seed 001, §4.2).

The paper trained the clipped WGAN critic with Adam (β₁ = 0.5) and found training unstable at times,
with the cosine between Adam's step and the gradient turning negative where the critic loss blew up.
RMSProp, which has no momentum, was stable, so the paper used it.

Here ``mnist-wgan`` is trained on the shipped MNIST digits with each optimiser at the same learning
rate, over several seeds, with ``train.update_cosine=true``. Each run logs, at every generator
step (``log_every=1``), the cosine between the critic's last update of the step and its negative
gradient, together with the EM estimate, and KID on the MNIST net every ``eval_every`` steps. The
figure draws the three quantities over training, and its JSON records, per optimiser, the mean
cosine, the share of logged steps whose cosine is negative, the most negative one, the EM
estimate's step-to-step jitter, and the final KID.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from igm.analysis.comparison import ComparisonOptions, run_all
from igm.analysis.comparison_plots import mean_curve, pyplot, save
from igm.analysis.figures import register, write_json
from igm.analysis.wgan_quality import check_critic_norm

__all__ = ["AdamVsRmspropOptions", "logged", "optimizer_summary", "adam_vs_rmsprop"]

PRESET = "mnist-wgan"


@dataclass
class AdamVsRmspropOptions:
    seeds: int = 3
    steps: int = 1000  # generator steps per run (n_critic 5); the 6 runs take about 20 minutes on one core
    lr: float = 5.0e-4  # for both networks and both optimisers (the paper's RMSProp rate is 5e-5; see the doc)
    adam_betas: tuple[float, float] = (0.5, 0.999)  # the paper's β₁ = 0.5
    critic_norm: str = "batch"  # the WGAN code's DCGAN critic: batch norm after every conv but the first
    eval_every: int = 100
    eval_samples: int = 1000
    overrides: tuple[str, ...] = ()  # for every run, e.g. network widths
    log_every: int = 1  # the cosine and the EM estimate of every generator step
    threads: int = 1
    progress: bool = False


def logged(run_dir: Path, key: str) -> list[tuple[int, float]]:
    """``(step, value)`` of ``key`` in a run's metrics.jsonl, by step (a resumed run's later record)."""
    from igm.train.artifacts import read_metrics

    path = Path(run_dir) / "metrics.jsonl"
    at = {r["step"]: float(r[key]) for r in read_metrics(path) if key in r} if path.is_file() else {}
    return sorted(at.items())


def optimizer_summary(rows: list[dict]) -> dict:
    """Over an optimiser's runs: cosine mean, share of negative logged values, the most negative, the EM
    estimate's jitter (mean |Δ| between consecutive logged values), and final KID mean ± std."""
    cos = [v for r in rows for _, v in r["cosine"]]
    jitter = [statistics.fmean(abs(b - a) for (_, a), (_, b) in zip(r["em"], r["em"][1:])) for r in rows if len(r["em"]) > 1]
    kids = [r["kid"] for r in rows if r.get("kid") is not None]
    return {
        "cosine_mean": statistics.fmean(cos) if cos else None,
        "negative_share": sum(c < 0 for c in cos) / len(cos) if cos else None,
        "cosine_min": min(cos) if cos else None,
        "em_jitter": statistics.fmean(jitter) if jitter else None,
        "kid": statistics.fmean(kids) if kids else None,
        "kid_std": statistics.stdev(kids) if len(kids) > 1 else 0.0,
        "kid_per_seed": kids,
    }


def _line(name: str, s: dict) -> str:
    def f(v, spec):
        return "n/a" if v is None else format(v, spec)

    share = None if s["negative_share"] is None else 100 * s["negative_share"]
    return (f"{name}: cosine mean {f(s['cosine_mean'], '.3f')}, negative at {f(share, '.1f')}% of steps "
            f"(min {f(s['cosine_min'], '.3f')}); EM jitter {f(s['em_jitter'], '.4f')}; "
            f"KID {f(s['kid'], '.2f')} ± {f(s['kid_std'], '.2f')}")


def _plot(per: dict[str, list[dict]], path: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for (name, rows), color in zip(per.items(), ("tab:red", "tab:blue")):
        for i, r in enumerate(rows):
            label = name if i == 0 else None
            if r["cosine"]:
                axes[0].plot(*zip(*r["cosine"]), color=color, alpha=0.7, lw=1, label=label)
            if r["em"]:
                axes[1].plot(*zip(*r["em"]), color=color, alpha=0.7, lw=1, label=label)
        curve = mean_curve(rows)
        if curve:
            steps, means, stds = zip(*curve)
            axes[2].plot(steps, means, color=color, lw=2, label=name)
            axes[2].fill_between(steps, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                                 color=color, alpha=0.2)
    axes[0].axhline(0, color="0.5", lw=1)
    titles = ("cos(critic update, −gradient)", "EM estimate (critic)", "MNIST-net KID ×10³")
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("generator step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save(fig, path)


@register("wgan-adam-vs-rmsprop", AdamVsRmspropOptions,
          quick={"seeds": 2, "steps": 4, "eval_every": 2, "eval_samples": 64,
                 "overrides": ("model.generator_params.base_channels=4", "model.critic_params.base_channels=4")},
          help="seed 001 §4.2: WGAN's critic with Adam (β₁ 0.5) vs RMSProp on MNIST, update–gradient cosine")
def adam_vs_rmsprop(opts: AdamVsRmspropOptions, out_dir: Path) -> dict:
    out_dir = Path(out_dir)
    check_critic_norm(opts.critic_norm)
    base = (*opts.overrides, f"model.critic_params.norm={opts.critic_norm}", "train.update_cosine=true",
            f"optim.lr_generator={opts.lr}", f"optim.lr_critic={opts.lr}")
    settings = {
        "rmsprop": base + ("optim.optimizer=rmsprop",),
        "adam": base + ("optim.optimizer=adam", f"optim.betas=[{opts.adam_betas[0]}, {opts.adam_betas[1]}]"),
    }
    per: dict[str, list[dict]] = {}
    for name, overrides in settings.items():
        cmp = ComparisonOptions(presets=(PRESET,), seeds=opts.seeds, steps=opts.steps, eval_every=opts.eval_every,
                                eval_samples=opts.eval_samples, overrides=overrides, threads=opts.threads,
                                progress=opts.progress, log_every=opts.log_every)
        rows = run_all([PRESET], cmp, out_dir / name)
        for r in rows:
            r["cosine"] = logged(Path(r["run_dir"]), "critic/update_cosine")
            r["em"] = logged(Path(r["run_dir"]), "critic/em_estimate")
        per[name] = rows
    figure = _plot(per, out_dir / "wgan-adam-vs-rmsprop.png")
    summary = {name: optimizer_summary(rows) for name, rows in per.items()}
    result = {
        "preset": PRESET, "steps": opts.steps, "seeds": opts.seeds, "lr": opts.lr, "adam_betas": list(opts.adam_betas),
        "optimizers": summary,
        "runs": {name: [{k: r[k] for k in ("seed", "kid", "fid", "seconds", "cosine", "em", "curve")} for r in rows]
                 for name, rows in per.items()},
        "figure": str(figure),
        "summary": [_line(name, s) for name, s in summary.items()],
    }
    write_json(out_dir / "wgan-adam-vs-rmsprop.json", result)
    return result
