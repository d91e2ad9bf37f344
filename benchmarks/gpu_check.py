#!/usr/bin/env python
"""One prepared check for a lent GPU (issue 14, item 4); run it through benchmarks/gpu_check.sh.

Sections, each in its own time box, each failure recorded as an error string while the rest run:

- ``environment``: the card, torch/CUDA versions, the dense bf16 peak from a spec-sheet table
  (bench_speed.PEAK_BF16_TFLOPS; unknown cards: null);
- ``fid_kid``: ``igm.metrics.fid`` at n < d (rank-deficient) and at n = 50,000 (full rank), and
  ``igm.metrics.kid`` at n = 50,000, on random 2048-d CUDA features;
- ``inception``: images/s of ``igm.metrics.features.get("inception", pretrained=False)`` at batch 250;
- ``activation``: a WGAN-GP critic step with torch's nn.LeakyReLU against igm.nn.LeakyReLU
  ("not available" when igm has none);
- ``torchrun``: 2 processes × 50 generator steps of cifar10-sn-smmd; identical weights on both ranks?
- ``speed:<preset>`` for cifar10-sn-smmd and cifar10-wgan-gp: generator it/s (``igm.train.loop.
  train_step`` after untimed warm-up steps, where compilation happens inside a bounded box) and the
  critic step's TFLOP/s (FlopCounterMode on one float32 eager step ÷ measured time) and its share
  of the bf16 peak, for all off, each switch alone, the resolved defaults and all on.

Writes ``gpu_check.json`` and ``gpu_check.md`` into ``--out`` after every section. ``--quick`` runs
every section on the CPU with tiny sizes (a smoke run of the same code; its numbers say nothing about
a GPU). Exit status 0 when every section is ok or "not available", 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

import _gpu_sections as S  # noqa: E402
import _gpu_torchrun as T  # noqa: E402
from _gpu_report import markdown  # noqa: E402
from _timebox import TimeBoxExceeded, time_box  # noqa: E402

SCHEMA = "igm-gpu-check/1"

#: (name, function(settings, out), default time box in seconds; None: a share of what is left)
SECTIONS: list[tuple[str, Callable[[S.Settings, dict], Any], float | None]] = [
    ("environment", S.environment, 60),
    ("fid_kid", S.fid_kid, 120),
    ("inception", S.inception, 60),
    ("activation", S.activation, 90),
    ("torchrun", T.section, 180),
    ("speed:cifar10-sn-smmd", lambda s, out: S.speed(s, out, "cifar10-sn-smmd"), None),
    ("speed:cifar10-wgan-gp", lambda s, out: S.speed(s, out, "cifar10-wgan-gp"), None),
]
SECTION_NAMES = [name for name, _, _ in SECTIONS]
RESERVE_S = 15.0  # kept back for each later section when a box is sized
MIN_BOX_S = 3.0  # a section with less time than this left is not started


def run_section(name: str, fn: Callable[[S.Settings, dict], Any], box: float, settings: S.Settings) -> dict[str, Any]:
    """``fn`` inside a time box; any exception becomes the record's error string."""
    print(f"[gpu_check] {name}: start (time box {box:.0f} s)", flush=True)
    rec: dict[str, Any] = {"status": "ok", "seconds": None, "box_s": round(box, 1), "error": None, "result": {}}
    t0 = time.perf_counter()
    try:
        with time_box(box, f"section {name}"):
            got = fn(settings, rec["result"])
        if isinstance(got, S.NotAvailable):
            rec.update(status="not available", note=got.reason)
            rec["result"].update(got.info)
    except TimeBoxExceeded as err:
        rec.update(status="error", error=str(err))
    except Exception as err:  # noqa: BLE001 - recorded, and the next section runs
        traceback.print_exc()
        rec.update(status="error", error=f"{type(err).__name__}: {err}"[:2000])
    rows = rec["result"].get("rows", []) if isinstance(rec["result"], dict) else []
    failed = [r for r in rows if r.get("status") == "error"]
    if rec["status"] == "ok" and failed:
        rec.update(status="partial", error=f"{len(failed)} of {len(rows)} configurations failed: {failed[0]['error']}")
    rec["seconds"] = round(time.perf_counter() - t0, 2)
    line = rec["error"] or rec.get("note") or ""
    print(f"[gpu_check] {name}: {rec['status']} in {rec['seconds']:.1f} s {line}".rstrip(), flush=True)
    return rec


def box_for(index: int, deadline: float) -> float:
    """The time box of section ``index``: its default, or for the speed sections an equal share of
    what is left; never more than what the budget leaves after a reserve for the later sections."""
    left = deadline - time.monotonic()
    later = SECTIONS[index + 1:]
    default = SECTIONS[index][2]
    if default is None:
        shares = 1 + sum(1 for _, _, d in later if d is None)
        return (left - RESERVE_S * sum(1 for _, _, d in later if d is not None)) / shares
    return min(default, left - RESERVE_S * len(later))


def write(report: dict[str, Any], out: Path) -> None:
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "gpu_check.md").write_text(markdown(report))


def synthetic_cifar(path: Path, n: int) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    np.save(path, rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="every section on the CPU with tiny sizes (a smoke run)")
    ap.add_argument("--out", default="gpu_check_out", help="folder for gpu_check.json and gpu_check.md")
    ap.add_argument("--budget-s", type=float, default=None, help="wall-clock budget for all sections (default 450; quick 240)")
    ap.add_argument("--only", default=None, help=f"comma-separated sections to run (default all: {','.join(SECTION_NAMES)})")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile configurations")
    args = ap.parse_args(argv)
    only = SECTION_NAMES if args.only is None else [x for x in args.only.split(",") if x]
    unknown = sorted(set(only) - set(SECTION_NAMES))
    if unknown:
        ap.error(f"unknown section {unknown[0]}; valid: {', '.join(SECTION_NAMES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budget = args.budget_s if args.budget_s is not None else (240.0 if args.quick else 450.0)
    deadline = time.monotonic() + budget
    t_start = time.perf_counter()
    report: dict[str, Any] = {"schema": SCHEMA, "started": datetime.datetime.now().isoformat(timespec="seconds"),
                              "quick": args.quick, "budget_s": budget, "argv": sys.argv[1:] if argv is None else argv,
                              "wall_s": None, "sections": {}}
    if not args.quick and not torch.cuda.is_available():
        report["error"] = "no CUDA device: run on a GPU machine, or use --quick for the CPU smoke run"
        write(report, out)
        print(f"[gpu_check] {report['error']}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        tmp = Path(tmp)
        if args.quick:
            torch.set_num_threads(1)
            settings = S.Settings.quick_cpu(tmp)
        else:
            settings = S.Settings.gpu(torch.device("cuda"), tmp)
        settings.compile = settings.compile and not args.no_compile
        settings.data = synthetic_cifar(tmp / "cifar_shaped.npy", 256 if args.quick else 2048)
        print(f"[gpu_check] {'QUICK CPU smoke run' if args.quick else 'GPU check'} on {settings.device}; "
              f"torch {torch.__version__}; budget {budget:.0f} s; results in {out}", flush=True)
        for i, (name, fn, _) in enumerate(SECTIONS):
            if name not in only:
                continue
            box = box_for(i, deadline)
            if box < MIN_BOX_S:
                rec = {"status": "error", "seconds": 0.0, "box_s": round(box, 1), "result": {},
                       "error": "not run: the budget was used up by the sections before it"}
                print(f"[gpu_check] {name}: {rec['error']}", flush=True)
            else:
                rec = run_section(name, fn, box, settings)
            report["sections"][name] = rec
            report["wall_s"] = round(time.perf_counter() - t_start, 1)
            write(report, out)
    report["wall_s"] = round(time.perf_counter() - t_start, 1)
    write(report, out)
    bad = [n for n, r in report["sections"].items() if r["status"] not in ("ok", "not available")]
    print(f"[gpu_check] done in {report['wall_s']:.0f} s; {len(report['sections']) - len(bad)} of "
          f"{len(report['sections'])} sections ok{'; failed: ' + ', '.join(bad) if bad else ''}", flush=True)
    print(f"[gpu_check] wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
