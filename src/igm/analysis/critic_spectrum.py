"""``igm figure critic-spectrum``: singular values and condition numbers of the critic's layers
during training, with and without the spectral parametrisation (seed 000, figure 2 (b, d), figure 9
and section 3.3's "rank collapse").

Each preset (by default ``digits-smmd``: Scaled MMD, no parametrisation, and ``digits-sn-smmd``: the
same with W̄ = s · W / σ̂(W) and learned scales s) is trained for ``steps`` generator steps. Every
``every`` steps a training callback reads :func:`igm.nn.spectral.layer_spectra` of the critic: the
exact singular values of every layer's effective weight (conv kernels reshaped to
(out, in·kh·kw)). Outputs:

- ``critic-spectrum.png``: per layer, the top singular value and the condition number
  σ_max / σ_min (log scale) against the step, one line style per preset;
- ``critic-spectrum-final.png``: per layer, the normalised singular value spectrum σ_i / σ_max at
  the first, middle and last recorded steps;
- ``critic-spectrum.json``: every recorded spectrum and the training statistics.

The paper's collapse appeared late in long CelebA runs; a few hundred steps on 16×16 digits show
the early trend only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from igm.analysis.figures import register, write_json
from igm.nn.spectral import layer_spectra

__all__ = ["CriticSpectrumOptions", "train_and_record", "critic_spectrum"]

_STATS = ("critic_loss", "generator_loss", "mmd2", "scale", "jacobian", "smmd2")


@dataclass
class CriticSpectrumOptions:
    presets: tuple[str, ...] = ("digits-smmd", "digits-sn-smmd")
    steps: int = 400  # generator steps per run
    every: int = 20  # record the spectra every this many generator steps
    seed: int = 0
    threads: int = 1  # torch CPU threads
    overrides: tuple[str, ...] = ()  # extra key=value run overrides applied to every preset


def _record(critic) -> dict:
    out = {}
    for name, s in layer_spectra(critic, include_plain=True).items():
        out[name] = {
            "sigma_max": s.sigma_max, "sigma_min": s.sigma_min, "condition_number": s.condition_number,
            "scale": s.scale, "singular_values": s.singular_values.tolist(),
        }
    return out


def train_and_record(preset: str, opts: CriticSpectrumOptions) -> tuple[dict, torch.nn.Module]:
    """Train one preset without writing a run directory, reading the critic's spectra every
    ``opts.every`` steps (and before the first step). Returns (history, trained critic)."""
    from igm.train import apply_overrides, build_run, presets, train

    overrides = [
        f"train.steps={opts.steps}", f"train.seed={opts.seed}", f"train.threads={opts.threads}",
        "train.progress=false", "eval.every=0", f"train.log_every={opts.every}", "train.sample_every=0",
        f"train.checkpoint_every={opts.steps}", *opts.overrides,
    ]
    run = build_run(apply_overrides(presets.get(preset), overrides), None)
    if run.critic is None:
        raise ValueError(f"preset {preset!r} has no critic")
    history = {"steps": [0], "layers": [_record(run.critic)], "stats": [{}]}

    def callback(event: str, step: int, values: dict) -> None:
        if event == "log" and step % opts.every == 0:
            history["steps"].append(step)
            history["layers"].append(_record(run.critic))
            history["stats"].append({k: float(values[k]) for k in _STATS if k in values})

    t0 = time.perf_counter()
    summary = train(run, callbacks=[callback])
    history["seconds"] = time.perf_counter() - t0
    history["rollbacks"] = summary.get("rollbacks", 0)
    history["spectral"] = run.config.model.spectral
    return history, run.critic


def _series(history: dict, layer: str, key: str) -> list[float]:
    return [rec[layer][key] for rec in history["layers"]]


def _plot_over_training(opts: CriticSpectrumOptions, histories: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = list(next(iter(histories.values()))["layers"][0])
    fig, axes = plt.subplots(3, len(layers), figsize=(4.3 * len(layers), 9.5), squeeze=False)
    styles = ["-", "--", ":", "-."]
    for i, layer in enumerate(layers):
        n_sv = len(next(iter(histories.values()))["layers"][0][layer]["singular_values"])
        rows = (0, 1, 2) if n_sv > 1 else (0,)
        for j, (preset, h) in enumerate(histories.items()):
            kw = dict(ls=styles[j % 4], label=preset)
            for r, key in zip(rows, ("sigma_max", "condition_number", "sigma_min")):
                axes[r, i].plot(h["steps"], _series(h, layer, key), **kw)
        axes[0, i].set_title(f"layer {layer} ({n_sv} singular value{'s' if n_sv > 1 else ''})", fontsize=10)
        axes[0, i].set_ylabel("top singular value σ_max")
        axes[1, i].set_ylabel("condition number σ_max / σ_min")
        axes[2, i].set_ylabel("smallest singular value σ_min")
        if n_sv == 1:
            for r in (1, 2):
                axes[r, i].axis("off")
            axes[1, i].text(0.5, 0.5, f"{layer}: one singular value\n(condition number 1)", ha="center",
                            va="center", transform=axes[1, i].transAxes)
        for r in rows:
            axes[r, i].set_yscale("log")
            axes[r, i].set_xlabel("generator step")
            axes[r, i].legend(fontsize=8)
    fig.suptitle("critic layer spectra during training (effective weights; log scale)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_spectra(opts: CriticSpectrumOptions, histories: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(histories.values()))["layers"][0]
    layers = [n for n in first if len(first[n]["singular_values"]) > 1] or list(first)
    presets = list(histories)
    fig, axes = plt.subplots(len(presets), len(layers), figsize=(4.3 * len(layers), 3.4 * len(presets)),
                             squeeze=False, sharey="col")
    for r, preset in enumerate(presets):
        h = histories[preset]
        n = len(h["steps"])
        picks = sorted({0, n // 2, n - 1})
        for c, layer in enumerate(layers):
            ax = axes[r, c]
            for k, idx in enumerate(picks):
                sv = h["layers"][idx][layer]["singular_values"]
                top = sv[0] if sv and sv[0] > 0 else 1.0
                ax.plot(range(1, len(sv) + 1), [v / top for v in sv], "o-", ms=2.5,
                        color=plt.cm.viridis(k / max(1, len(picks) - 1)), label=f"step {h['steps'][idx]}")
            ax.set_yscale("log")
            ax.set_title(f"{preset}: {layer}", fontsize=10)
            ax.set_xlabel("index i")
            ax.set_ylabel("σ_i / σ_max")
            ax.legend(fontsize=8)
    fig.suptitle("normalised singular value spectrum of each critic layer (first, middle and last record)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fmt(x: float) -> str:
    return "inf" if not math.isfinite(x) else f"{x:.3g}"


@register("critic-spectrum", CriticSpectrumOptions,
          quick={"steps": 20, "every": 10},
          help="critic layer singular values / condition numbers over training, with and without "
               "the spectral parametrisation (seed 000 fig. 2 b, d)")
def critic_spectrum(opts: CriticSpectrumOptions, out_dir: Path) -> dict:
    if opts.steps < 1 or opts.every < 1 or not opts.presets:
        raise ValueError("steps and every must be positive and presets non-empty")
    histories, critics = {}, {}
    for preset in opts.presets:
        histories[preset], critics[preset] = train_and_record(preset, opts)
    paths = [out_dir / "critic-spectrum.png", out_dir / "critic-spectrum-final.png"]
    _plot_over_training(opts, histories, paths[0])
    _plot_spectra(opts, histories, paths[1])
    summary = [f"after {opts.steps} generator steps (initial → final):"]
    for preset, h in histories.items():
        summary.append(f"  {preset} ({h['seconds']:.0f} s):")
        for layer in h["layers"][0]:
            first, last = h["layers"][0][layer], h["layers"][-1][layer]
            summary.append(
                f"    {layer:8s} σ_max {_fmt(first['sigma_max'])} → {_fmt(last['sigma_max'])}, "
                f"condition number {_fmt(first['condition_number'])} → {_fmt(last['condition_number'])} "
                f"(max {_fmt(max(_series(h, layer, 'condition_number')))}), scale {_fmt(last['scale'])}"
            )
    payload = {"options": opts, "runs": histories, "figures": [str(p) for p in paths], "summary": summary}
    write_json(out_dir / "critic-spectrum.json", payload)
    return {**payload, "critics": critics}  # the trained critics, for inspection (not in the JSON)
