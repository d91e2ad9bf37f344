"""Throughput of the speed switches (train.amp, channels_last, compile, cudnn_benchmark) on full presets.

On a GPU (the intended use; one preset per call keeps each under ~5 minutes with compilation):

    PYTHONPATH=src python benchmarks/bench_speed.py --device cuda --presets cifar10-sn-smmd
    PYTHONPATH=src python benchmarks/bench_speed.py --device cuda --presets cifar10-wgan-gp

CPU smoke run (checks that the script works; the numbers say nothing about a GPU):

    PYTHONPATH=src python benchmarks/bench_speed.py --device cpu --quick --threads 1

For each preset it trains with synthetic CIFAR-shaped data (uint8 noise in a temporary .npy file;
pass ``--data DIR`` to use a real cifar-10-batches-py folder) and reports, per configuration:

- generator iterations per second (one iteration = n_critic critic steps + one generator step, as
  the loop runs them, ``train.extra_critic_steps=0``), after ``--warmup`` iterations (compilation
  and cuDNN autotuning happen there; their time is reported separately);
- the critic step's achieved TFLOP/s: matmul/conv FLOPs of one critic step (G forward for the fake
  batch, critic loss with its penalty's double backward, backward, Adam) counted once with
  ``torch.utils.flop_counter.FlopCounterMode`` on the float32 eager baseline (the same maths in every
  configuration), divided by the measured time of a critic step; and its share of the card's
  dense bf16 tensor-core peak (spec-sheet figures, :data:`PEAK_BF16_TFLOPS`).

Configurations: all switches off (baseline), each switch on alone, the resolved defaults, all on.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model  # noqa: E402

from igm.train import apply_overrides, build_run, presets  # noqa: E402
from igm.train import loop, speed, step  # noqa: E402

#: Dense (no structured sparsity) BF16 tensor-core peak in TFLOP/s from NVIDIA's spec sheets,
#: matched in order against ``torch.cuda.get_device_name()``. H200 is the H100's GH100 chip at the
#: same clocks (SXM). PCIe/NVL parts run lower clocks and have their own rows; unknown cards get none.
PEAK_BF16_TFLOPS: list[tuple[tuple[str, ...], float]] = [
    (("H100", "PCIe"), 756.0),
    (("H100", "NVL"), 835.0),
    (("H100",), 989.4),  # SXM5
    (("H200", "NVL"), 835.0),
    (("H200",), 989.4),  # SXM
    (("A100",), 312.0),
    (("L40S",), 362.0),
    (("L4",), 121.0),
]

SWITCHES = ("amp", "channels_last", "compile", "cudnn_benchmark")
OFF = {"amp": "off", "channels_last": "off", "compile": "off", "cudnn_benchmark": "off"}
ON = {"amp": "bf16", "channels_last": "on", "compile": "on", "cudnn_benchmark": "on"}


def peak_tflops(device: torch.device) -> tuple[str, float | None]:
    if device.type != "cuda":
        return cpu_model(), None
    name = torch.cuda.get_device_name(device)
    for keys, peak in PEAK_BF16_TFLOPS:
        if all(k in name for k in keys):
            return name, peak
    return name, None


def configurations(skip_compile: bool) -> list[tuple[str, dict[str, str]]]:
    configs = [("all off (baseline)", dict(OFF))]
    for s in SWITCHES:
        if s == "compile" and skip_compile:
            continue
        configs.append((f"{s} only", {**OFF, s: ON[s]}))
    configs.append(("defaults (auto)", {"amp": "auto", "channels_last": "auto", "compile": "off", "cudnn_benchmark": "auto"}))
    configs.append(("all on", dict(ON) if not skip_compile else {**ON, "compile": "off"}))
    return configs


def synthetic_cifar(folder: Path, n: int = 2048) -> Path:
    path = folder / "cifar_shaped.npy"
    rng = np.random.default_rng(0)
    np.save(path, rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8))
    return path


def overrides_for(args, data_path: Path | None, switches: dict[str, str]) -> list[str]:
    out = [
        f"train.device={args.device}",
        "train.progress=false",
        "train.extra_critic_steps=0",
        "train.sample_every=0",
        "train.checkpoint_every=1000000",
        "train.log_every=1000000",
        "eval.every=0",
        "eval.adaptive=false",
        f"train.steps={10**9}",
        *(f"train.{k}={v}" for k, v in switches.items()),
    ]
    if args.batch:
        out.append(f"train.batch_size={args.batch}")
    if data_path is not None:
        out += ["data.name=npy", f"data.params.path={data_path}"]
    elif args.data:
        out.append(f"data.params.path={args.data}")
    return out


def quick_overrides(preset: str) -> list[str]:
    cfg = presets.get(preset)
    out = []
    for role, arch in (("generator", cfg.model.generator), ("critic", cfg.model.critic)):
        key = "channels" if arch == "resnet" else "base_channels"
        out.append(f"model.{role}_params.{key}={16 if arch == 'resnet' else 8}")
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def critic_step(run, g, c, c_params) -> None:
    """One critic step exactly as :func:`igm.train.loop.train_step` runs it."""
    cfg = run.config
    bs = cfg.train.batch_size
    with torch.no_grad():
        fake = g(step._sample_z(run, bs))
    loss, stats = run.objective.critic_loss(c, step._real(run, bs), fake)
    run.opt_c.zero_grad(set_to_none=True)
    loss.backward()
    step._optimizer_step(run.opt_c, c_params, cfg.optim.grad_clip)
    run.objective.after_critic_step(c, stats)


class _GlobalOnly:
    """Stands in for FlopCounterMode's ModuleTracker: its backward hooks raise under
    ``autograd.grad`` on leaf inputs ("A leaf node was passed to _will_engine_execute_node"), which
    every gradient penalty does. We need the global total only."""

    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def count_critic_flops(run) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    g, c = speed.forwards(run)
    params = [p for p in run.critic.parameters() if p.requires_grad]
    critic_step(run, g, c, params)  # warm (lazy state, Adam buffers)
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    with counter:
        critic_step(run, g, c, params)
    return int(counter.get_total_flops())


def time_run(run, device, warmup: int, steps: int, critic_steps: int) -> dict[str, float]:
    t0 = time.perf_counter()
    for _ in range(warmup):
        loop.train_step(run)
        run.step += 1
    sync(device)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        loop.train_step(run)
        run.step += 1
    sync(device)
    gen = (time.perf_counter() - t0) / steps
    g, c = speed.forwards(run)
    params = [p for p in run.critic.parameters() if p.requires_grad]
    critic_step(run, g, c, params)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(critic_steps):
        critic_step(run, g, c, params)
    sync(device)
    crit = (time.perf_counter() - t0) / critic_steps
    return {"warmup_s": warm, "gen_it_per_s": 1.0 / gen, "critic_step_ms": crit * 1e3}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--presets", nargs="+", default=["cifar10-sn-smmd", "cifar10-wgan-gp"])
    ap.add_argument("--steps", type=int, default=20, help="timed generator iterations per configuration")
    ap.add_argument("--warmup", type=int, default=5, help="untimed iterations first (compilation happens here)")
    ap.add_argument("--critic-steps", type=int, default=20, help="timed critic steps for TFLOP/s")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: the preset's)")
    ap.add_argument("--data", default=None, help="a real cifar-10-batches-py folder (default: synthetic data)")
    ap.add_argument("--quick", action="store_true", help="tiny networks, batch 8, 2 timed steps: a smoke run")
    ap.add_argument("--no-compile", action="store_true", help="leave out the configurations with torch.compile")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.critic_steps = min(args.steps, 2), min(args.warmup, 1), min(args.critic_steps, 2)
        args.batch = args.batch or 8
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    card, peak = peak_tflops(device)
    print(f"device: {card}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    print(f"bf16 dense peak (spec sheet): {f'{peak:.1f} TFLOP/s' if peak else 'n/a'}")
    if args.quick:
        print("QUICK MODE: tiny networks and batch; a smoke run, not a measurement of the presets")
    results: dict = {"device": card, "peak_bf16_tflops": peak, "torch": torch.__version__, "quick": args.quick, "presets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        data_path = None if (args.data and Path(args.data).is_dir()) else synthetic_cifar(Path(tmp))
        print(f"data: {'real CIFAR-10 from ' + args.data if data_path is None else 'synthetic CIFAR-shaped uint8 noise'}")
        for preset in args.presets:
            extra = quick_overrides(preset) if args.quick else []
            base = apply_overrides(presets.get(preset), [*overrides_for(args, data_path, OFF), *extra])
            run = build_run(base)
            flops = count_critic_flops(run)
            del run
            t = base.train
            print(f"\n{preset}: batch {t.batch_size}, n_critic {t.n_critic}, {base.model.generator}/{base.model.critic}, "
                  f"objective {base.objective.name}; critic step {flops / 1e9:.2f} GFLOP (matmul/conv, counted fp32 eager)")
            print(f"{'configuration':22s} {'gen it/s':>9s} {'speedup':>8s} {'critic ms':>10s} {'TFLOP/s':>8s} {'% peak':>7s} {'warmup s':>9s}  applied")
            rows = []
            baseline = None
            for label, switches in configurations(args.no_compile):
                cfg = apply_overrides(presets.get(preset), [*overrides_for(args, data_path, switches), *extra])
                torch.manual_seed(0)
                run = build_run(cfg)
                r = time_run(run, device, args.warmup, args.steps, args.critic_steps)
                tflops = flops / (r["critic_step_ms"] * 1e-3) / 1e12
                baseline = baseline or r["gen_it_per_s"]
                row = {
                    "configuration": label,
                    "switches": switches,
                    **r,
                    "speedup": r["gen_it_per_s"] / baseline,
                    "critic_tflops": tflops,
                    "percent_of_peak": 100 * tflops / peak if peak else None,
                    "applied": run.speed.describe(),
                }
                rows.append(row)
                pct = f"{row['percent_of_peak']:6.1f}%" if peak else "    n/a"
                print(f"{label:22s} {r['gen_it_per_s']:9.2f} {row['speedup']:7.2f}x {r['critic_step_ms']:10.2f} {tflops:8.3f} {pct} "
                      f"{r['warmup_s']:9.1f}  {row['applied'].split(': ', 1)[1]}")
                del run
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            results["presets"][preset] = {"critic_step_flops": flops, "batch_size": t.batch_size, "n_critic": t.n_critic, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
