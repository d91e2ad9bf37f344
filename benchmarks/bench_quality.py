#!/usr/bin/env python
"""Training outcomes of the ring presets across seeds (issue 9).

Trains every selected ``ring-*`` preset at every selected seed, one torch thread per run and
``--jobs`` runs at a time, and scores each run (:mod:`igm.analysis.quality`): the final
high-quality share, the modes covered, the MMD² to the target, the first evaluation step at which
the run is converged (every mode covered and a share ≥ 0.70) and the training seconds to that step.

Resumable: each run lives in ``OUT/PRESET/seedN``; finished runs are read back, interrupted ones
resume from their last checkpoint. ``key=value`` arguments are overrides applied to every run (an
experiment); they get their own default ``OUT`` so that they never mix with the presets' results.

    python benchmarks/bench_quality.py                                  # every ring preset, seeds 0-4
    python benchmarks/bench_quality.py --presets ring-sn-smmd --seeds 0-2
    python benchmarks/bench_quality.py --presets ring-smmd model.critic_out=16 objective.params.jacobian=exact
    python benchmarks/bench_quality.py --write                          # also update RESULTS.md and docs/quality.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import date
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cpu_model  # noqa: E402

BEGIN, END = "<!-- quality-table:begin -->", "<!-- quality-table:end -->"


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        elif part:
            out.append(int(part))
    return out


def _exit_with_parent(parent: int) -> None:
    """A worker whose benchmark process died (even by SIGKILL) stops too, instead of training on as
    an orphan; its run resumes from its last checkpoint next time."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _stop_workers(pool: ProcessPoolExecutor, grace: float = 10.0) -> None:
    """SIGTERM each worker (igm's loop then writes a checkpoint and stops), SIGKILL what is left after
    ``grace`` seconds, and drop the queued runs."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _worker(preset: str, seed: int, run_dir: str, eval_every: int, extra: list[str]) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from igm.analysis.quality import run_one

    return run_one(preset, seed, run_dir, eval_every=eval_every, extra=extra)


def _replace_block(path: Path, block: str, heading: str) -> None:
    text = path.read_text() if path.is_file() else ""
    body = f"{BEGIN}\n{block}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + body + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + f"\n\n{heading}\n\n{body}\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="", help="comma-separated preset names (default: every ring-* preset)")
    parser.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 0,2,5 (default 0-4)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each (default 2)")
    parser.add_argument("--eval-every", type=int, default=50, help="generator steps between evaluations (default 50)")
    parser.add_argument("--out", default=None, help="run directories (default runs/quality, or runs/quality-HASH with overrides)")
    parser.add_argument("--json", default=None, help="write every run's score here")
    parser.add_argument("--write", action="store_true", help="update the table in benchmarks/RESULTS.md and docs/quality.md")
    parser.add_argument("overrides", nargs="*", help="key=value overrides applied to every run")
    args = parser.parse_args()

    from igm.analysis.quality import aggregate, markdown_table
    from igm.train import presets

    names = [p for p in args.presets.split(",") if p] or [n for n in presets.names() if n.startswith("ring-")]
    for name in names:
        presets.get(name)  # an unknown name fails here, listing the valid ones
    seeds = _seeds(args.seeds)
    tag = hashlib.sha256(" ".join(args.overrides).encode()).hexdigest()[:8]
    out = Path(args.out or (ROOT / "runs" / ("quality" if not args.overrides else f"quality-{tag}")))
    out.mkdir(parents=True, exist_ok=True)
    if args.overrides:
        (out / "overrides.txt").write_text(" ".join(args.overrides) + "\n")
    jobs = [(p, s) for s in seeds for p in names]  # seed-major: a stopped benchmark has whole seeds done
    print(f"{len(jobs)} runs ({len(names)} presets × seeds {seeds}) into {out}, {args.jobs} at a time", flush=True)
    t0 = time.perf_counter()
    scores = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # SIGTERM unwinds like Ctrl-C
    pool = ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(),))
    try:
        futures = {pool.submit(_worker, p, s, str(out / p / f"seed{s}"), args.eval_every, args.overrides): (p, s) for p, s in jobs}
        for fut in as_completed(futures):
            p, s = futures[fut]
            try:
                r = fut.result()
            except Exception as err:  # noqa: BLE001 - one failed run must not lose the others
                print(f"{p} seed {s}: FAILED: {type(err).__name__}: {err}", flush=True)
                continue
            scores.append(r)
            when = f"converged at step {r['converged_step']} ({r['converged_seconds']:.0f} s)" if r["converged_step"] else "never converged"
            print(f"{p} seed {s}: HQ {r['high_quality']:.3f}, modes {r['modes_covered']}/{r['modes']}, "
                  f"MMD² {r['mmd2_target']:.2e}, {'CONVERGED' if r['converged'] else 'not converged'} at the end, "
                  f"{when}, {r['seconds']:.0f} s", flush=True)
    except BaseException as exc:  # Ctrl-C, SIGTERM or a failed run: stop the other runs now
        _stop_workers(pool)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 130
            print(f"interrupted after {len(scores)} of {len(jobs)} runs; the same command resumes each "
                  "from its last checkpoint", file=sys.stderr, flush=True)
            os._exit(code)  # not sys.exit: its atexit hook would wait for the pool's manager thread
        raise
    pool.shutdown()
    order = {(p, s): i for i, (p, s) in enumerate((p, s) for p in names for s in seeds)}
    scores.sort(key=lambda r: order[(r["preset"], r["seed"])])
    table = markdown_table(aggregate(scores))
    print(table)
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(scores, indent=1) + "\n")
    if args.write:
        import torch

        head = (f"Machine: {cpu_model()}, {os.cpu_count()} logical cores, torch {torch.__version__}, Python "
                f"{platform.python_version()}; {args.jobs} runs at a time, 1 thread each. Date {date.today()}.\n"
                f"Command: `python benchmarks/bench_quality.py --seeds {args.seeds} --write"
                f"{' ' + ' '.join(args.overrides) if args.overrides else ''}`.\n")
        block = head + "\n" + table
        _replace_block(ROOT / "benchmarks" / "RESULTS.md", block, "## Training outcomes of the ring presets (issue 9)")
        _replace_block(ROOT / "docs" / "quality.md", block, "## The table")


if __name__ == "__main__":
    main()
