#!/usr/bin/env python
"""CPU benchmark of data-parallel training (issue: distributed): iterations per second of
2 processes × batch B against 1 process × batch 2B, the same global batch per iteration.

One iteration is ``igm.train.loop.train_step(run)``: one generator step with its ``n_critic``
critic steps, on a run built by ``build_run(cfg, out_dir=None)`` (no I/O). The 2-process case runs
in processes started by this script (``torch.multiprocessing``, spawn) that join a
gloo group through a file, exactly as under torchrun (``igm.train.distributed`` takes an initialised
group as it is); each process runs one torch thread. The 1-process case runs in this process with
1 thread and, with ``--two-threads``, also with 2 (the same two cores used by one process).

Cases: ``ring-smmd`` (MLPs, B = 128 per process) and ``digits-smmd`` (16×16 DCGANs, B = 64), both
with the block estimator, plus ``ring-smmd`` with the gathered estimator. Each round runs every
configuration once: ``--warmup`` iterations, then ``--iters`` iterations each timed on its own (rank
0's clock in the 2-process case; the ranks wait for each other at every all-reduce). Reported: the
median seconds per iteration over all rounds, iterations/s, samples/s (global batch × it/s), the
ratio of the 2-process rate to the 1-process rates, and the median CPU time per iteration of one
process (rank 0's in the 2-process case: its share of the work, without the time spent waiting).

    python benchmarks/bench_distributed.py [--rounds 3] [--iters 24] [--warmup 4] [--cases ring-smmd,...]
                                           [--two-threads]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time

from _common import cpu_model  # noqa: E402 (benchmarks/ is on sys.path when run as a script)
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

CASES = {  # name: (preset, per-process batch B, extra overrides)
    "ring-smmd": ("ring-smmd", 128, []),
    "ring-smmd/gathered": ("ring-smmd", 128, ["dist.mmd_estimator=gathered"]),
    "digits-smmd": ("digits-smmd", 64, []),
}
BASE = ["train.progress=false", "eval.every=0", "train.sample_every=0", "train.log_every=1000000", "train.steps=1000000",
        "train.checkpoint_every=1000000"]


def _config(case: str, batch: int, threads: int):
    from igm.train import apply_overrides, presets

    preset, _, extra = CASES[case]
    return apply_overrides(presets.get(preset), [*BASE, *extra, f"train.batch_size={batch}", f"train.threads={threads}"])


def _time_iterations(run, warmup: int, iters: int, sync=None) -> list[float]:
    from igm.train.loop import train_step

    for _ in range(warmup):
        train_step(run)
        run.step += 1
    if sync is not None:
        sync()
    times = []
    for _ in range(iters):
        t0, c0 = time.perf_counter(), time.process_time()
        train_step(run)
        times.append((time.perf_counter() - t0, time.process_time() - c0))
        run.step += 1
    return times


def one_process(case: str, threads: int, warmup: int, iters: int) -> list[float]:
    from igm.train import build_run

    _, b, _ = CASES[case]
    run = build_run(_config(case, 2 * b, threads), None)
    return _time_iterations(run, warmup, iters)


def _rank(rank: int, world: int, tmp: str, case: str, warmup: int, iters: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/pg", rank=rank, world_size=world)
    try:
        from igm.train import build_run

        _, b, _ = CASES[case]
        run = build_run(_config(case, b, 1), None)
        assert run.dist is not None and run.dist.world == world
        times = _time_iterations(run, warmup, iters, sync=dist.barrier)
        if rank == 0:
            torch.save(times, os.path.join(tmp, "times.pt"))
    finally:
        dist.destroy_process_group()


def two_processes(case: str, warmup: int, iters: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:  # spawn: this process has run 2-thread OpenMP regions
        mp.start_processes(_rank, args=(2, tmp, case, warmup, iters), nprocs=2, join=True, start_method="spawn")
        return torch.load(os.path.join(tmp, "times.pt"))


def _print_load(when: str) -> None:
    try:
        print(f"# load average at {when}: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    except OSError:  # not every platform reports one
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=24)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--two-threads", action="store_true", help="also time 1 process × 2B with 2 threads")
    args = parser.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]}; valid: {', '.join(CASES)}")
    print(f"# bench_distributed  {datetime.date.today()}  {cpu_model()}, {os.cpu_count()} logical cores, "
          f"torch {torch.__version__}, Python {platform.python_version()}")
    _print_load("start")
    labels = ("1 proc × 2B, 1 thread",) + (("1 proc × 2B, 2 threads",) if args.two_threads else ()) + ("2 procs × B (gloo)",)
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {(c, lab): [] for c in cases for lab in labels}
    t_start = time.perf_counter()
    for r in range(args.rounds):
        for case in cases:
            samples[(case, labels[-1])] += two_processes(case, args.warmup, args.iters)
            samples[(case, labels[0])] += one_process(case, 1, args.warmup, args.iters)
            if args.two_threads:
                samples[(case, labels[1])] += one_process(case, 2, args.warmup, args.iters)
            torch.set_num_threads(1)
        print(f"# round {r + 1}/{args.rounds} done ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr)
    _print_load("end")
    print(f"# {args.rounds} rounds × {args.iters} timed iterations per configuration (after {args.warmup} warm-up); "
          "one iteration = 1 generator step + n_critic critic steps")
    print()
    print("| case | configuration | global batch | median s/it | it/s | samples/s | 2 procs ÷ this | CPU s/it (per process) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for case in cases:
        b = CASES[case][1]
        med = {lab: statistics.median(t for t, _ in samples[(case, lab)]) for lab in labels}
        cpu = {lab: statistics.median(c for _, c in samples[(case, lab)]) for lab in labels}
        for lab in labels:
            ratio = med[lab] / med[labels[-1]]
            print(f"| {case} | {lab} | {2 * b} | {med[lab]:.4f} | {1 / med[lab]:.2f} | {2 * b / med[lab]:.0f} | "
                  f"{'—' if lab == labels[-1] else f'{ratio:.2f}×'} | {cpu[lab]:.4f} |")
    print(f"\n# total {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
